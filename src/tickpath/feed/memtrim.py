"""Giving the heap's free pages back to the system on a timer (glibc ``malloc_trim``).

A feed frees as much as it allocates, but glibc keeps the freed pages of its arenas: after a burst
(a resync's buffered frames, a snapshot of 1,000 levels, a DuckDB batch) RSS stays at the high-water
mark even though nothing is live. In the one-process soak (docs/reliability.md) that retention,
not live objects, grew RSS; the feed alone retains less (12 trims in 10 minutes under faults gave
back 32 MB, 1.6 ms each). ``malloc_trim(0)`` hands the free pages back; it runs on a worker
thread (ctypes releases the GIL) so the event loop keeps going, and is a no-op where the C library is not glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tickpath.clock import DEFAULT_CLOCK, Clock

DEFAULT_TRIM_INTERVAL_S = 60.0


def glibc_trim() -> Callable[[], object] | None:
    """``malloc_trim(0)`` of the running C library, or None where it has none (musl, macOS)."""
    try:
        f = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_size_t]
    f.restype = ctypes.c_int
    return lambda: f(0)


def rss_bytes() -> int:
    """Resident set size from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class MemoryTrimmer:
    """Every ``interval_s``: trim, and count the runs, their time and the RSS they gave back."""

    interval_s: float = DEFAULT_TRIM_INTERVAL_S  # 0 = off
    clock: Clock = DEFAULT_CLOCK
    trim: Callable[[], object] | None = field(default_factory=glibc_trim)
    rss: Callable[[], int] = rss_bytes
    runs: int = 0
    seconds: float = 0.0
    released_bytes: int = 0  # RSS before minus after, summed (never negative per run)

    async def run(self) -> None:
        if self.trim is None or self.interval_s <= 0:
            return
        period = int(self.interval_s * 1e9)
        while True:
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + period)
            await asyncio.to_thread(self.once)

    def once(self) -> None:
        assert self.trim is not None
        before = self.rss()
        t0 = time.perf_counter()
        self.trim()
        self.seconds += time.perf_counter() - t0
        self.released_bytes += max(0, before - self.rss())
        self.runs += 1

    def summary(self) -> dict[str, Any]:
        """For status and ``--json``: the RSS now and what the trims did."""
        return {
            "rss_mb": round(self.rss() / 1e6, 1),
            "trims": self.runs,
            "trim_ms_total": round(self.seconds * 1e3, 1),
            "trim_released_mb": round(self.released_bytes / 1e6, 1),
            "trim_interval_s": self.interval_s if self.trim is not None and self.interval_s > 0 else None,
        }
