"""The feed's /metrics endpoint: a port in use is a clear error, and sink levels are gauges."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from tickpath.errors import ConfigError
from tickpath.feed.metrics import MetricsServer, sink_families
from tickpath.sinks.base import SinkStats
from tickpath.sinks.nats import NatsSinkStats


async def test_a_metrics_port_in_use_is_a_config_error_not_a_traceback() -> None:
    """A second server on the same port: ConfigError naming --metrics-port and the reason (exit 2)."""
    first = MetricsServer(snapshot=None, port=0)  # type: ignore[arg-type]  # the snapshot is taken only when scraped
    await first.start()
    try:
        second = MetricsServer(snapshot=None, port=first.port)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=rf"--metrics-port {first.port} on 127.0.0.1 is already in use"):
            await second.start()
    finally:
        await first.stop()


def test_sink_levels_are_gauges_and_counts_are_counters() -> None:
    """spool_pending and inflight go down as well as up: exported as gauges, the counts as counters."""
    stats: dict[str, SinkStats] = {
        "nats": NatsSinkStats(accepted=10, written=7, spooled=3, spool_pending=2, inflight=1),
        "duckdb": SinkStats(accepted=10, written=10),
    }

    class Fixed(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield from sink_families("tickpath_feed_", stats)

    reg = CollectorRegistry()
    reg.register(Fixed())
    text = generate_latest(reg).decode()
    assert "# TYPE tickpath_feed_sink_events_total counter" in text
    assert 'tickpath_feed_sink_events_total{sink="nats",state="spooled"} 3.0' in text
    assert "# TYPE tickpath_feed_sink_pending gauge" in text
    assert 'tickpath_feed_sink_pending{sink="nats",state="spool_pending"} 2.0' in text
    assert 'state="spool_pending"' not in text.split("# TYPE tickpath_feed_sink_pending")[0]
    assert 'tickpath_feed_sink_events_total{sink="duckdb",state="written"} 10.0' in text
