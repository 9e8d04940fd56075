"""Where Binance's public market data lives, and the limits Binance documents for it.

Pure data: hosts, ports, paths, and the documented limits per venue. The feed, probe and the
simulator all read these facts from here, so a change in Binance's rules is a change in one place.

Sources (checked against the docs as of 2024-2025):

* Spot WebSocket streams:
  https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
  (1024 streams per connection, 5 incoming messages per second (pings, pongs and JSON requests
  count; beyond it the connection is closed, observed as close code 1008 "Too many requests"),
  ping every 20 s, pong within 1 min, 24 h connection lifetime, ``@depth`` = 1000 ms, ``@depth@100ms``).
* Spot REST market data: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints
  (``GET /api/v3/depth`` limit 1..5000, default 100; weight 5/25/50/250 by limit band).
* Spot limits: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits
  (``REQUEST_WEIGHT`` 6000 per minute per IP, ``x-mbx-used-weight-1m``, 429 then 418 bans).
* USD-M futures WebSocket: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
  (1024 streams per connection (it was 200 until 2024), 10 incoming messages per second, ping
  every 3 min, pong within 10 min, unsolicited pongs allowed, 24 h lifetime, ``@depth`` = 250 ms,
  ``@depth@500ms``, ``@depth@100ms``).
* USD-M futures order book: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Order-Book
  (limit 5, 10, 20, 50, 100, 500, 1000, default 500; weight 2/5/10/20).
* USD-M futures limits: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
  (2400 request weight per minute per IP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tickpath.errors import UnknownSymbolError

Venue = Literal["spot", "futures"]
VENUES: tuple[Venue, ...] = ("spot", "futures")


@dataclass(frozen=True)
class VenueEndpoints:
    """Everything about one venue's public market-data surface that is not a stream name."""

    venue: Venue
    ws_base: str  # production WebSocket base; clients append /ws/<stream> or /stream?streams=
    rest_base: str  # production REST base
    depth_path: str
    time_path: str
    ping_path: str
    exchange_info_path: str
    # exchangeInfo's filter by symbols (a JSON array), or None where the venue has none
    exchange_info_symbols_param: str | None
    # WebSocket limits
    max_streams_per_connection: int
    max_incoming_messages_per_s: int
    ping_interval_s: float
    pong_timeout_s: float
    max_lifetime_s: float
    # REST limits
    depth_limits: tuple[int, ...]  # the documented values (spot: any 1..max, these are band edges)
    depth_default_limit: int
    depth_max_limit: int
    weight_budget_per_minute: int
    time_weight: int
    ping_weight: int
    exchange_info_weight: int

    def depth_weight(self, limit: int) -> int:
        """Request weight of a depth snapshot of ``limit`` levels (already validated)."""
        return depth_weight(self.venue, limit)


SPOT = VenueEndpoints(
    venue="spot",
    ws_base="wss://stream.binance.com:9443",
    rest_base="https://api.binance.com",
    depth_path="/api/v3/depth",
    time_path="/api/v3/time",
    ping_path="/api/v3/ping",
    exchange_info_path="/api/v3/exchangeInfo",
    exchange_info_symbols_param="symbols",
    max_streams_per_connection=1024,
    max_incoming_messages_per_s=5,
    ping_interval_s=20.0,
    pong_timeout_s=60.0,
    max_lifetime_s=24 * 3600.0,
    depth_limits=(5, 10, 20, 50, 100, 500, 1000, 5000),
    depth_default_limit=100,
    depth_max_limit=5000,
    weight_budget_per_minute=6000,
    time_weight=1,
    ping_weight=1,
    exchange_info_weight=20,
)

FUTURES = VenueEndpoints(
    venue="futures",
    ws_base="wss://fstream.binance.com",
    rest_base="https://fapi.binance.com",
    depth_path="/fapi/v1/depth",
    time_path="/fapi/v1/time",
    ping_path="/fapi/v1/ping",
    exchange_info_path="/fapi/v1/exchangeInfo",
    exchange_info_symbols_param=None,
    max_streams_per_connection=1024,
    max_incoming_messages_per_s=10,
    ping_interval_s=180.0,
    pong_timeout_s=600.0,
    max_lifetime_s=24 * 3600.0,
    depth_limits=(5, 10, 20, 50, 100, 500, 1000),
    depth_default_limit=500,
    depth_max_limit=1000,
    weight_budget_per_minute=2400,
    time_weight=1,
    ping_weight=1,
    exchange_info_weight=1,
)

_BY_NAME: dict[str, VenueEndpoints] = {"spot": SPOT, "futures": FUTURES}
_ALIASES = {"usdm": "futures", "usdm_futures": "futures", "fapi": "futures", "um": "futures"}


def endpoints(venue: str) -> VenueEndpoints:
    """The endpoints of ``venue`` ("spot" or "futures"; "usdm" accepted); unknown venue is an error."""
    key = _ALIASES.get(venue.lower(), venue.lower())
    try:
        return _BY_NAME[key]
    except KeyError:
        raise UnknownSymbolError(f"unknown venue {venue!r}; known venues: spot, futures") from None


def venue_of_host(host: str) -> Venue | None:
    """Which venue a production host name belongs to (for captures): fstream/fapi = futures."""
    h = host.lower()
    if h.startswith(("fstream", "fapi")):
        return "futures"
    if h.startswith(("stream.binance", "api.binance", "data-stream", "data-api")):
        return "spot"
    return None


def venue_of_path(path: str) -> Venue | None:
    """Which venue a REST path belongs to (``/api/v3/depth`` spot, ``/fapi/v1/depth`` futures), for
    captures whose host says nothing (recorded against a simulator on loopback)."""
    for ep in _BY_NAME.values():
        if path in (ep.depth_path, ep.ping_path, ep.time_path, ep.exchange_info_path):
            return ep.venue
    return None


def depth_weight(venue: Venue, limit: int) -> int:
    """Documented weight of ``GET depth`` for ``limit`` levels.

    Spot: 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250.
    Futures: 5, 10, 20, 50 -> 2; 100 -> 5; 500 -> 10; 1000 -> 20.
    """
    if venue == "spot":
        if limit <= 100:
            return 5
        if limit <= 500:
            return 25
        if limit <= 1000:
            return 50
        return 250
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def validate_depth_limit(venue: Venue, limit: int) -> int:
    """The limit Binance applies for a requested ``limit``, or ``ValueError`` when it rejects it.

    Spot accepts any 1..5000 (larger values are truncated to 5000, as documented); futures accepts
    only its listed values.
    """
    ep = endpoints(venue)
    if venue == "spot":
        if limit < 1:
            raise ValueError(f"limit must be between 1 and {ep.depth_max_limit}")
        return min(limit, ep.depth_max_limit)
    if limit not in ep.depth_limits:
        raise ValueError(f"limit must be one of {', '.join(map(str, ep.depth_limits))}")
    return limit
