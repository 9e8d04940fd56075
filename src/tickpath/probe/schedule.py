"""Open-loop sampling: every sample has an intended start time, and latency counts from it.

A closed-loop prober (send, wait for the answer, send again) silently skips the samples it would
have taken while the network stalled, so a 200 ms stall shows up as one slow sample among
thousands (coordinated omission). Here sample ``i`` is due at ``start + i / rate`` and is sent
then; its latency counts from when it was due, so anything that holds it back (a stalled
connection it queues behind, a saturated prober) is recorded, not hidden. Samples run concurrently when answers
are slower than the schedule, as the real traffic would. The plain service time (from the actual
send) is kept beside it so a report can show both.

Samples go round-robin over the targets (resolved IPs), so every IP is measured across the whole
run rather than one after another. Timeouts and failures are losses, counted per target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tickpath.clock import Clock, SystemClock
from tickpath.errors import TickpathError
from tickpath.stats import SUMMARY_PERCENTILES, LatencyRecorder, LatencySummary

# How far ahead of the first intended time the schedule starts, so sample 0 is not late by setup.
_LEAD_NS = 1_000_000
# asyncio timers wake up to ~1 ms late (epoll has millisecond resolution), which would add a
# millisecond of our own to every loopback-scale sample. The last stretch before an intended time
# is spent yielding to the loop instead, so other tasks still run while we wait precisely.
_SPIN_NS = 2_000_000


async def wait_until(clock: Clock, deadline_ns: int) -> None:
    """Wait until the monotonic ``deadline_ns``, precisely on the real clock."""
    if not isinstance(clock, SystemClock):
        await clock.sleep_until_ns(deadline_ns)
        return
    if deadline_ns - clock.monotonic_ns() > _SPIN_NS:
        await clock.sleep_until_ns(deadline_ns - _SPIN_NS)
    while clock.monotonic_ns() < deadline_ns:
        await asyncio.sleep(0)


def summarize(rec: LatencyRecorder, total_ns: float) -> LatencySummary:
    """``rec.summary()`` with the mean taken from a running sum instead of a histogram walk.

    The percentiles, min and max still come from the HdrHistogram; only the mean, which the
    histogram library computes by iterating every bucket in pure Python (~0.2 s per histogram),
    is replaced by the exact arithmetic mean of the recorded values. Recorded means after
    clamping to the histogram's range: a mean over the unclamped values could exceed the max
    (a replay's years-old event times), so ``total_ns`` is used only when nothing was clamped.
    """
    if not rec.count:
        return rec.summary()
    p = [rec.percentile(x) for x in SUMMARY_PERCENTILES]
    return LatencySummary(
        count=rec.count,
        losses=rec.losses,
        min_ns=rec.percentile(0.0),
        mean_ns=rec.mean() if rec.clamped else total_ns / rec.count,
        p50_ns=p[0],
        p90_ns=p[1],
        p99_ns=p[2],
        p999_ns=p[3],
        p9999_ns=p[4],
        max_ns=rec.percentile(100.0),
        clamped=rec.clamped,
    )


@dataclass
class TargetStats:
    """Latency from intended time, service time and losses of one target (one IP)."""

    name: str
    latency: LatencyRecorder
    service: LatencyRecorder
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    total_ns: int = 0  # sum of recorded latencies, for the mean

    def summary(self) -> LatencySummary:
        return summarize(self.latency, self.total_ns)

    @classmethod
    def new(cls, name: str) -> TargetStats:
        return cls(name, LatencyRecorder(name), LatencyRecorder(name + ".service"))

    def loss(self, kind: str, message: str) -> None:
        self.latency.record_loss()
        self.service.record_loss()
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error = message


@dataclass
class MethodStats:
    """Everything one method measured: overall and per target."""

    method: str
    overall: TargetStats
    per_target: dict[str, TargetStats]
    warmup_discarded: int = 0
    late_starts: int = 0  # samples that started after their intended time (stall visible)

    @classmethod
    def new(cls, method: str, targets: Sequence[str]) -> MethodStats:
        return cls(method, TargetStats.new(method), {t: TargetStats.new(t) for t in targets})

    def record(self, target: str, latency_ns: int, service_ns: int) -> None:
        for ts in (self.overall, self.per_target[target]):
            ts.latency.record(latency_ns)
            ts.service.record(service_ns)
            ts.total_ns += latency_ns

    def loss(self, target: str, kind: str, message: str) -> None:
        self.overall.loss(kind, f"{target}: {message}")
        self.per_target[target].loss(kind, message)

    def to_dict(self, unit: str = "us") -> dict[str, Any]:
        def one(ts: TargetStats) -> dict[str, Any]:
            # Service time: only the two figures a reader compares (each summary walks the whole
            # histogram in pure Python, which is slow on wide ranges).
            scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[unit]
            return {
                "summary": ts.summary().to_dict(unit),
                "service": {
                    "p50": round(ts.service.percentile(50) / scale, 3),
                    "p99": round(ts.service.percentile(99) / scale, 3),
                    "unit": unit,
                },
                "histogram": ts.latency.encode(),
                "errors": dict(ts.errors),
                "last_error": ts.last_error,
            }

        out = one(self.overall)
        out["per_ip"] = {name: one(ts) for name, ts in self.per_target.items()}
        out["warmup_discarded"] = self.warmup_discarded
        out["late_starts"] = self.late_starts
        return out


# One sample: given the sample index and its target, do the operation and return the monotonic
# time (ns) at which it completed. Implementations stamp completion where the answer arrives.
SampleOp = Callable[[int, str], Awaitable[int]]


class OpenLoopSchedule:
    """Runs ``warmup + count`` samples at ``rate`` per second, open loop, round-robin on targets.

    Each sample starts as its own task at its intended time, whether or not earlier samples have
    answered, so a slow answer never postpones the next send (up to ``max_in_flight`` outstanding
    samples; beyond that a sample waits, and that wait is counted in its latency).
    """

    def __init__(
        self, clock: Clock, *, rate: float, count: int, warmup: int, timeout: float, max_in_flight: int = 256
    ) -> None:
        if rate <= 0 or count <= 0 or warmup < 0 or timeout <= 0 or max_in_flight <= 0:
            raise ValueError("rate, count, timeout and max_in_flight must be positive, warmup non-negative")
        self.clock = clock
        self.period_ns = 1e9 / rate
        self.count = count
        self.warmup = warmup
        self.timeout = timeout
        self.max_in_flight = max_in_flight

    async def run(
        self, stats: MethodStats, op: SampleOp, on_progress: Callable[[int], None] | None = None
    ) -> MethodStats:
        targets = list(stats.per_target)
        if not targets:
            return stats
        slots = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        done_count = 0

        async def one(i: int, target: str, intended: int) -> None:
            nonlocal done_count
            sent = self.clock.monotonic_ns()
            measured = i >= self.warmup
            try:
                # asyncio.timeout runs the op in this task (wait_for would start another task,
                # and the op would send one loop iteration late).
                async with asyncio.timeout(self.timeout):
                    finished = await op(i, target)
            except TimeoutError:
                if measured:
                    stats.loss(target, "timeout", f"no answer within {self.timeout:g} s")
            except (TickpathError, OSError) as exc:
                if measured:
                    stats.loss(target, type(exc).__name__, str(exc) or type(exc).__name__)
            else:
                if measured:
                    stats.record(target, finished - intended, finished - sent)
            finally:
                slots.release()
            if measured:
                if sent - intended > self.period_ns:
                    stats.late_starts += 1
                done_count += 1
                if on_progress is not None:
                    on_progress(done_count)
            else:
                stats.warmup_discarded += 1

        start = self.clock.monotonic_ns() + _LEAD_NS
        try:
            for i in range(self.warmup + self.count):
                intended = start + int(i * self.period_ns)
                await wait_until(self.clock, intended)
                await slots.acquire()
                task = asyncio.ensure_future(one(i, targets[i % len(targets)], intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(0)  # let the sample send now, at its intended time
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return stats
