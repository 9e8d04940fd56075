"""Per-frame clock readers for the feed's hot path.

(The feed's latency samples go into their histograms with :meth:`LatencyRecorder.record_array`.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tickpath.clock import Clock, SystemClock


def clock_readers(clock: Clock) -> tuple[Callable[[], int], Callable[[], int]]:
    """``(wall_ns, monotonic_ns)`` of ``clock`` for per-frame use.

    For the system clock these are :func:`time.time_ns` and :func:`time.monotonic_ns` themselves:
    the same readings without a Python-level method call around each (three per frame).
    """
    if type(clock) is SystemClock:
        return time.time_ns, time.monotonic_ns
    return clock.wall_ns, clock.monotonic_ns
