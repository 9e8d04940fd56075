"""What one listener (a zone serving a venue) shares with its WebSocket and REST handlers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tickpath.clock import Clock
from tickpath.sim.config import SimConfig, ZoneConfig
from tickpath.sim.latency import DelaySampler
from tickpath.venues.binance.endpoints import VenueEndpoints

if TYPE_CHECKING:
    from tickpath.sim.faults import FaultState
    from tickpath.sim.hub import Hub
    from tickpath.sim.prerender import Playback
    from tickpath.sim.replay import ReplaySource
    from tickpath.sim.rest import WeightLedger


@dataclass(frozen=True)
class Limits:
    """The WebSocket limits in force (documented values unless the config overrides them)."""

    ping_interval_s: float
    pong_timeout_s: float
    max_lifetime_s: float
    max_streams: int
    max_incoming_per_s: int

    @classmethod
    def of(cls, ep: VenueEndpoints, cfg: SimConfig) -> Limits:
        return cls(
            ping_interval_s=cfg.ping_interval_s or ep.ping_interval_s,
            pong_timeout_s=cfg.pong_timeout_s or ep.pong_timeout_s,
            max_lifetime_s=cfg.max_lifetime_s or ep.max_lifetime_s,
            max_streams=cfg.max_streams_per_connection or ep.max_streams_per_connection,
            max_incoming_per_s=cfg.max_incoming_messages_per_s or ep.max_incoming_messages_per_s,
        )


@dataclass
class ListenerContext:
    config: SimConfig
    ep: VenueEndpoints
    zone: ZoneConfig
    clock: Clock
    limits: Limits
    hub: Hub | None
    replay: ReplaySource | None
    weights: WeightLedger
    faults: FaultState
    offset_ns: int
    connections: set[Any] = field(default_factory=set)  # WsConnection
    playback: Playback | None = None  # --prerender: serves the hub's rendered frames
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def venue(self) -> str:
        return self.ep.venue

    def sampler(self, purpose: str) -> DelaySampler:
        """A delay sampler with a seed of its own, so runs with one seed are repeatable."""
        return DelaySampler(
            self.zone.latency, f"{self.config.seed}/{self.zone.name}/{self.venue}/{purpose}/{next(self._seq)}"
        )

    def exchange_ms(self) -> int:
        return (self.clock.wall_ns() + self.offset_ns) // 1_000_000


CTX: web.AppKey[ListenerContext] = web.AppKey("tickpath_sim_ctx", ListenerContext)
