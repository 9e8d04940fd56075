"""kill -9 anywhere, fast variant: 8 SIGKILLs of ``feed`` and 8 of ``ingest`` at seeded random moments
(snapshot fetch, mid-batch, streaming, spool drain; ingest start-up, mid-commit, between batches), each restarted
(the soak variant, ``bench/soak_faults.py``, does 50 each). Seed: ``TICKPATH_FAULT_SEED``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.drivers import fault_seed
from tests.faults.kill9 import judge_dq, run_kill9
from tests.ingest.support import require_nats_server

pytestmark = pytest.mark.integration


async def test_kill9_of_feed_and_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """After every kill the store opens with no fewer rows; the spool a dead feed left is what the next
    one resumes, and reaches the store; at the end the store holds the stream's events, each once."""
    require_nats_server()
    seed = fault_seed(1802)
    r = await run_kill9(tmp_path, seed, feed_kills=8, ingest_kills=8)
    why = f"seed {seed} (rerun: TICKPATH_FAULT_SEED={seed}): {r.as_dict()}"
    print(f"kill -9: {r.as_dict()}")
    assert sum(r.feed_kills.values()) == 8 and sum(r.ingest_kills.values()) == 8, why
    assert r.feed_kills["spool_drain"] >= 1, why  # aimed at (every phase is, once) and hit
    assert r.spool_resumed[1:] == r.spool_left[:-1], why  # each feed resumes exactly what the last one left
    assert r.spool_left[-1] == 0 and r.spooled_missing == 0, why
    assert r.rows_after_ingest_kill == sorted(r.rows_after_ingest_kill), why
    assert r.duplicates == 0 and r.missing == 0 and r.extra == 0 and r.rows == r.stream_events > 0, why
    # 8 killed feeds, one stopped cleanly; a feed killed draining the spool it resumed may not have
    # written its session yet (nor logged feed_started)
    assert r.feeds == 9 and r.feeds_started <= r.sessions <= 9 and r.unclosed_sessions == r.sessions - 1, why
    assert r.gaps == [], why
    # dq on a store whose feeds died: "ended without its close record", freshness up to each one's last row
    problems = judge_dq(r, tmp_path / "ticks.duckdb")
    assert problems == [], f"{why}: {problems}"
