"""Probe configuration: which methods, which endpoints, how many samples, at what rate.

The venue's documented hosts, ports and paths are looked up in one place (:func:`venue_defaults`);
``--host``, ``--rest-url`` and ``--ws-url`` override them, which is how tests point the probe at the
simulator on loopback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from tickpath.errors import ConfigError
from tickpath.venues.binance.endpoints import VENUES, Venue, endpoints
from tickpath.venues.binance.streams import StreamKind, stream_name

METHODS: tuple[str, ...] = ("dns", "tcp", "tls", "rest", "ws", "stream", "path")
TIMED_METHODS: tuple[str, ...] = ("tcp", "tls", "rest", "ws", "stream")


def duration_for(per_method_s: float, methods: tuple[str, ...]) -> float:
    """The ``--duration`` that gives each timed method ``per_method_s`` seconds: the probe shares its
    duration among them, running one after another (dns and path come on top)."""
    return per_method_s * max(1, sum(m in TIMED_METHODS for m in methods))


MAX_RATE = 100_000.0  # samples per second per method: far above a useful probe, below a runaway schedule
MAX_SECONDS = 86_400.0  # longest --duration, --timeout or --stream-seconds


@dataclass(frozen=True)
class VenueDefaults:
    """Where a venue's public market data lives (documented endpoints)."""

    venue: Venue
    rest_url: str
    ws_url: str
    ping_path: str
    time_path: str
    # Kinds of stream sampled by the ``stream`` method; each kind is also the label the report
    # groups one-way latency by.
    streams: tuple[StreamKind, ...]


# Which streams the probe measures is probe policy; their names and the venue facts come from
# venues/binance (streams.py, endpoints.py).
# By the venue's sync rules: spot-rule venues (spot, us, tr) have the busy raw @trade stream;
# futures-rule venues (futures, coinm) time their event-stamped bookTicker.
_STREAMS: dict[str, tuple[StreamKind, ...]] = {
    "spot": ("trade", "aggTrade", "depth"),
    "futures": ("aggTrade", "bookTicker", "depth"),
}
PROBE_DEPTH_SPEED_MS = 100  # the fastest depth stream every venue has


def venue_defaults(venue: str) -> VenueDefaults:
    """The documented endpoints of ``venue`` (one of ``VENUES`` in venues/binance/endpoints.py)."""
    if venue not in VENUES:
        raise ConfigError(f"unknown venue {venue!r}: use one of {', '.join(VENUES)}")
    ep = endpoints(venue)
    return VenueDefaults(
        venue=ep.venue,
        rest_url=ep.rest_base,
        ws_url=ep.ws_base,
        ping_path=ep.ping_path,
        time_path=ep.time_path,
        streams=_STREAMS[ep.rules],
    )


def parse_methods(text: str) -> tuple[str, ...]:
    """``"tcp,ws"`` or ``"full"`` -> ordered tuple of method names; unknown names are an error."""
    names = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if not names:
        raise ConfigError("no probe method given: use one or more of " + ", ".join(METHODS) + " or full")
    if "full" in names:
        return METHODS
    bad = [n for n in names if n not in METHODS]
    if bad:
        raise ConfigError(f"unknown probe method(s) {', '.join(bad)}: choose from {', '.join(METHODS)} or full")
    return tuple(m for m in METHODS if m in names)


@dataclass(frozen=True)
class Endpoint:
    """A parsed URL: scheme, host, port and whether TLS is used."""

    scheme: str
    host: str
    port: int
    tls: bool
    path: str = ""

    @classmethod
    def parse(cls, url: str, *, kind: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        allowed = {"rest": ("http", "https"), "ws": ("ws", "wss")}[kind]
        if scheme not in allowed or not parts.hostname:
            raise ConfigError(f"bad {kind} URL {url!r}: expected {allowed[0]}://host[:port] or {allowed[1]}://...")
        tls = scheme in ("https", "wss")
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError as exc:
            raise ConfigError(f"bad port in {kind} URL {url!r}") from exc
        return cls(scheme, parts.hostname, port, tls, parts.path.rstrip("/"))

    def with_host(self, host: str) -> Endpoint:
        return Endpoint(self.scheme, host, self.port, self.tls, self.path)


@dataclass(frozen=True)
class ProbeConfig:
    """Everything one probe run needs. Times in seconds unless named otherwise."""

    venue: str = "futures"
    methods: tuple[str, ...] = METHODS
    host: str | None = None  # overrides the host of both URLs (keeps scheme/port)
    rest_url: str | None = None
    ws_url: str | None = None
    symbol: str = ""  # "": the venue's default (BTCUSDT; BTCUSD_PERP on coinm)
    samples: int = 1000
    duration: float | None = None  # total seconds, shared by the timed methods (instead of samples)
    rate: float = 50.0  # intended samples per second, per method
    warmup: int = 10  # leading samples discarded per method
    timeout: float = 2.0  # per sample
    stream_duration: float | None = None  # defaults to samples / rate, capped
    offset_samples: int = 30
    dns_samples: int = 5
    max_ips: int = 8
    tcp_ports: tuple[int, ...] = ()  # extra ports; the venue's REST and WS ports are always probed
    verify_tls: bool = True
    ca_file: str | None = None
    path_max_hops: int = 30
    path_queries: int = 3
    path_timeout: float = 60.0
    imds: bool = True
    imds_url: str = "http://169.254.169.254"
    imds_timeout: float = 0.3
    chrony: bool = True
    sys_root: str = "/"

    def __post_init__(self) -> None:
        venue_defaults(self.venue)
        self._check_numbers()
        ep = endpoints(self.venue)
        if not self.symbol:
            object.__setattr__(self, "symbol", ep.default_symbol)
        if not ep.valid_symbol(self.symbol):
            raise ConfigError(
                f"bad symbol {self.symbol!r} for {self.venue}: symbols there look like {ep.symbol_examples}"
            )
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"unknown probe method(s): {', '.join(bad)}")
        self.rest_endpoint()
        self.ws_endpoint()

    def _check_numbers(self) -> None:
        """Every count, rate and time is checked here, named by its CLI option: an unchecked value
        does not fail cleanly later (a port wraps modulo 65536, ``--max-ips 0`` reads as a DNS
        failure, ``--stream-seconds 0`` as a symbol the venue does not trade), and NaN passes
        every comparison."""
        for opt, val in (
            ("--rate", self.rate),
            ("--timeout", self.timeout),
            ("--duration", self.duration),
            ("--stream-seconds", self.stream_duration),
        ):
            if val is None:
                continue
            if not (math.isfinite(val) and val > 0):
                raise ConfigError(f"{opt} must be positive and finite, got {val}")
            if opt != "--rate" and val > MAX_SECONDS:
                raise ConfigError(f"{opt} {val:g} s is more than a day (limit {MAX_SECONDS:g} s)")
        if self.rate > MAX_RATE:
            raise ConfigError(f"--rate {self.rate:g} is above {MAX_RATE:g} samples per second per method")
        if self.duration is None and self.samples < 1:
            raise ConfigError(f"--samples must be positive, got {self.samples}")
        for opt, count, least in (
            ("--warmup", self.warmup, 0),
            ("--offset-samples", self.offset_samples, 1),
            ("--max-ips", self.max_ips, 1),
            ("dns_samples", self.dns_samples, 1),
        ):
            if count < least:
                raise ConfigError(f"{opt} must be at least {least}, got {count}")
        bad_ports = [p for p in self.tcp_ports if not 1 <= p <= 65535]
        if bad_ports:
            raise ConfigError(f"--port {bad_ports[0]} is not a TCP port (1-65535)")

    @property
    def timed_methods(self) -> tuple[str, ...]:
        """The chosen methods that take samples over time (``--duration`` is shared among them)."""
        return tuple(m for m in self.methods if m in TIMED_METHODS)

    @property
    def method_seconds(self) -> float | None:
        """With ``--duration``: the seconds each timed method gets (the total is ``duration``)."""
        if not self.duration:
            return None
        return self.duration / max(1, len(self.timed_methods))

    def count_at(self, rate: float) -> int:
        """Measured samples for a method sampled at ``rate``: ``--samples``, or its share of ``--duration``."""
        seconds = self.method_seconds
        if seconds is not None:
            return max(1, int(rate * seconds))
        return self.samples

    @property
    def sample_count(self) -> int:
        """Measured samples per method at ``--rate`` (warm-up comes on top)."""
        return self.count_at(self.rate)

    @property
    def stream_seconds(self) -> float:
        if self.stream_duration is not None:
            return self.stream_duration
        if self.method_seconds is not None:
            return self.method_seconds
        return min(60.0, max(2.0, self.sample_count / self.rate))

    def defaults(self) -> VenueDefaults:
        return venue_defaults(self.venue)

    def rest_endpoint(self) -> Endpoint:
        ep = Endpoint.parse(self.rest_url or self.defaults().rest_url, kind="rest")
        return ep.with_host(self.host) if self.host else ep

    def ws_endpoint(self) -> Endpoint:
        ep = Endpoint.parse(self.ws_url or self.defaults().ws_url, kind="ws")
        return ep.with_host(self.host) if self.host else ep

    def stream_names(self) -> tuple[tuple[str, str], ...]:
        """(label, stream name) of each stream the ``stream`` method samples."""
        d = self.defaults()
        return tuple(
            (kind, stream_name(self.symbol, kind, d.venue, speed_ms=PROBE_DEPTH_SPEED_MS)) for kind in d.streams
        )
