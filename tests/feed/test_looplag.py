"""Event-loop lag: a callback that blocks the loop shows up as lag, an idle loop shows none."""

from __future__ import annotations

import asyncio
import time

from tickpath.feed.looplag import LoopLagMonitor
from tickpath.feed.metrics import loop_lag_families


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
