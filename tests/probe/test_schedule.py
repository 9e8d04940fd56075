"""The open-loop scheduler: intended times, stalls, warm-up, losses, round-robin."""

from __future__ import annotations

import asyncio

from tickpath.clock import ManualClock
from tickpath.errors import ConnectionFailedError
from tickpath.probe.schedule import MethodStats, OpenLoopSchedule

MS = 1_000_000


async def test_stall_is_recorded_for_every_sample_it_delays() -> None:
    """A 100 ms stall of a shared link at 100/s shows in every sample queued behind it."""
    clock = ManualClock()
    stats = MethodStats.new("t", ["a"])
    link = asyncio.Lock()  # one connection: answers come back in order

    async def op(i: int, _t: str) -> int:
        async with link:
            clock.advance(100 * MS if i == 20 else 1 * MS)
            return clock.monotonic_ns()

    await OpenLoopSchedule(clock, rate=100, count=100, warmup=0, timeout=5).run(stats, op)
    lat = stats.overall.latency
    svc = stats.overall.service
    assert lat.count == 100 and svc.count == 100
    assert lat.summary().max_ns >= 100 * MS - MS // 10
    # Latency from the intended time sees the queue behind the stall (~9 samples of 10-91 ms),
    # where a closed-loop prober would have seen one slow sample.
    assert lat.percentile(91) >= 9 * MS
    assert lat.percentile(80) < 2 * MS


async def test_warmup_samples_are_discarded() -> None:
    """Warm-up samples run but are not recorded; the measured count is exactly ``count``."""
    clock = ManualClock()
    stats = MethodStats.new("t", ["a"])
    seen: list[int] = []

    async def op(i: int, _t: str) -> int:
        seen.append(i)
        clock.advance(5 * MS if i < 3 else MS)
        return clock.monotonic_ns()

    await OpenLoopSchedule(clock, rate=50, count=10, warmup=3, timeout=5).run(stats, op)
    assert seen == list(range(13))
    assert stats.overall.latency.count == 10
    assert stats.warmup_discarded == 3
    assert stats.overall.summary().max_ns < 2 * MS


async def test_losses_and_timeouts_are_counted_per_target() -> None:
    """Failures and timeouts are losses of the target they hit, never dropped silently."""
    clock = ManualClock()
    stats = MethodStats.new("t", ["good", "bad", "slow"])

    async def op(_i: int, target: str) -> int:
        if target == "bad":
            raise ConnectionFailedError("refused")
        if target == "slow":
            await asyncio.sleep(10)
        clock.advance(MS)
        return clock.monotonic_ns()

    await OpenLoopSchedule(clock, rate=1000, count=9, warmup=0, timeout=0.01).run(stats, op)
    per = stats.per_target
    assert per["good"].latency.count == 3 and per["good"].latency.losses == 0
    assert per["bad"].latency.losses == 3 and per["bad"].errors == {"ConnectionFailedError": 3}
    assert per["slow"].latency.losses == 3 and per["slow"].errors == {"timeout": 3}
    assert stats.overall.latency.losses == 6
    assert stats.overall.summary().loss_ratio == 6 / 9


async def test_samples_round_robin_over_targets() -> None:
    """Every target gets an equal share of samples across the whole run."""
    clock = ManualClock()
    stats = MethodStats.new("t", ["a", "b", "c", "d"])
    order: list[str] = []

    async def op(_i: int, target: str) -> int:
        order.append(target)
        return clock.monotonic_ns()

    await OpenLoopSchedule(clock, rate=10, count=8, warmup=0, timeout=1).run(stats, op)
    assert order == ["a", "b", "c", "d"] * 2
    assert {t: s.latency.count for t, s in stats.per_target.items()} == {"a": 2, "b": 2, "c": 2, "d": 2}


async def test_summary_dict_carries_histogram_and_per_ip() -> None:
    """The method dict has summary, service, encoded histogram and a per-IP section."""
    clock = ManualClock()
    stats = MethodStats.new("tcp", ["1.2.3.4:443"])

    async def op(_i: int, _t: str) -> int:
        clock.advance(250_000)
        return clock.monotonic_ns()

    await OpenLoopSchedule(clock, rate=100, count=5, warmup=1, timeout=1).run(stats, op)
    d = stats.to_dict()
    assert d["summary"]["unit"] == "us" and d["summary"]["count"] == 5
    assert 249 <= d["summary"]["p50"] <= 251
    assert set(d["per_ip"]) == {"1.2.3.4:443"}
    assert isinstance(d["histogram"], str) and d["warmup_discarded"] == 1


def test_fast_summary_matches_the_recorder_summary() -> None:
    """summarize() gives the recorder's percentiles and count, and the exact mean of the values."""
    from tickpath.probe.schedule import summarize
    from tickpath.stats import LatencyRecorder

    rec = LatencyRecorder()
    values = [1_000 * (i % 97 + 1) + 13 * i for i in range(2_000)]
    rec.record_many(values)
    rec.record_loss(3)
    fast, full = summarize(rec, sum(values)), rec.summary()
    assert (fast.count, fast.losses, fast.p50_ns, fast.p99_ns, fast.p9999_ns, fast.max_ns) == (
        full.count,
        full.losses,
        full.p50_ns,
        full.p99_ns,
        full.p9999_ns,
        full.max_ns,
    )
    assert fast.mean_ns == sum(values) / len(values)
    assert abs(fast.mean_ns - full.mean_ns) / full.mean_ns < 0.001
    assert abs(fast.min_ns - full.min_ns) <= full.min_ns // 1000 + 1
