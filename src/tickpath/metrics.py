"""Prometheus ``/metrics`` over HTTP for any tickpath process (feed, ingest, sim).

Each process keeps plain counters on its hot path and registers one custom collector that reads them
when Prometheus scrapes, so exporting costs nothing per message. The server runs on the process's
own event loop (no thread reading counters while they change). Names follow one style:
``tickpath_<command>_<what>``, counters end in ``_total``, durations are histograms in seconds.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from tickpath.errors import ConfigError
from tickpath.stats import LatencyRecorder

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def check_port(port: int | None) -> None:
    """A ``--metrics-port`` out of range is a ConfigError (exit 2) before anything starts."""
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"metrics port {port} out of range 0..65535")


def recorder_histogram(
    name: str, doc: str, rec: LatencyRecorder, labels: dict[str, str], buckets_s: Sequence[float]
) -> HistogramMetricFamily:
    """A Prometheus histogram (seconds) of a :class:`LatencyRecorder` (nanoseconds), read now."""
    hist = rec._hist  # the recorder's HdrHistogram, read at scrape time only
    bounds_ns = [int(b * 1e9) for b in buckets_s]
    cumulative = [0] * len(bounds_ns)
    for item in hist.get_recorded_iterator():
        v, c = item.value_iterated_to, item.count_at_value_iterated_to
        for i, b in enumerate(bounds_ns):
            if v <= b:
                cumulative[i] += c
    total = rec.count
    buckets = [(repr(b), float(n)) for b, n in zip(buckets_s, cumulative, strict=True)]
    buckets.append(("+Inf", float(total)))
    total_s = float(rec.mean() * total / 1e9) if total else 0.0
    h = HistogramMetricFamily(name, doc, labels=list(labels))
    h.add_metric(list(labels.values()), buckets, sum_value=total_s)
    return h


class MetricsServer:
    """``GET /metrics`` of one collector on ``host:port`` (port 0 = any free port; see :attr:`port`)."""

    def __init__(self, collector: Collector, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.host = host
        self.requested_port = port
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc.strerror}"
            raise ConfigError(
                f"--metrics-port {self.requested_port} on {self.host} {why}; pick another port (0 = any free one)"
            ) from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.requested_port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
