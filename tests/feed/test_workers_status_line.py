"""A whole-exchange worker's status line (thousands of symbols and streams) is longer than asyncio's
default 64 KiB line limit; the supervisor reads it whole instead of dying on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpath.feed.config import FeedConfig
from tickpath.feed.supervisor import Supervisor

SYMBOLS = tuple(f"S{i:04d}USDT" for i in range(3000))


@pytest.mark.integration  # worker processes under a real supervisor
async def test_a_status_line_past_64_kib_is_read(tmp_path: Path) -> None:
    # Nothing listens on port 1: the workers only retry, then report their (long) summaries.
    cfg = FeedConfig(
        venue="spot",
        symbols=SYMBOLS,
        base_url="ws://127.0.0.1:1",
        rest_url="http://127.0.0.1:1",
        check_symbols=False,
        duration_s=2.0,
        sinks=(f"parquet:{tmp_path}",),
    )
    merged = await Supervisor(cfg, 2).run()
    assert sorted(merged["symbols"]) == list(SYMBOLS)
    assert len(merged["streams"]) == 3 * len(SYMBOLS)  # each worker's line held ~1,500 symbols' streams
