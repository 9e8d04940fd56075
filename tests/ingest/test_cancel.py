"""Cancelling ``ingest`` (Ctrl-C) always stops it, at any point, and never stores an event twice.

Python 3.11's ``asyncio.wait_for`` returns the result instead of raising when the result and the
cancel arrive together; the pull code once used it, so a Ctrl-C could be lost and ``ingest`` ran on.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.support import make_events, nats_cluster
from tests.ingest.test_ingest import _assert_exactly_once, _publish
from tickpath.ingest import IngestConfig, run_ingest
from tickpath.ingest.consumer import _Puller


class _LoopbackNc:
    """The bits of a nats-py client ``_Puller._request`` uses: publish records the request."""

    is_connected = True

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, str]] = []

    async def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        self.published.append((subject, payload, reply))


async def test_pull_request_raises_a_cancel_that_lands_with_its_reply() -> None:
    """A cancel arriving in the same loop turn as the pull's last delivery is raised, not swallowed."""
    puller = _Puller(_LoopbackNc(), "S", "d")
    request = asyncio.create_task(puller._request(1, {"batch": 1}, 5.0))
    for _ in range(5):  # let the request publish and start waiting for its replies
        await asyncio.sleep(0)
    assert not request.done()
    puller._buf.append((b"ack.1", b"{}", None))
    puller._done.set()  # the reply completes the request ...
    request.cancel()  # ... and Ctrl-C arrives before the task runs again
    with pytest.raises(asyncio.CancelledError):
        await request
    assert request.cancelled()


@pytest.mark.integration
async def test_ingest_cancelled_at_random_points_always_stops_and_stores_each_event_once(tmp_path: Path) -> None:
    """Twelve seeded random (some double) cancels each stop run_ingest within 5 s; every event is stored once."""
    events = make_events(3000)
    db = tmp_path / "ticks.duckdb"
    rng = random.Random(20261122)
    async with nats_cluster() as c:
        url = c.client_urls[0]
        await _publish(url, events, tmp_path / "spool")
        cfg: dict[str, Any] = {"batch": 100, "ack_wait_s": 1.0, "fetch_timeout_s": 0.05}
        for attempt in range(12):
            run = asyncio.create_task(run_ingest(IngestConfig(url, f"duckdb:{db}", **cfg)))
            # Mostly mid-stream, sometimes during connect/setup, sometimes once the stream is drained.
            await asyncio.sleep(rng.choice((0.0, 0.001)) if attempt % 4 == 0 else rng.uniform(0.0, 0.4))
            for _ in range(rng.randrange(4)):  # land the cancel on a random event-loop turn as well
                await asyncio.sleep(0)
            run.cancel()
            if attempt % 3 == 2:  # a second Ctrl-C while the first one's teardown runs
                await asyncio.sleep(rng.uniform(0.0, 0.01))
                run.cancel()
            done, _ = await asyncio.wait([run], timeout=5.0)
            assert run in done, f"attempt {attempt}: run_ingest ignored the cancel"
            assert run.cancelled(), f"attempt {attempt}: run_ingest returned instead of being cancelled"
        # Batches fetched but not committed when cancelled come back after ack_wait (1 s).
        res = await run_ingest(IngestConfig(url, f"duckdb:{db}", **{**cfg, "fetch_timeout_s": 0.2}, idle_exit_s=2.5))
    _assert_exactly_once(db, events)
    assert res.rejected == 0
