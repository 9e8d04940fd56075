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
* COIN-M delivery futures WebSocket: https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams
  (``wss://dstream.binance.com``; 10 incoming messages per second, ping every 3 min, pong within
  10 min, 24 h lifetime; ``@depth`` = 250 ms, ``@depth@500ms``, ``@depth@100ms``, no ``@0ms``).
  The page says 1024 streams per connection, its binance.me mirror still says 200: we keep 200, as
  a lower limit is never refused. Symbols are ``BTCUSD_PERP`` (perpetual) and ``BTCUSD_YYMMDD``
  (quarterly delivery); events carry ``ps`` (the pair) and quantities in contracts.
* COIN-M order book: https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api/Order-Book
  (``GET /dapi/v1/depth``, limit 5, 10, 20, 50, 100, 500, 1000, default 500; weight 2/5/10/20) and
  https://developers.binance.com/docs/derivatives/coin-margined-futures/general-info (2400 weight per minute).
* Binance.US: https://docs.binance.us/ and https://github.com/binance-us/binance-us-api-docs
  (``web-socket-streams.md``: ``wss://stream.binance.us:9443``, 5 incoming messages per second, 1024
  streams, ping every 3 min, pong within 10 min, 24 h; ``rest-api.md``: ``https://api.binance.us``,
  ``GET /api/v3/depth`` limit 1..5000 default 100, weight 1/5/10/50 by band, 1200 weight per minute).
* Binance TR: https://www.binance.tr/apidocs (base ``https://www.binance.tr``; market data of the
  symbols matched on Binance's own engine, "symbolType 1", at the alternative base
  ``https://api.binance.me`` under the spot paths ``/api/v3/depth``, ``/api/v3/exchangeInfo``;
  streams at ``wss://stream-cloud.binance.tr`` in spot's format). The docs name both REST bases
  and give no weight table: we use ``api.binance.me`` (the one serving ``/api/v3`` depth snapshots,
  which the spot sync rules need) with spot's depth weights and the 1200-per-minute budget the TR
  docs' exchangeInfo reports, and say so here rather than guess silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from tickpath.errors import UnknownSymbolError
from tickpath.events import Venue as Venue  # re-exported: the venue table's key

VENUES: tuple[Venue, ...] = ("spot", "futures", "coinm", "us", "tr")
# Which of Binance's two book-sync guides a venue follows: spot's ``U == previous u + 1`` or the
# futures ``pu == previous u`` chain.
Rules = Literal["spot", "futures"]
_SPOT_SYMBOL = r"[A-Z0-9]{2,30}"
_COINM_SYMBOL = r"[A-Z0-9]{2,20}USD_(?:PERP|[0-9]{6})"


@dataclass(frozen=True)
class VenueEndpoints:
    """Everything about one venue's public market-data surface that is not a stream name."""

    venue: Venue
    rules: Rules  # which sync guide its books follow
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
    # (largest limit of the band, weight) in ascending order: the documented depth weight table
    depth_weight_bands: tuple[tuple[int, int], ...]
    # depth stream speeds in ms: the suffix-less default first, then the explicit ones
    depth_speeds_ms: tuple[int, ...]
    snapshot_limit: int  # the snapshot depth the feed asks for (the sync guides' examples use the max)
    symbol_pattern: str  # the venue's symbol format (upper case), a regex
    host_prefixes: tuple[str, ...] = field(default=())  # production host names, for captures
    symbol_examples: str = "BTCUSDT, ETHUSDT"  # for error messages
    # whether a pong the server did not ask for keeps the connection alive (futures, Binance.US:
    # documented as allowed; spot: allowed "but will not prevent disconnection")
    unsolicited_pong_keeps_alive: bool = False
    label: str = ""  # what users call it

    @property
    def default_symbol(self) -> str:
        """The symbol a tool uses when told none (the first example): BTCUSDT, COIN-M's BTCUSD_PERP."""
        return self.symbol_examples.split(",")[0].strip()

    @property
    def default_symbols(self) -> tuple[str, ...]:
        """Two symbols to serve or read when told none: BTCUSDT, ETHUSDT; COIN-M's perpetuals."""
        return tuple(s.strip() for s in self.symbol_examples.split(",")[:2])

    @property
    def depth_default_ms(self) -> int:
        return self.depth_speeds_ms[0]

    def depth_weight(self, limit: int) -> int:
        """Request weight of a depth snapshot of ``limit`` levels (already validated)."""
        for top, weight in self.depth_weight_bands:
            if limit <= top:
                return weight
        return self.depth_weight_bands[-1][1]

    def valid_symbol(self, symbol: str) -> bool:
        """Whether ``symbol`` (upper case) has this venue's symbol format."""
        return re.fullmatch(self.symbol_pattern, symbol) is not None


_SPOT_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
_FUTURES_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))

SPOT = VenueEndpoints(
    venue="spot",
    rules="spot",
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
    depth_weight_bands=_SPOT_WEIGHTS,
    depth_speeds_ms=(1000, 100),
    snapshot_limit=5000,
    symbol_pattern=_SPOT_SYMBOL,
    host_prefixes=("stream.binance.com", "api.binance.com", "data-stream.binance", "data-api.binance"),
    label="Binance spot",
)

FUTURES = VenueEndpoints(
    venue="futures",
    rules="futures",
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
    depth_weight_bands=_FUTURES_WEIGHTS,
    depth_speeds_ms=(250, 500, 100, 0),
    snapshot_limit=1000,
    symbol_pattern=_SPOT_SYMBOL,
    host_prefixes=("fstream.binance.com", "fapi.binance.com"),
    unsolicited_pong_keeps_alive=True,
    label="Binance USD-M futures",
)

# The other venues share a base venue's layout and state only what differs from it.
COINM = replace(
    FUTURES,
    venue="coinm",
    ws_base="wss://dstream.binance.com",
    rest_base="https://dapi.binance.com",
    depth_path="/dapi/v1/depth",
    time_path="/dapi/v1/time",
    ping_path="/dapi/v1/ping",
    exchange_info_path="/dapi/v1/exchangeInfo",
    max_streams_per_connection=200,
    depth_speeds_ms=(250, 500, 100),
    symbol_pattern=_COINM_SYMBOL,
    host_prefixes=("dstream.binance.com", "dapi.binance.com"),
    symbol_examples="BTCUSD_PERP, ETHUSD_PERP, BTCUSD_250926 (BASEUSD_PERP or BASEUSD_YYMMDD)",
    label="Binance COIN-M delivery futures",
)

US = replace(
    SPOT,
    venue="us",
    ws_base="wss://stream.binance.us:9443",
    rest_base="https://api.binance.us",
    ping_interval_s=180.0,
    pong_timeout_s=600.0,
    weight_budget_per_minute=1200,
    exchange_info_weight=10,
    depth_weight_bands=((100, 1), (500, 5), (1000, 10), (5000, 50)),
    host_prefixes=("stream.binance.us", "api.binance.us"),
    unsolicited_pong_keeps_alive=True,
    label="Binance.US spot",
)

TR = replace(
    SPOT,
    venue="tr",
    ws_base="wss://stream-cloud.binance.tr",
    rest_base="https://api.binance.me",
    weight_budget_per_minute=1200,
    host_prefixes=("stream-cloud.binance.tr", "stream.binance.tr", "api.binance.me", "www.binance.tr"),
    label="Binance TR spot",
)

_BY_NAME: dict[str, VenueEndpoints] = {ep.venue: ep for ep in (SPOT, FUTURES, COINM, US, TR)}
_ALIASES = {
    "usdm": "futures",
    "usdm_futures": "futures",
    "fapi": "futures",
    "um": "futures",
    "cm": "coinm",
    "dapi": "coinm",
    "coinm_futures": "coinm",
    "delivery": "coinm",
    "binance.us": "us",
    "binanceus": "us",
    "binance.tr": "tr",
    "binancetr": "tr",
}
KNOWN_VENUES = ", ".join(VENUES)


def endpoints(venue: str) -> VenueEndpoints:
    """The endpoints of ``venue`` (one of :data:`VENUES`; aliases such as "usdm", "cm" accepted);
    an unknown venue is an :class:`UnknownSymbolError` naming the venues."""
    key = _ALIASES.get(venue.lower(), venue.lower())
    try:
        return _BY_NAME[key]
    except KeyError:
        raise UnknownSymbolError(f"unknown venue {venue!r}; known venues: {KNOWN_VENUES}") from None


def futures_rules(venue: str) -> bool:
    """Whether ``venue``'s books follow the futures ``pu`` chain (else spot's ``U`` rule)."""
    return endpoints(venue).rules == "futures"


def venue_of_host(host: str) -> Venue | None:
    """Which venue a production host name belongs to (for captures), by the table's host names."""
    h = host.lower()
    for ep in _BY_NAME.values():
        if h.startswith(ep.host_prefixes):
            return ep.venue
    return None


def rest_paths(venue: str) -> tuple[str, ...]:
    """The REST paths ``venue`` serves (spot, Binance.US and TR share spot's)."""
    ep = endpoints(venue)
    return (ep.depth_path, ep.ping_path, ep.time_path, ep.exchange_info_path)


def venue_of_path(path: str) -> Venue | None:
    """The first venue serving a REST path (``/api/v3/depth`` spot, ``/fapi/v1/depth`` futures,
    ``/dapi/v1/depth`` coinm), for captures whose host says nothing (a simulator on loopback). The
    spot paths are shared with us and tr: use :func:`rest_paths` to check a path against a venue."""
    for ep in _BY_NAME.values():
        if path in rest_paths(ep.venue):
            return ep.venue
    return None


def depth_weight(venue: Venue, limit: int) -> int:
    """Documented weight of ``GET depth`` for ``limit`` levels (the venue's band table).

    Spot and TR: 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250.
    Binance.US: 1-100 -> 1, 101-500 -> 5, 501-1000 -> 10, 1001-5000 -> 50.
    USD-M and COIN-M futures: 5, 10, 20, 50 -> 2; 100 -> 5; 500 -> 10; 1000 -> 20.
    """
    return endpoints(venue).depth_weight(limit)


def validate_depth_limit(venue: Venue, limit: int) -> int:
    """The limit Binance applies for a requested ``limit``, or ``ValueError`` when it rejects it.

    Spot-rule venues accept any 1..5000 (larger values are truncated to 5000, as documented);
    futures venues accept only their listed values.
    """
    ep = endpoints(venue)
    if ep.rules == "spot":
        if limit < 1:
            raise ValueError(f"limit must be between 1 and {ep.depth_max_limit}")
        return min(limit, ep.depth_max_limit)
    if limit not in ep.depth_limits:
        raise ValueError(f"limit must be one of {', '.join(map(str, ep.depth_limits))}")
    return limit
