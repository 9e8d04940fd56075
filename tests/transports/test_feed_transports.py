"""The whole feed over each WebSocket transport (``--ws-transport`` / TICKPATH_WS_TRANSPORT) against
a TLS simulator: the books sync and match the simulator's truth, with the --ca-file context reaching
whichever client is chosen; an unknown name is one-line usage error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tickpath.clock import VirtualClock
from tickpath.feed import Feed
from tickpath.sim import SimConfig, Simulator
from tickpath.transports import ENV, WS_TRANSPORTS
from tickpath.transports.picows_ws import available as picows_available

from ..feed.helpers import all_synced, assert_books_match_truth, feed_config, run_until
from ..virtual_time import virtual_time

NAMES = [n for n in WS_TRANSPORTS if n != "picows" or picows_available()]


@pytest.mark.parametrize("name", NAMES)
@virtual_time
async def test_the_feed_syncs_over_tls_on_each_transport(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, virtual_clock: VirtualClock
) -> None:
    monkeypatch.setenv(ENV, name)
    async with Simulator(
        SimConfig(venues=("futures",), symbols=("BTCUSDT",), seed=5, rate=300.0, book_levels=40, tls=True),
        clock=virtual_clock,
    ) as sim:
        ep = sim.endpoint("futures")
        assert ep.cafile
        feed = Feed(
            feed_config(ep, "futures", ("BTCUSDT",), ca_file=Path(ep.cafile), sinks=(f"jsonl:{tmp_path / 'a.jsonl'}",)),
            clock=virtual_clock,
        )
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 20)
        assert_books_match_truth(feed, sim)
        assert summary.connects >= 1 and summary.gaps == 0


@pytest.mark.integration  # runs `python -m tickpath.cli.main` as a process of its own
def test_an_unknown_transport_is_a_usage_error() -> None:
    cmd = [sys.executable, "-m", "tickpath.cli.main", "feed", "--symbols", "BTCUSDT", "--ws-transport", "curl"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'curl'" in proc.stderr and "Traceback" not in proc.stderr
