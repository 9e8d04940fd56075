"""The engine's latency samples reach its histograms exactly once."""

from __future__ import annotations

from tickpath.feed.engine import FeedEngine
from tickpath.stats import LatencyRecorder


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
