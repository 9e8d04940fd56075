"""``record_array`` (numpy, one pass) gives exactly what recording values one by one gives."""

from __future__ import annotations

from array import array

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpath.stats import LatencyRecorder
from tickpath.stats.recorder import HIGHEST_NS


def _state(rec: LatencyRecorder) -> tuple[object, ...]:
    """Everything a recorder can report: counters, total, min, max, exact mean, clamped."""
    h = rec._hist
    counts = [h.get_count_at_index(i) for i in range(h.counts_len)]
    return (
        counts,
        rec.count,
        h.get_min_value(),
        h.get_max_value(),
        rec.summary(),
        rec.mean(),
        rec.clamped,
        rec.encode(),
    )


def _both(samples: list[int]) -> tuple[LatencyRecorder, LatencyRecorder]:
    one = LatencyRecorder("one")
    one.record_many(samples)
    bulk = LatencyRecorder("bulk")
    bulk.record_array(array("q", samples))
    return one, bulk


latencies = st.one_of(
    st.integers(min_value=-(10**9), max_value=0),  # clock-corrected one-way delays can be negative
    st.integers(min_value=1, max_value=5_000),  # the exact region
    st.integers(min_value=5_000, max_value=10**7),
    st.integers(min_value=10**7, max_value=HIGHEST_NS * 2),  # beyond the highest: clamped
)


@settings(max_examples=60, deadline=None)
@given(st.lists(latencies, min_size=0, max_size=600))
def test_bulk_recording_equals_one_by_one(samples: list[int]) -> None:
    """Counters, count, percentiles, min, max, exact mean and clamped count are all identical."""
    one, bulk = _both(samples)
    assert _state(bulk) == _state(one)
    assert bulk.summary() == one.summary()


def test_bulk_recording_of_a_realistic_second() -> None:
    """Ten thousand spread-out samples with many equal counters: same summary and mean to the ns."""
    samples = [4_000 + (i * 7919) % 400_000 + (i % 13) for i in range(10_000)] + [-5, 0, HIGHEST_NS + 1]
    one, bulk = _both(samples)
    assert _state(bulk) == _state(one)
    assert bulk.mean() == one.mean() and bulk.clamped == one.clamped == 3


def test_float_values_truncate_like_record() -> None:
    """Float latencies (e.g. from a float clock) land in the same counters as ``record(int(v))``."""
    values = [0.5, 1.9, 2047.999, 123_456.7, -3.2]
    one = LatencyRecorder()
    for v in values:
        one.record(v)
    bulk = LatencyRecorder()
    bulk.record_array(np.array(values))
    assert _state(bulk) == _state(one)


def test_recording_adds_to_what_is_already_there() -> None:
    """Mixing per-value and bulk recording keeps one consistent histogram (min, max, sum)."""
    one = LatencyRecorder()
    bulk = LatencyRecorder()
    for rec in (one, bulk):
        rec.record(50_000)
    one.record_many([10, 90_000_000])
    bulk.record_array([10, 90_000_000])
    assert _state(bulk) == _state(one)
