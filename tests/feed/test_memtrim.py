"""The feed's malloc_trim timer: it gives retained heap back, counts what it did, and can be off."""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import pytest

from tests.feed.helpers import feed_config
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.feed import Feed
from tickpath.feed.memtrim import MemoryTrimmer, glibc_trim, rss_bytes
from tickpath.feed.metrics import FeedCollector
from tickpath.sim import SimConfig, Simulator

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or glibc_trim() is None, reason="malloc_trim is glibc's (Linux)"
)


def test_once_counts_runs_time_and_released_bytes_never_negative() -> None:
    readings = iter([500, 300, 300, 400])  # before/after per run: 200 released, then RSS rose (0, not -100)
    calls: list[int] = []
    t = MemoryTrimmer(interval_s=1.0, trim=lambda: calls.append(1), rss=lambda: next(readings))
    t.once()
    t.once()
    assert (t.runs, t.released_bytes, len(calls)) == (2, 200, 2)
    assert t.seconds >= 0


@glibc
def test_trim_returns_freed_heap_pages_to_the_system() -> None:
    """64 MB of 4 KB allocations (below the mmap threshold: they live in the heap) freed, all but the
    last, which pins the heap's top so free() cannot shrink it: RSS stays up until malloc_trim."""
    blocks = [bytes(4096) for _ in range(16_384)]
    last = blocks[-1]
    del blocks
    t = MemoryTrimmer(interval_s=1.0)
    t.once()
    assert t.released_bytes >= 32_000_000, t.summary()
    assert last is not None and rss_bytes() > 0


async def test_run_trims_every_interval_on_the_clock_and_zero_is_off() -> None:
    clock = VirtualClock()
    calls: list[float] = []
    t = MemoryTrimmer(interval_s=10.0, clock=clock, trim=lambda: calls.append(1), rss=lambda: 0)
    off = MemoryTrimmer(interval_s=0.0, clock=clock, trim=lambda: calls.append(-1), rss=lambda: 0)
    await off.run()  # returns at once: nothing scheduled
    task = asyncio.create_task(t.run())
    for _ in range(35):
        await clock.sleep_until_ns(clock.monotonic_ns() + 1_000_000_000)
        await asyncio.sleep(0.01)  # the trim's worker thread
    task.cancel()
    assert calls == [1, 1, 1]
    assert off.summary()["trim_interval_s"] is None and t.summary()["trim_interval_s"] == 10.0


@virtual_time
async def test_feed_trims_and_reports_memory(virtual_clock: VirtualClock) -> None:
    """A feed run for 25 s of virtual time with a 10 s trim period: two trims, in its summary."""
    cfg = SimConfig(venues=("spot",), symbols=("BTCUSDT",), rate=50.0, book_levels=40)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        base = feed_config(sim.endpoint("spot"), "spot", ("BTCUSDT",))
        feed = Feed(dataclasses.replace(base, trim_memory_s=10.0), clock=virtual_clock)
        task = asyncio.create_task(feed.run())
        await asyncio.sleep(25.0)
        feed.stop()
        await task
    mem = feed.summary().to_dict()["engine"]["memory"]
    assert mem["trim_interval_s"] == 10.0 and mem["rss_mb"] > 0
    assert mem["trims"] == (2 if glibc_trim() is not None else 0)
    scraped = {f.name: f for f in FeedCollector(feed.snapshot).collect()}
    assert scraped["tickpath_feed_malloc_trims"].samples[0].value == mem["trims"]
    assert scraped["tickpath_feed_resident_bytes"].samples[0].value > 1e6
