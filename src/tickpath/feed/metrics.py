"""Prometheus ``/metrics`` for a running feed (``--metrics-port``).

The hot path only increments plain integers; a custom collector reads them when Prometheus
scrapes, so exporting costs nothing per message. Served by aiohttp on the feed's own event loop
(no extra thread reading counters while they change).

Exported (all prefixed ``tickpath_feed_``): ``frames_total{venue,kind}``, ``events_total{venue,channel}``,
``malformed_total{venue,reason}``, ``resyncs_total``, ``gaps_total``, ``duplicates_total``,
``reconnects_total``, ``stale_closes_total``, ``rollovers_total``, ``snapshots_total{result}``,
``queue_depth{queue}``, ``sink_events_total{sink,state}``, ``backpressure_waits_total``, and the histogram
``receipt_minus_event_seconds`` (frame receipt minus the exchange event time, corrected by the
clock offset measured at start). The HTTP side is :class:`tickpath.metrics.MetricsServer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tickpath import metrics
from tickpath.metrics import recorder_histogram
from tickpath.sinks.base import SinkStats

if TYPE_CHECKING:
    from tickpath.feed.run import Feed

# Bucket bounds (seconds) of the receipt-minus-event histogram: 100 us to 10 s.
BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class FeedCollector(Collector):
    """Reads the feed's counters at scrape time."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    def collect(self) -> Iterator[Any]:
        f = self.feed
        venue = f.config.venue
        eng = f.engine
        p = "tickpath_feed_"
        if eng is None:
            return
        s = eng.stats
        frames = CounterMetricFamily(p + "frames", "WebSocket frames received, by kind", labels=["venue", "kind"])
        for kind, n in (
            ("depth", s.depth),
            ("trade", s.trades),
            ("ticker", s.tickers),
            ("kline", s.klines),
            ("control", s.control),
            ("malformed", s.malformed_total),
        ):
            frames.add_metric([venue, kind], n)
        yield frames
        events = CounterMetricFamily(
            p + "events", "Normalized events published, by channel", labels=["venue", "channel"]
        )
        for ch, n in f.pipeline.stats.by_channel.items():
            events.add_metric([venue, ch], n)
        yield events
        bad = CounterMetricFamily(p + "malformed", "Frames rejected, by reason", labels=["venue", "reason"])
        for reason, n in s.malformed.items():
            bad.add_metric([venue, reason], n)
        yield bad
        books = eng.book_totals()
        for name, key, doc in (
            ("resyncs", "resyncs", "Book resets after a published book"),
            ("gaps", "gaps", "Sequence breaks detected"),
            ("crossed", "crossed", "Updates that left a book crossed"),
        ):
            c = CounterMetricFamily(p + name, doc, labels=["venue"])
            c.add_metric([venue], books.get(key, 0))
            yield c
        dup = CounterMetricFamily(p + "duplicates", "Events seen twice and ignored", labels=["venue"])
        dup.add_metric([venue], s.duplicates + books.get("duplicates", 0))
        yield dup
        conns = f.connections()
        for name, value, doc in (
            ("reconnects", sum(c.reconnects for c in conns), "Unplanned reconnects"),
            ("stale_closes", sum(c.stale_closes for c in conns), "Connections closed as stale"),
            ("rollovers", sum(r.rollovers for r in f.runners), "Planned connection rollovers"),
        ):
            c = CounterMetricFamily(p + name, doc, labels=["venue"])
            c.add_metric([venue], value)
            yield c
        if f.fetcher is not None:
            st = f.fetcher.stats
            snap = CounterMetricFamily(p + "snapshots", "REST depth snapshots", labels=["venue", "result"])
            snap.add_metric([venue, "fetched"], st.fetched)
            snap.add_metric([venue, "rate_limited"], st.rate_limited)
            snap.add_metric([venue, "error"], st.errors)
            yield snap
        depth = GaugeMetricFamily(p + "queue_depth", "Items waiting per queue", labels=["queue"])
        for q, n in f.pipeline.queue_depths().items():
            depth.add_metric([q], n)
        yield depth
        yield from sink_families(p, f.pipeline.sink_stats())
        bp = CounterMetricFamily(p + "backpressure_waits", "Times the feed waited for a sink", labels=["venue"])
        bp.add_metric([venue], f.pipeline.stats.backpressure_waits)
        yield bp
        eng.drain_latency()
        yield _histogram(
            p + "receipt_minus_event_seconds", "Frame receipt minus exchange event time (clock-offset corrected)", eng
        )


def sink_families(p: str, stats: dict[str, SinkStats]) -> tuple[CounterMetricFamily, GaugeMetricFamily]:
    """Every number each sink keeps: counters (accepted/written/dropped/errors, published/retried/
    spooled) and, as gauges, the levels that go down too (its stats' :data:`~tickpath.sinks.base.GAUGE`
    fields: spool_pending, inflight, outstanding), which ``rate()`` and ``increase()`` would misread
    as counter resets."""
    sinks = CounterMetricFamily(p + "sink_events", "Events per sink and state", labels=["sink", "state"])
    held = GaugeMetricFamily(
        p + "sink_pending", "Events a sink holds now, per state (up and down)", labels=["sink", "state"]
    )
    for name, st in stats.items():
        gauges = st.gauges()
        for state, n in st.as_dict().items():
            (held if state in gauges else sinks).add_metric([name, state], n)
    return sinks, held


def _histogram(name: str, doc: str, eng: Any) -> HistogramMetricFamily:
    return recorder_histogram(name, doc, eng.event_latency, {"venue": eng.venue}, BUCKETS_S)


class MetricsServer(metrics.MetricsServer):
    """``GET /metrics`` of one feed on ``host:port`` (port 0 = any free port; see :attr:`port`)."""

    def __init__(self, feed: Feed, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(FeedCollector(feed), host, port)
