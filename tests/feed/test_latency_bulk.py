"""Bulk recording of the feed's latency samples gives exactly what one-by-one recording gives."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from tickpath.feed.engine import FeedEngine
from tickpath.feed.latency import record_samples
from tickpath.stats import LatencyRecorder
from tickpath.stats.recorder import HIGHEST_NS


def _state(rec: LatencyRecorder) -> tuple[object, ...]:
    """Everything a recorder can report: counters, total, min, max, exact mean, clamped."""
    h = rec._hist
    counts = [h.get_count_at_index(i) for i in range(h.counts_len)]
    return (counts, rec.count, rec.summary(), rec.mean(), rec.clamped, rec.encode() == rec.encode())


def _both(samples: list[int]) -> tuple[LatencyRecorder, LatencyRecorder]:
    one = LatencyRecorder("one")
    one.record_many(samples)
    bulk = LatencyRecorder("bulk")
    record_samples(bulk, array("q", samples), HIGHEST_NS)
    return one, bulk


latencies = st.one_of(
    st.integers(min_value=-10**9, max_value=0),  # clock-corrected one-way delays can be negative
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


class _Sink:
    def emit(self, events: list[object]) -> None:
        return None


def test_engine_drain_moves_every_sample_once() -> None:
    """drain_latency empties the sample buffers into the histograms, leaving nothing to record twice."""
    eng = FeedEngine("futures", ("BTCUSDT",), _Sink(), session="t")  # type: ignore[arg-type]
    eng._lat_enqueue.extend(range(1_000, 101_000, 7))
    eng._lat_event.extend([-3, 5, 2_000_000] * 40)
    expected_enq = LatencyRecorder()
    expected_enq.record_many(range(1_000, 101_000, 7))
    eng.drain_latency()
    eng.drain_latency()
    assert not eng._lat_enqueue and not eng._lat_event
    assert eng.enqueue_latency.summary() == expected_enq.summary()
    assert eng.event_latency.count == 120 and eng.event_latency.clamped == 40  # the -3s
