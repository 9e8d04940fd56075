"""Scheduled faults (FaultPlan / run_plan): an idle period never piles up a burst of faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tickpath.errors import ConfigError
from tickpath.sim import FaultPlan, Faults, Simulator
from tickpath.sim.faults import run_plan

from .helpers import recv_json, small_config, ws_connect

SYM = "BTCUSDT"
PERIOD = 0.02  # seconds between scheduled faults: fast enough that several pass in a test
PERIODS = 6  # how many scheduled occurrences each test lets pass with no traffic


def _count_calls(faults: Faults, method: str) -> list[int]:
    """Wrap ``faults.<method>`` on the instance so the test knows how many periods really fired."""
    calls = [0]
    inner: Callable[..., Any] = getattr(faults, method)

    def spy(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return inner(*args, **kw)

    setattr(faults, method, spy)
    return calls


async def _run_idle(plan: FaultPlan, faults: Faults, targets: list[tuple[str, str]], calls: list[int]) -> None:
    """Run the plan until it has fired PERIODS times with nobody asking, then stop it."""
    task = asyncio.create_task(run_plan(plan, faults, targets))
    try:
        async with asyncio.timeout(10):
            while calls[0] < PERIODS:
                await asyncio.sleep(PERIOD)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert calls[0] >= PERIODS


async def test_idle_snapshot_fail_schedule_leaves_one_failure() -> None:
    """Several snapshot-fail periods with no depth request: the next requests see exactly one 500, then 200."""
    async with Simulator(small_config(venues=("spot",), rate=0.0)) as sim, aiohttp.ClientSession() as http:
        calls = _count_calls(sim.faults, "fail_snapshots")
        await _run_idle(FaultPlan(snapshot_fail_every_s=PERIOD), sim.faults, [("spot", SYM)], calls)
        url = sim.endpoint("spot").depth_url(SYM, 5)
        statuses = []
        for _ in range(3):
            async with http.get(url) as r:
                statuses.append(r.status)
    assert statuses == [500, 200, 200]


async def test_explicit_fail_snapshots_still_adds() -> None:
    """fail_snapshots(venue, n) called by hand adds n to what is pending; accumulate=False only tops up."""
    async with Simulator(small_config(venues=("spot",), rate=0.0)) as sim:
        sim.faults.fail_snapshots("spot", 2)
        sim.faults.fail_snapshots("spot", 1)
        assert sim.faults.state.snapshot_failures["spot"] == 3
        sim.faults.fail_snapshots("spot", 1, accumulate=False)
        assert sim.faults.state.snapshot_failures["spot"] == 3
        sim.faults.state.snapshot_failures.clear()
        sim.faults.fail_snapshots("spot", 1, accumulate=False)
        sim.faults.fail_snapshots("spot", 1, accumulate=False)
        assert sim.faults.state.snapshot_failures["spot"] == 1


async def test_idle_gap_schedule_skips_one_event_only() -> None:
    """Several gap periods before anyone subscribes: the first depth events miss exactly one update id."""
    async with Simulator(small_config(venues=("futures",), rate=0.0)) as sim:
        calls = _count_calls(sim.faults, "gap")
        await _run_idle(FaultPlan(gap_every_s=PERIOD), sim.faults, [("futures", SYM)], calls)
        ws = await ws_connect(sim.endpoint("futures").raw_url("btcusdt@depth@0ms"))
        await asyncio.sleep(0.05)  # the subscription is registered before we step the market
        before = sim.last_update_id("futures", SYM)
        sim.step("futures", SYM, 5)
        events = [await recv_json(ws) for _ in range(4)]
        await ws.close()
    assert events[0]["U"] == before + 2  # one update id skipped, not one per idle period
    assert [e["pu"] for e in events[1:]] == [e["u"] for e in events[:-1]]
    assert events[-1]["u"] == before + 5


async def test_idle_malformed_schedule_corrupts_one_frame_only() -> None:
    """Several malformed periods on a silent connection: one invalid frame, then valid ones."""
    async with Simulator(small_config(venues=("futures",), rate=0.0)) as sim:
        ws = await ws_connect(sim.endpoint("futures").raw_url("btcusdt@depth@0ms"))
        await asyncio.sleep(0.05)
        calls = _count_calls(sim.faults, "malformed")
        await _run_idle(FaultPlan(malformed_every_s=PERIOD), sim.faults, [("futures", SYM)], calls)
        sim.step("futures", SYM, 3)
        frames = [await asyncio.wait_for(ws.recv(), 3) for _ in range(3)]
        await ws.close()
    with pytest.raises(json.JSONDecodeError):
        json.loads(frames[0])
    nxt = [json.loads(f) for f in frames[1:]]
    assert nxt[1]["pu"] == nxt[0]["u"]


async def test_rate_limit_never_shortens_a_longer_window() -> None:
    """A scheduled 429 window ends at the later of the two ends; a short one does not cut a long one."""
    async with Simulator(small_config(venues=("spot",), rate=0.0)) as sim:
        loop = asyncio.get_running_loop()
        sim.faults.rate_limit("spot", 30.0)
        sim.faults.rate_limit("spot", 0.1)
        assert sim.faults.state.rate_limited_until["spot"] - loop.time() > 20


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"stall_every_s": 1.0, "stall_s": 1.0}, "stall_s (1 s) must be shorter than stall_every_s"),
        ({"rate_limit_every_s": 2.0, "rate_limit_s": 5.0}, "rate_limit_s (5 s) must be shorter"),
        ({"gap_every_s": float("nan")}, "gap_every_s must be a finite number"),
        ({"drop_every_s": float("inf")}, "drop_every_s must be a finite number"),
        ({"stall_s": 0.0}, "stall_s must be positive"),
    ],
)
def test_fault_plan_rejects_settings_that_never_end(kw: dict[str, float], needle: str) -> None:
    """FaultPlan refuses non-finite settings and faults that would last their whole period (never end)."""
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        FaultPlan(**kw)
