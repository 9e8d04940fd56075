"""Prometheus ``/metrics`` for a running feed (``--metrics-port``).

The hot path only increments plain integers; a custom collector takes one feed snapshot
(:class:`~tickpath.feed.snapshot.FeedSnapshot`) when Prometheus scrapes, so exporting costs nothing
per message. Served by aiohttp on the feed's own event loop
(no extra thread reading counters while they change).

Exported (all prefixed ``tickpath_feed_``): ``frames_total{venue,kind}``, ``events_total{venue,channel}``,
``malformed_total{venue,reason}``, ``resyncs_total``, ``gaps_total``, ``duplicates_total``,
``reconnects_total``, ``stale_closes_total``, ``ws_errors_total``, ``rollovers_total``, ``snapshots_total{result}``,
``queue_depth{queue}``, ``sink_events_total{sink,state}``, ``backpressure_waits_total``, and the histogram
``receipt_minus_event_seconds`` (frame receipt minus the exchange event time, corrected by the
clock offset measured at start). Besides, ``tickpath_event_loop_lag_seconds`` (histogram) and
``tickpath_event_loop_lag_max_seconds`` (gauge): how late a 100 ms tick of the feed's loop ran
(:mod:`tickpath.feed.looplag`); ``tickpath_feed_resident_bytes``, ``malloc_trims_total`` and
``malloc_trim_released_bytes_total`` (:mod:`tickpath.feed.memtrim`). The HTTP side is
:class:`tickpath.metrics.MetricsServer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from tickpath import metrics
from tickpath.feed.looplag import LoopLagMonitor
from tickpath.feed.snapshot import FeedSnapshot
from tickpath.metrics import recorder_histogram
from tickpath.sinks.base import SinkStats

# Bucket bounds (seconds) of the receipt-minus-event histogram: 100 us to 10 s.
BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
P = "tickpath_feed_"


def _counter(name: str, doc: str, venue: str, value: int) -> CounterMetricFamily:
    c = CounterMetricFamily(P + name, doc, labels=["venue"])
    c.add_metric([venue], value)
    return c


class FeedCollector(Collector):
    """Reads one fresh snapshot of the feed at each scrape."""

    def __init__(self, snapshot: Callable[[], FeedSnapshot], loop_lag: LoopLagMonitor | None = None) -> None:
        self.snapshot = snapshot
        self.loop_lag = loop_lag

    def collect(self) -> Iterator[Any]:
        snap = self.snapshot()
        if self.loop_lag is not None:
            yield from loop_lag_families(self.loop_lag)
        if not snap.started:
            return
        yield from _memory_families(snap.engine_report.get("memory") or {})
        yield from _frame_families(snap)
        venue, books, conns = snap.venue, snap.books, snap.connections
        yield _counter("resyncs", "Book resets after a published book", venue, books.resyncs)
        yield _counter("gaps", "Sequence breaks detected", venue, books.gaps)
        yield _counter("crossed", "Updates that left a book crossed", venue, books.crossed)
        yield _counter("duplicates", "Events seen twice and ignored", venue, snap.frames.duplicates + books.duplicates)
        yield _counter("reconnects", "Unplanned reconnects", venue, conns.reconnects)
        yield _counter("stale_closes", "Connections closed as stale", venue, conns.stale_closes)
        yield _counter("ws_errors", "Connections ended by a WebSocket error, not a close frame", venue, conns.ws_errors)
        yield _counter("rollovers", "Planned connection rollovers", venue, conns.rollovers)
        if snap.fetches is not None:
            f = snap.fetches
            fetches = CounterMetricFamily(P + "snapshots", "REST depth snapshots", labels=["venue", "result"])
            fetches.add_metric([venue, "fetched"], f.fetched)
            fetches.add_metric([venue, "rate_limited"], f.rate_limited)
            fetches.add_metric([venue, "error"], f.errors)
            yield fetches
        depth = GaugeMetricFamily(P + "queue_depth", "Items waiting per queue", labels=["queue"])
        for q, n in snap.pipeline.queue_depths.items():
            depth.add_metric([q], n)
        yield depth
        yield from sink_families(P, snap.sinks)
        yield _counter(
            "backpressure_waits", "Times the feed waited for a sink", venue, snap.pipeline.backpressure_waits
        )
        if snap.latency is not None:
            yield recorder_histogram(
                P + "receipt_minus_event_seconds",
                "Frame receipt minus exchange event time (clock-offset corrected)",
                snap.latency.event_histogram,
                {"venue": venue},
                BUCKETS_S,
            )


def _memory_families(mem: Mapping[str, Any]) -> Iterator[Metric]:
    """RSS and the malloc_trim timer (feed/memtrim.py): RSS that falls at a trim was retained, not live."""
    if not mem:
        return
    rss = GaugeMetricFamily(P + "resident_bytes", "Resident set size of this feed process")
    rss.add_metric([], mem["rss_mb"] * 1e6)
    yield rss
    yield CounterMetricFamily(P + "malloc_trims", "malloc_trim runs of the memory timer", value=mem["trims"])
    yield CounterMetricFamily(
        P + "malloc_trim_released_bytes", "RSS given back by malloc_trim, summed", value=mem["trim_released_mb"] * 1e6
    )


def loop_lag_families(mon: LoopLagMonitor) -> tuple[Metric, GaugeMetricFamily]:
    """The lag histogram (seconds; same buckets as receipt-minus-event) and its maximum."""
    hist = recorder_histogram(
        "tickpath_event_loop_lag_seconds", "How late a periodic task of the event loop ran", mon.recorder, {}, BUCKETS_S
    )
    mx = GaugeMetricFamily("tickpath_event_loop_lag_max_seconds", "Largest event-loop lag seen this run")
    mx.add_metric([], mon.max_ns / 1e9)
    return hist, mx


def _frame_families(snap: FeedSnapshot) -> Iterator[CounterMetricFamily]:
    venue, fr = snap.venue, snap.frames
    frames = CounterMetricFamily(P + "frames", "WebSocket frames received, by kind", labels=["venue", "kind"])
    for kind, n in (
        ("depth", fr.depth),
        ("trade", fr.trades),
        ("ticker", fr.tickers),
        ("kline", fr.klines),
        ("control", fr.control),
        ("malformed", fr.malformed_total),
    ):
        frames.add_metric([venue, kind], n)
    yield frames
    events = CounterMetricFamily(P + "events", "Normalized events published, by channel", labels=["venue", "channel"])
    for ch, n in snap.pipeline.by_channel.items():
        events.add_metric([venue, ch], n)
    yield events
    bad = CounterMetricFamily(P + "malformed", "Frames rejected, by reason", labels=["venue", "reason"])
    for reason, n in fr.malformed.items():
        bad.add_metric([venue, reason], n)
    yield bad


def sink_families(p: str, stats: Mapping[str, SinkStats]) -> tuple[CounterMetricFamily, GaugeMetricFamily]:
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


class MetricsServer(metrics.MetricsServer):
    """``GET /metrics`` of one feed on ``host:port`` (port 0 = any free port; see :attr:`port`)."""

    def __init__(
        self,
        snapshot: Callable[[], FeedSnapshot],
        host: str = "127.0.0.1",
        port: int = 0,
        loop_lag: LoopLagMonitor | None = None,
    ) -> None:
        super().__init__(FeedCollector(snapshot, loop_lag), host, port)


class _Families(Collector):
    """The families of the last scrape of the workers, yielded as they were read."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def collect(self) -> Iterator[Any]:
        yield from self.families


class WorkersMetricsServer(metrics.MetricsServer):
    """One ``/metrics`` for ``feed --workers N``: at each scrape, every live worker's own /metrics
    (on a loopback port it reported) read and relabelled ``worker="k"``, plus the supervisor's
    ``tickpath_feed_worker_up{worker}`` and ``tickpath_feed_worker_restarts_total{worker}``. A worker
    being restarted is simply absent from that scrape (``worker_up`` 0), as Prometheus expects."""

    def __init__(self, supervisor: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._families = _Families()
        super().__init__(self._families, host, port)
        self.supervisor = supervisor

    async def _metrics(self, request: web.Request) -> web.Response:
        self._families.families = await self._scrape()
        return await super()._metrics(request)

    async def _scrape(self) -> list[Any]:
        workers = list(self.supervisor.workers)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as http:
            texts = await asyncio.gather(*(_read_worker(http, w) for w in workers))
        merged: dict[str, Metric] = {}
        for w, text in zip(workers, texts, strict=True):
            for fam in text_string_to_metric_families(text) if text else ():
                into = merged.setdefault(fam.name, Metric(fam.name, fam.documentation, fam.type))
                for smp in fam.samples:
                    into.samples.append(smp._replace(labels={**smp.labels, "worker": str(w.index)}))
        up = GaugeMetricFamily(P + "worker_up", "1 while the worker process runs", labels=["worker"])
        restarts = CounterMetricFamily(P + "worker_restarts", "Worker processes restarted", labels=["worker"])
        for w in workers:
            up.add_metric([str(w.index)], 1 if w.up else 0)
            restarts.add_metric([str(w.index)], w.restarts)
        return [*merged.values(), up, restarts]


async def _read_worker(http: aiohttp.ClientSession, w: Any) -> str:
    port = (w.last or {}).get("metrics_port") if w.up else None
    if not port:
        return ""
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            return await resp.text() if resp.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError):
        return ""  # died or restarting: absent from this scrape
