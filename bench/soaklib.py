"""What the in-process soaks (bench/soak_chaos.py, bench/soak_looplag.py) measure of their own process:
RSS, CPU seconds, collector passes, tracked objects, and which event-loop stalls a GC pass explains.

Not a soak itself (``bench.soak`` runs ``soak_*.py``)."""

from __future__ import annotations

import ctypes
import gc
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tickpath.feed.looplag import LoopLagMonitor
from tickpath.feed.memtrim import glibc_trim, rss_bytes
from tickpath.stats import LatencyRecorder

STALL_MS = 100.0  # a loop-lag sample this late is a stall (the status line turns yellow there too)


def rss_mb() -> float:
    return rss_bytes() / 1e6


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def memory_mb() -> dict[str, float]:
    """Where the RSS is: glibc malloc's bytes in use (``heap_used``, with its mmapped blocks) and
    held free (``heap_free``: fragmentation the process keeps), pymalloc's live blocks (count, not
    bytes), and RSS. A creep in ``heap_used`` is live objects; in ``heap_free`` alone, fragmentation;
    in neither, memory outside malloc (DuckDB's buffer pool, thread stacks, mapped files)."""
    out = {"rss": round(rss_mb(), 1), "py_blocks_k": round(sys.getallocatedblocks() / 1e3, 1)}
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # not glibc >= 2.33
        return out
    f.restype = _Mallinfo2
    m = f()
    out["heap_used"] = round((m.uordblks + m.hblkhd) / 1e6, 1)
    out["heap_free"] = round(m.fordblks / 1e6, 1)
    return out


def malloc_trim() -> float | None:
    """glibc's ``malloc_trim(0)``: give the pages malloc holds free back to the system; its ms (None
    off glibc). RSS that falls after it was retained, not live: fragmentation, not a leak."""
    trim = glibc_trim()
    if trim is None:
        return None
    t0 = time.perf_counter()
    trim()
    return (time.perf_counter() - t0) * 1e3


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
    each pass of 10 ms or more ran (to set against the loop's stalls). Wall time and the collecting
    thread's CPU time both: on a machine shared by many, a pass that is descheduled takes far
    longer than it works."""

    def __init__(self) -> None:
        self.max_ms = [0.0, 0.0, 0.0]
        self.max_cpu_ms = [0.0, 0.0, 0.0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self.long: list[tuple[float, float]] = []  # (end, ms) on time.monotonic
        self._t0 = self._c0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0, self._c0 = time.perf_counter(), time.thread_time()
            return
        g, ms = info["generation"], (time.perf_counter() - self._t0) * 1e3
        self.max_ms[g] = max(self.max_ms[g], ms)
        self.max_cpu_ms[g] = max(self.max_cpu_ms[g], (time.thread_time() - self._c0) * 1e3)
        self.total_ms[g] += ms
        self.count[g] += 1
        if ms >= 10:
            self.long.append((time.monotonic(), ms))

    def within_ms(self, start: float, end: float) -> float:
        """Milliseconds of GC passes that ended in ``[start, end]`` (monotonic seconds)."""
        return sum(ms for t, ms in self.long if start <= t <= end)

    def as_dict(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "count": self.count[g],
                "max_ms": round(self.max_ms[g], 2),
                "max_cpu_ms": round(self.max_cpu_ms[g], 2),
                "total_ms": round(self.total_ms[g]),
            }
            for g in range(3)
        }


@dataclass(frozen=True)
class Stall:
    at: float  # time.monotonic when the late tick ran
    lag_ms: float
    wall_ms: float  # since the tick before it
    loop_cpu_ms: float  # CPU the loop's thread had in that time
    process_cpu_ms: float  # CPU all of the process's threads had in it


class StallLog:
    """Resets a feed's loop-lag monitor and keeps every sample of :data:`STALL_MS` or more, with the
    CPU the loop thread and the whole process had since the tick before, so each stall can be named:
    the loop busy (our code, or GC, on it), the process starved (the machine's other work), or the
    loop waiting on the GIL while another thread of ours held it."""

    def __init__(self, monitor: LoopLagMonitor) -> None:
        monitor.recorder, monitor.max_ns = LatencyRecorder("event_loop_lag"), 0
        self.monitor = monitor
        self.stalls: list[Stall] = []
        record = monitor.record
        last = [time.monotonic(), time.thread_time(), time.process_time()]

        def keep(lag_ns: int) -> None:
            record(lag_ns)
            now = [time.monotonic(), time.thread_time(), time.process_time()]
            if lag_ns >= STALL_MS * 1e6:
                wall, loop, proc = ((b - a) * 1e3 for a, b in zip(last, now, strict=True))
                self.stalls.append(Stall(now[0], lag_ns / 1e6, wall, loop, proc))
            last[:] = now

        monitor.record = keep  # type: ignore[method-assign]

    def attribute(self, pauses: GcPauses, **spans: list[tuple[float, float]]) -> dict[str, Any]:
        """Stalls, named by where their time went: ``gc`` (at least half the lag collecting), a name
        of ``spans`` (work of the harness's own on the loop, (end, ms) on time.monotonic, likewise),
        ``loop_busy`` (the loop thread had CPU for at least half the wall time), ``starved`` (the
        whole process had less than a quarter: the machine was busy elsewhere), ``other_thread``
        (the process ran, the loop did not: another thread held the GIL). The five longest in full."""
        named: Counter[str] = Counter()
        rows = []
        for s in self.stalls:
            start = s.at - s.wall_ms / 1e3
            gc_ms = pauses.within_ms(start, s.at)
            mine = {k: sum(ms for t, ms in v if start <= t <= s.at) for k, v in spans.items()}
            if gc_ms >= 0.5 * s.lag_ms:
                why = "gc"
            elif mine and max(mine.values()) >= 0.5 * s.lag_ms:
                why = max(mine, key=lambda k: mine[k])
            elif s.loop_cpu_ms >= 0.5 * s.wall_ms:
                why = "loop_busy"
            elif s.process_cpu_ms < 0.25 * s.wall_ms:
                why = "starved"
            else:
                why = "other_thread"
            named[why] += 1
            rows.append((s, gc_ms, why))
        top = sorted(rows, key=lambda r: -r[0].lag_ms)[:5]
        return {
            "stalls": len(rows),
            "by_cause": dict(named),
            "stall_ms_total": round(sum(s.lag_ms for s, _, _ in rows)),
            "longest": [
                {
                    "lag_ms": round(s.lag_ms, 1),
                    "gc_ms": round(g, 1),
                    "loop_cpu_ms": round(s.loop_cpu_ms, 1),
                    "process_cpu_ms": round(s.process_cpu_ms, 1),
                    "wall_ms": round(s.wall_ms, 1),
                    "cause": why,
                }
                for s, g, why in top
            ],
        }
