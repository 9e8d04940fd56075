"""What the in-process soaks (bench/soak_chaos.py, bench/soak_looplag.py) measure of their own process:
RSS, CPU seconds, collector passes, tracked objects, and which event-loop stalls a GC pass explains.

Not a soak itself (``bench.soak`` runs ``soak_*.py``)."""

from __future__ import annotations

import gc
import os
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tickpath.feed.looplag import LoopLagMonitor
from tickpath.stats import LatencyRecorder

STALL_MS = 100.0  # a loop-lag sample this late is a stall (the status line turns yellow there too)


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def tracked_by_type(top: int = 8) -> dict[str, int]:
    """Objects the collector tracks (what a generation-2 pass walks), in all and the commonest types."""
    objs = gc.get_objects()
    counts = Counter(type(o).__name__ for o in objs)
    del objs
    return {"all": sum(counts.values()), **dict(counts.most_common(top))}


class GcPauses:
    """The longest and total time of each collector generation (gc.callbacks start/stop), and when
    each pass of 10 ms or more ran (to set against the loop's stalls)."""

    def __init__(self) -> None:
        self.max_ms = [0.0, 0.0, 0.0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self.long: list[tuple[float, float]] = []  # (end, ms) on time.monotonic
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        g, ms = info["generation"], (time.perf_counter() - self._t0) * 1e3
        self.max_ms[g] = max(self.max_ms[g], ms)
        self.total_ms[g] += ms
        self.count[g] += 1
        if ms >= 10:
            self.long.append((time.monotonic(), ms))

    def within_ms(self, start: float, end: float) -> float:
        """Milliseconds of GC passes that ended in ``[start, end]`` (monotonic seconds)."""
        return sum(ms for t, ms in self.long if start <= t <= end)

    def as_dict(self) -> dict[str, Any]:
        return {
            f"gen{g}": {"count": self.count[g], "max_ms": round(self.max_ms[g], 2), "total_ms": round(self.total_ms[g])}
            for g in range(3)
        }


class StallLog:
    """Resets a feed's loop-lag monitor and keeps every sample of :data:`STALL_MS` or more with the
    time it was taken, so each stall can be set against the GC passes inside it."""

    def __init__(self, monitor: LoopLagMonitor) -> None:
        monitor.recorder, monitor.max_ns = LatencyRecorder("event_loop_lag"), 0
        self.monitor = monitor
        self.stalls: list[tuple[float, float]] = []  # (taken at, lag ms) on time.monotonic
        record = monitor.record

        def keep(lag_ns: int) -> None:
            record(lag_ns)
            if lag_ns >= STALL_MS * 1e6:
                self.stalls.append((time.monotonic(), lag_ns / 1e6))

        monitor.record = keep  # type: ignore[method-assign]

    def attribute(self, pauses: GcPauses) -> dict[str, Any]:
        """Stalls, how many a GC pass explains (at least half the lag spent collecting inside the
        late tick's period), and the five longest with their GC milliseconds."""
        period_s = self.monitor.period_s
        rows = [(ms, pauses.within_ms(t - ms / 1e3 - period_s, t)) for t, ms in self.stalls]
        top = sorted(rows, reverse=True)[:5]
        return {
            "stalls": len(rows),
            "explained_by_gc": sum(g >= 0.5 * ms for ms, g in rows),
            "stall_ms_total": round(sum(ms for ms, _ in rows)),
            "gc_ms_in_stalls": round(sum(g for _, g in rows)),
            "longest": [{"lag_ms": round(ms, 1), "gc_ms": round(g, 1)} for ms, g in top],
        }
