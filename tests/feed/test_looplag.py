"""Event-loop lag: a callback that blocks the loop shows up as lag, an idle loop shows none."""

from __future__ import annotations

import asyncio
import time

from tests.feed.helpers import feed_config
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.feed import Feed
from tickpath.feed.looplag import LoopLagMonitor
from tickpath.feed.metrics import FeedCollector, loop_lag_families
from tickpath.feed.status import status_text
from tickpath.sim import SimConfig, Simulator


async def _run(mon: LoopLagMonitor, seconds: float) -> None:
    task = asyncio.create_task(mon.run())
    await asyncio.sleep(seconds)
    task.cancel()


async def test_blocking_callback_is_measured_as_lag() -> None:
    """A 300 ms time.sleep on the loop makes one tick at least ~300 ms late (sleep never returns early)."""
    mon = LoopLagMonitor(period_s=0.02)
    asyncio.get_running_loop().call_later(0.05, time.sleep, 0.3)
    await _run(mon, 0.5)
    s = mon.summary()
    assert s["samples"] >= 3
    assert s["max_ms"] >= 250.0  # a lower bound: the blocked tick is due at most one period before the block ends
    assert s["p50_ms"] < s["max_ms"]


async def test_no_samples_before_first_tick_and_families_exported() -> None:
    mon = LoopLagMonitor(period_s=0.01)
    assert mon.summary()["samples"] == 0
    mon.record(2_000_000)
    mon.record(40_000_000)
    names = {f.name for f in loop_lag_families(mon)}
    assert names == {"tickpath_event_loop_lag_seconds", "tickpath_event_loop_lag_max_seconds"}
    mx = next(f for f in loop_lag_families(mon) if f.name.endswith("max_seconds"))
    assert mx.samples[0].value == 0.04


@virtual_time
async def test_feed_reports_lag_in_summary_and_status(virtual_clock: VirtualClock) -> None:
    """A feed run for 3 s of virtual time ticks every 100 ms (none late: virtual time never blocks);
    the summary's engine report and the status line carry it."""
    cfg = SimConfig(venues=("spot",), symbols=("BTCUSDT",), rate=50.0, book_levels=40)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        feed = Feed(feed_config(sim.endpoint("spot"), "spot", ("BTCUSDT",)), clock=virtual_clock)
        await _run_feed(feed, 3.0)
        lag = feed.summary().to_dict()["engine"]["event_loop_lag"]
    assert 25 <= lag["samples"] <= 31 and lag["max_ms"] == 0.0
    line = status_text(feed.snapshot(), 0.0, 0.0).plain
    assert "loop lag p99 0.0 ms max 0.0 ms" in line
    scraped = {f.name: f for f in FeedCollector(feed.snapshot, feed.loop_lag).collect()}
    hist = scraped["tickpath_event_loop_lag_seconds"]
    assert [x.value for x in hist.samples if x.name.endswith("_count")] == [lag["samples"]]


async def _run_feed(feed: Feed, seconds: float) -> None:
    task = asyncio.create_task(feed.run())
    await asyncio.sleep(seconds)
    feed.stop()
    await task
