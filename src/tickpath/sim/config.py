"""Frozen configuration of the simulator: venues, symbols, market rate, zones, limits, replay, TLS."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.venues.binance.endpoints import KNOWN_VENUES, VENUES, Venue, endpoints

MAX_RATE = 1_000_000.0  # updates per second per symbol; far above any venue, far below float overflow
MAX_CLOCK_OFFSET_MS = 86_400_000.0  # one day either way keeps exchange timestamps sane


def _finite(what: str, value: float) -> None:
    """NaN slips through every comparison and infinity overflows the schedulers: reject both first."""
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value}")


@dataclass(frozen=True)
class LatencyProfile:
    """One-way delay model of a zone, applied to every frame and to each direction of a REST call.

    A message's delay is ``delay_ms + jitter + spike``: ``jitter`` is drawn from ``jitter_dist``
    ("exponential": mean ``jitter_ms``; "uniform": 0..2*``jitter_ms``; "normal": N(0, ``jitter_ms``)
    clipped so the total is never negative), and with probability ``spike_prob`` ``spike_ms`` is added.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    spike_prob: float = 0.0
    spike_ms: float = 0.0
    jitter_dist: str = "exponential"

    def __post_init__(self) -> None:
        for name in ("delay_ms", "jitter_ms", "spike_prob", "spike_ms"):
            _finite(f"latency {name}", getattr(self, name))
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.spike_ms < 0:
            raise ConfigError("latency delay, jitter and spike must not be negative")
        if not 0.0 <= self.spike_prob <= 1.0:
            raise ConfigError(f"spike probability {self.spike_prob} is not between 0 and 1")
        if self.jitter_dist not in ("exponential", "uniform", "normal"):
            raise ConfigError(f"unknown jitter distribution {self.jitter_dist!r}; use exponential, uniform or normal")

    @property
    def is_zero(self) -> bool:
        return self.delay_ms == 0 and self.jitter_ms == 0 and (self.spike_prob == 0 or self.spike_ms == 0)


@dataclass(frozen=True)
class ZoneConfig:
    """A named listener location with its own latency profile."""

    name: str
    latency: LatencyProfile = field(default_factory=LatencyProfile)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", self.name):
            raise ConfigError(f"zone name {self.name!r} must be 1-40 letters, digits, '_', '.', '-'")


@dataclass(frozen=True)
class ReplayConfig:
    """Serve a recorded capture instead of the simulated market on the capture's venue.

    ``speed`` scales recorded timing (10 = ten times faster); ``speed=0`` sends as fast as possible.
    """

    ws_path: Path
    http_path: Path | None = None
    speed: float = 1.0

    def __post_init__(self) -> None:
        _finite("replay speed", self.speed)
        if self.speed < 0:
            raise ConfigError(f"replay speed {self.speed} must be >= 0 (0 = as fast as possible)")


LISTING_ACTIONS = ("list", "delist", "halt", "resume")


@dataclass(frozen=True)
class ListingEvent:
    """A change to a ``--universe`` venue's listing ``at_s`` seconds after the start: ``list`` a new
    symbol, ``delist`` one (gone from exchangeInfo, streams silent), ``halt`` it (status BREAK, no
    updates) or ``resume`` it (TRADING again)."""

    at_s: float
    venue: str
    action: str
    symbol: str

    def __post_init__(self) -> None:
        _finite("listing time", self.at_s)
        if self.at_s < 0:
            raise ConfigError(f"listing time {self.at_s} must not be negative")
        if self.action not in LISTING_ACTIONS:
            raise ConfigError(f"listing action {self.action!r}: use {', '.join(LISTING_ACTIONS)}")
        if not re.fullmatch(r"[A-Z0-9_]{2,30}", self.symbol):
            raise UnknownSymbolError(f"listing symbol {self.symbol!r} must be upper case, e.g. NEWUSDT")


@dataclass(frozen=True)
class SimConfig:
    """Everything a :class:`~tickpath.sim.Simulator` needs. ``None`` limits mean Binance's documented values."""

    venues: tuple[str, ...] = ("spot", "futures")
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    seed: int = 1
    rate: float = 100.0  # market updates per second per symbol; 0 = only when stepped by hand
    zones: tuple[ZoneConfig, ...] = (ZoneConfig("local"),)
    clock_offset_ms: float = 0.0  # exchange clock minus true clock
    tls: bool = False
    host: str = "127.0.0.1"
    port: int = 0  # base port; listeners take port, port+1, ...; 0 = free ports
    ping_interval_s: float | None = None
    pong_timeout_s: float | None = None
    max_lifetime_s: float | None = None
    max_streams_per_connection: int | None = None
    max_incoming_messages_per_s: int | None = None
    weight_budget: int | None = None  # REST request weight per minute per client IP
    ban_after_429: int = 5  # requests answered 429 in one window before a 418 ban
    ban_s: float = 120.0  # first 418 ban length (Binance: 2 minutes, escalating)
    book_levels: int = 1200  # target levels per side
    history_updates: int = 200_000  # update ids kept for ground truth
    replay: tuple[ReplayConfig, ...] = ()
    # "binance": the whole exchange's order of magnitude per venue (tickpath.sim.universe), replacing
    # ``symbols``; ``rate`` is then the mean per symbol, spread heavy-tailed, with 5x bursts
    universe: str | None = None
    universe_size: int | None = None  # symbols per venue instead of the universe's (small tests)
    listings: tuple[ListingEvent, ...] = ()  # listing changes during the run (universe only)
    # render this many seconds of every simulated venue up front and play them back as bytes
    # (tickpath.sim.prerender); prerender_speed scales the playback's timing
    prerender_s: float | None = None
    prerender_speed: float = 1.0
    prerender_wait: bool = False  # the timeline starts at the first subscription, not at start-up
    prerender_warmup_s: float = 0.0  # the timeline's first seconds play at real time, then at the speed

    def __post_init__(self) -> None:
        if not self.venues:
            raise ConfigError(f"at least one venue is needed ({KNOWN_VENUES})")
        for v in self.venues:
            if v not in VENUES:
                endpoints(v)  # raises the clear unknown-venue error (aliases are not stored)
                raise UnknownSymbolError(f"unknown venue {v!r}; known venues: {KNOWN_VENUES}")
        if len(set(self.venues)) != len(self.venues):
            raise ConfigError(f"venue listed twice in {self.venues}")
        if not self.symbols and not self.replay:
            raise ConfigError("at least one symbol is needed")
        for s in self.symbols:
            if not re.fullmatch(r"[A-Z0-9_]{2,30}", s):
                raise UnknownSymbolError(f"unknown symbol {s!r}: symbols are upper case, e.g. BTCUSDT, BTCUSD_PERP")
        _finite("rate", self.rate)
        if not 0 <= self.rate <= MAX_RATE:
            raise ConfigError(f"rate {self.rate:g} must be between 0 and {MAX_RATE:g} updates per second")
        _finite("clock_offset_ms", self.clock_offset_ms)
        if abs(self.clock_offset_ms) > MAX_CLOCK_OFFSET_MS:
            raise ConfigError(
                f"clock_offset_ms {self.clock_offset_ms:g} is more than a day (limit ±{MAX_CLOCK_OFFSET_MS:g} ms)"
            )
        if not self.zones:
            raise ConfigError("at least one zone is needed")
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ConfigError(f"zone names must be unique, got {names}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} out of range")
        for name in ("ping_interval_s", "pong_timeout_s", "max_lifetime_s"):
            val = getattr(self, name)
            if val is not None and not (math.isfinite(val) and val > 0):
                raise ConfigError(f"{name} must be a positive, finite number of seconds, got {val}")
        _finite("ban_s", self.ban_s)
        if self.ban_s <= 0 or self.ban_after_429 < 1:
            raise ConfigError("ban_s must be positive and ban_after_429 at least 1")
        if self.weight_budget is not None and self.weight_budget < 1:
            raise ConfigError("weight budget must be at least 1")
        if self.book_levels < 20:
            raise ConfigError("book_levels must be at least 20")
        self._check_universe()
        self._check_prerender()

    def _check_prerender(self) -> None:
        _finite("prerender speed", self.prerender_speed)
        if self.prerender_speed <= 0:
            raise ConfigError(f"prerender speed {self.prerender_speed:g} must be > 0")
        _finite("prerender warm-up", self.prerender_warmup_s)
        if self.prerender_warmup_s < 0:
            raise ConfigError(f"prerender warm-up {self.prerender_warmup_s:g} s must not be negative")
        if self.prerender_s is None:
            return
        _finite("prerender seconds", self.prerender_s)
        if not 0 < self.prerender_s <= 3600:
            raise ConfigError(f"prerender {self.prerender_s:g} s: use 0 < seconds <= 3600 (it is held in memory)")
        if self.listings:
            raise ConfigError("listing changes cannot be pre-rendered: drop --listing or --prerender")

    def _check_universe(self) -> None:
        from tickpath.sim.universe import UNIVERSES

        if self.universe is not None and self.universe not in UNIVERSES:
            raise ConfigError(f"unknown universe {self.universe!r}: use {', '.join(UNIVERSES)}")
        if self.universe_size is not None and self.universe_size < 1:
            raise ConfigError(f"universe size {self.universe_size} must be at least 1")
        if self.listings and self.universe is None:
            raise ConfigError("listing changes need a universe (--universe binance)")
        for ev in self.listings:
            if ev.venue not in self.venues:
                raise ConfigError(f"listing change for {ev.venue}, which is not simulated ({', '.join(self.venues)})")

    @property
    def venue_list(self) -> tuple[Venue, ...]:
        return tuple(v for v in VENUES if v in self.venues)

    def zone(self, name: str) -> ZoneConfig:
        for z in self.zones:
            if z.name == name:
                return z
        raise ConfigError(f"unknown zone {name!r}; zones: {', '.join(z.name for z in self.zones)}")


_ZONE_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+):(?P<delay>\d+(?:\.\d+)?)ms"
    r"(?:(?:±|\+-|~)(?P<jitter>\d+(?:\.\d+)?)ms)?"
    r"(?:,spike=(?P<sp>0?\.\d+|[01])x(?P<sms>\d+(?:\.\d+)?)ms)?$"
)


def parse_zones(spec: str) -> tuple[ZoneConfig, ...]:
    """Parse the CLI zone syntax: ``name:DELAYms[±JITTERms][,spike=PxMSms]`` joined by ``;`` or ``,``.

    Examples: ``"a:5ms"``, ``"a:5ms±0.5ms;b:1ms"``, ``"tokyo:2ms+-0.3ms,spike=0.01x40ms"``
    (``+-`` or ``~`` may replace ``±``).
    """
    out: list[ZoneConfig] = []
    # "," separates zones unless it starts a spike clause
    items = [p for p in re.split(r";|,(?!spike=)", spec) if p.strip()]
    for item in items:
        m = _ZONE_RE.match(item.strip())
        if not m:
            raise ConfigError(
                f"bad zone {item!r}: expected NAME:DELAYms[±JITTERms][,spike=PROBxMSms], e.g. a:5ms±0.5ms"
            )
        out.append(
            ZoneConfig(
                m["name"],
                LatencyProfile(
                    delay_ms=float(m["delay"]),
                    jitter_ms=float(m["jitter"] or 0.0),
                    spike_prob=float(m["sp"] or 0.0),
                    spike_ms=float(m["sms"] or 0.0),
                ),
            )
        )
    if not out:
        raise ConfigError("no zone given")
    return tuple(out)
