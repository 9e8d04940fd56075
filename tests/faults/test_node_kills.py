"""Randomized node kills, fast variant: 5 SIGKILLs of random nodes of a 3-node JetStream cluster
(the stream leader about half the time) under a running feed -> JetStream -> ingest -> DuckDB
(the soak variant, ``bench/soak_faults.py``, does 20). Seed: ``TICKPATH_FAULT_SEED``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.drivers import fault_seed
from tests.faults.nodekill import run_node_kills
from tests.ingest.support import require_nats_server

pytestmark = pytest.mark.integration


async def test_random_node_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """After 5 node kills: DuckDB rows == events the feed accepted, none twice, every seq 1..n."""
    require_nats_server()
    seed = fault_seed(1801)
    r = await run_node_kills(tmp_path, seed, kills=5)
    why = f"seed {seed} (rerun: TICKPATH_FAULT_SEED={seed}): {r.as_dict()}"
    assert r.kills == 5, why
    print(f"feed summary: {r.feed}")
    assert r.feed["sinks"]["nats"]["dropped"] == 0 and r.feed["sinks"]["nats"]["spool_pending"] == 0, why
    assert r.duplicates == 0, why
    assert r.rows == r.accepted > 0, why
    assert r.gaps == [], why
    assert r.sessions_closed, why
    print(f"node kills: {r.as_dict()}")
