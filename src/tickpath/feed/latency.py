"""Moving the feed's latency samples into HdrHistograms in bulk, with exactly the same result.

The engine appends one receipt-to-enqueue and one receipt-minus-event sample per frame to arrays and
drains them once a second on the event loop. :meth:`LatencyRecorder.record_many` costs about 3 µs
per sample here (hdrh records each value in Python), i.e. about 6 µs of event-loop time per frame,
as much as decoding the frame, and a drain of one busy second blocked the loop for tens of ms.

:func:`record_samples` groups the samples with numpy into intervals that never straddle two
HdrHistogram counters and records each group with one ``record(value, count)`` call (two when the
group's sum is not a multiple of its count), choosing the values so that every counter, the total
count, the minimum and maximum as HdrHistogram reports them, the exact sum behind the mean and the
count of clamped values are identical to recording every sample one by one. At 10,000 samples per
second the groups number a few thousand at most, and fewer as the rate grows.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable

import numpy as np

from tickpath.clock import Clock, SystemClock
from tickpath.stats import LatencyRecorder
from tickpath.stats.recorder import LOWEST_NS, SIGNIFICANT_DIGITS

# Values below 2**_EXACT_BITS are grouped only with themselves; above, a group is an aligned interval
# of width 2**(bit_length - _EXACT_BITS). An HdrHistogram with 3 significant digits (lowest value 1)
# has 2,048 sub-buckets: values below 2,048 each have a counter, and its counters in
# [2**k, 2**(k+1)) are aligned intervals of width 2**(k - 10), exactly these groups. With fewer
# digits its counters are wider, so the groups still never straddle two.
_EXACT_BITS = 11
assert SIGNIFICANT_DIGITS <= 3, "groups must stay inside one counter: raise _EXACT_BITS with the digits"
_FLOAT_EXACT = 1 << 53  # int64 values below this convert to float64 exactly (for the bit length)


def record_samples(rec: LatencyRecorder, samples: array[int] | list[int] | np.ndarray,
                   highest_ns: int) -> None:
    """Record every sample (ns) into ``rec`` as ``rec.record_many(samples)`` would, in bulk.

    ``highest_ns`` is the recorder's highest trackable value (values above it are clamped by the
    recorder and counted, as one by one).
    """
    a = np.asarray(samples, dtype=np.int64)
    if a.size == 0:
        return
    if a.size < 64:  # grouping pays off from a few dozen samples
        rec.record_many(a.tolist())
        return
    low = a < LOWEST_NS
    high = a > highest_ns
    huge = (a >= _FLOAT_EXACT) & ~high  # in range but too big for the float bit length: never, in practice
    n_low = int(low.sum())
    n_high = int(high.sum())
    # The recorder clamps a value out of range to the bound and counts it: every such value adds the
    # same to the histogram and the sum, so one call with the count does what one call each would.
    # (Receipt minus an old replayed event time is out of range for every sample, for instance.)
    if n_low:
        rec.record(int(a[low][0]), n_low)
    if n_high:
        rec.record(int(a[high][0]), n_high)
    if huge.any():
        for v in a[huge].tolist():
            rec.record(v)
        high |= huge
    mid = a[~(low | high)] if (n_low or n_high or huge.any()) else a
    if mid.size == 0:
        return
    bits = np.frexp(mid.astype(np.float64))[1].astype(np.int64)  # bit_length, exact below 2**53
    shift = np.maximum(bits - _EXACT_BITS, 0)
    key = (mid >> shift) << shift  # start of the sample's aligned group
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    vals_sorted = mid[order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    counts = np.diff(np.r_[starts, key_sorted.size])
    sums = np.add.reduceat(vals_sorted, starts)  # int64: exact
    # floor(mean) and floor(mean) + 1 both lie within [group min, group max] when the division has
    # a remainder, so both fall in the group's counter; together they carry the group's exact sum.
    q = sums // counts
    r = sums - q * counts
    record = rec.record
    for value, count, rem in zip(q.tolist(), counts.tolist(), r.tolist(), strict=True):
        if rem:
            record(value + 1, rem)
            if count > rem:
                record(value, count - rem)
        else:
            record(value, count)


def clock_readers(clock: Clock) -> tuple[Callable[[], int], Callable[[], int]]:
    """``(wall_ns, monotonic_ns)`` of ``clock`` for per-frame use.

    For the system clock these are :func:`time.time_ns` and :func:`time.monotonic_ns` themselves:
    the same readings without a Python-level method call around each (three per frame).
    """
    if type(clock) is SystemClock:
        return time.time_ns, time.monotonic_ns
    return clock.wall_ns, clock.monotonic_ns
