"""Prometheus ``/metrics`` for a running simulator (``tickpath sim --metrics-port``).

Exported (all prefixed ``tickpath_sim_``): ``frames_sent_total{venue}`` (WebSocket messages sent,
simulated or replayed), ``events_total{venue}`` (market updates generated), the gauge
``connections{venue,zone}`` (open WebSocket connections) and ``faults_total{kind}`` (fault commands
applied, on demand or by the schedule: drop, gap, duplicate, reorder, malformed, truncated, stall,
snapshot_fail, rate_limit, refuse); with ``--prerender`` the gauges ``playback_position_seconds``,
``playback_length_seconds`` and ``playback_held_seconds`` ``{venue}`` (timeline sent to the slowest
connection, rendered, and the longest one connection waited for its reader). Read at scrape time
from the counters the simulator keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tickpath.sim.server import Simulator


class SimCollector(Collector):
    """Reads one simulator's counters when Prometheus scrapes."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def collect(self) -> Iterator[Any]:
        sim = self.sim
        p = "tickpath_sim_"
        frames = CounterMetricFamily(p + "frames_sent", "WebSocket messages sent", labels=["venue"])
        events = CounterMetricFamily(p + "events", "Market updates generated", labels=["venue"])
        for venue in sim.venues:
            hub, replay = sim.hubs.get(venue), sim.replays.get(venue)
            sent = (hub.frames_sent if hub is not None else 0) + (replay.frames_sent if replay is not None else 0)
            frames.add_metric([venue], sent)
            events.add_metric([venue], hub.events if hub is not None else 0)
        yield frames
        yield events
        conns = GaugeMetricFamily(p + "connections", "Open WebSocket connections", labels=["venue", "zone"])
        for zone in sim.config.zones:
            for venue in sim.venues:
                conns.add_metric([venue, zone.name], sim.connections(venue, zone.name))
        yield conns
        if sim.playbacks:  # --prerender: how far each venue's timeline has played, and waited for readers
            pos = GaugeMetricFamily(
                p + "playback_position_seconds", "Timeline sent to the slowest connection", labels=["venue"]
            )
            length = GaugeMetricFamily(p + "playback_length_seconds", "Timeline rendered", labels=["venue"])
            held = GaugeMetricFamily(
                p + "playback_held_seconds", "Longest time one connection was held", labels=["venue"]
            )
            for name, pb in sim.playbacks.items():
                pos.add_metric([name], pb.position)
                length.add_metric([name], pb.tl.times[-1] if pb.tl.times else 0.0)
                held.add_metric([name], pb.held_s)
            yield from (pos, length, held)
        faults = CounterMetricFamily(p + "faults", "Fault commands applied, by kind", labels=["kind"])
        for kind, n in sorted(sim.faults.injected.items()):
            faults.add_metric([kind], n)
        yield faults
