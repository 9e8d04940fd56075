"""Event-loop lag: how late a task scheduled every ``period_s`` really runs.

Every frame, snapshot and sink write of a feed shares one asyncio loop, so any callback that blocks
(a big GC pass, a synchronous DuckDB commit, a slow parse) delays all of them at once. The monitor
sleeps ``period_s`` on the injected clock and records ``woke - due`` in nanoseconds into an
HdrHistogram (:class:`tickpath.stats.LatencyRecorder`), plus the maximum. On a
:class:`tickpath.clock.VirtualClock` nothing blocks in virtual time, so the lag is 0 there unless a
callback advances the clock itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.stats import LatencyRecorder


@dataclass
class LoopLagMonitor:
    """Records event-loop lag until cancelled (``run``); ``summary()`` for status and ``--json``."""

    clock: Clock = DEFAULT_CLOCK
    period_s: float = 0.1
    recorder: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("event_loop_lag"))
    max_ns: int = 0

    async def run(self) -> None:
        period = int(self.period_s * 1e9)
        due = self.clock.monotonic_ns() + period
        while True:
            await self.clock.sleep_until_ns(due)
            now = self.clock.monotonic_ns()
            self.record(max(0, now - due))
            due = now + period  # a late tick does not make the next ones look late too

    def record(self, lag_ns: int) -> None:
        self.recorder.record(lag_ns)
        self.max_ns = max(self.max_ns, lag_ns)

    def summary(self) -> dict[str, Any]:
        """Samples and p50/p99/max lag in milliseconds."""
        r = self.recorder
        if r.count == 0:
            return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
        p = r.percentiles((50.0, 99.0))
        return {
            "samples": r.count,
            "p50_ms": round(p[50.0] / 1e6, 3),
            "p99_ms": round(p[99.0] / 1e6, 3),
            "max_ms": round(self.max_ns / 1e6, 3),
        }
