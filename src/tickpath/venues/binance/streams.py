"""Binance stream names: parse, format and validate them per venue.

A stream name is ``<symbol>@<kind>[@<speed>]`` with a lower-case symbol, e.g. ``btcusdt@depth@100ms``,
``btcusdt@aggTrade``, ``btcusdt@bookTicker``. Which depth speeds exist differs per venue:

* spot (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
  ``@depth`` (1000 ms) and ``@depth@100ms``.
* USD-M futures (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams):
  ``@depth`` (250 ms), ``@depth@500ms``, ``@depth@100ms``, and the real-time ``@depth@0ms``;
  ``@depth@250ms`` is accepted as the explicit spelling of the default.
* COIN-M delivery futures (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams):
  ``@depth`` (250 ms), ``@depth@500ms``, ``@depth@100ms``; symbols carry ``_``: ``btcusd_perp@depth``.
* Binance.US and Binance TR: spot's names and speeds.

The speeds live in the venue table (``endpoints.py``), read here.

Pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tickpath.errors import UnknownSymbolError
from tickpath.events import Channel
from tickpath.venues.binance import channels
from tickpath.venues.binance.endpoints import VENUES, Venue, endpoints

StreamKind = Literal[
    "depth", "trade", "aggTrade", "bookTicker", "kline", "ticker", "miniTicker", "markPrice", "forceOrder", "allMarket"
]
# The low-rate per-symbol kinds (channels.py); markPrice and forceOrder exist on futures-rule venues only.
_CHANNEL_KINDS = ("ticker", "miniTicker", "markPrice", "forceOrder")
_FUTURES_KINDS = ("markPrice", "forceOrder")

# Default (suffix-less) depth speed and the accepted explicit speeds, in milliseconds.
DEPTH_DEFAULT_MS: dict[Venue, int] = {v: endpoints(v).depth_default_ms for v in VENUES}
DEPTH_SPEEDS_MS: dict[Venue, tuple[int, ...]] = {v: endpoints(v).depth_speeds_ms for v in VENUES}
KLINE_INTERVALS = channels.KLINE_INTERVALS  # 1s: spot-rule venues only (channels.intervals)

_SYMBOL_RE = re.compile(r"^[a-z0-9_]{2,30}$")  # "_": COIN-M's btcusd_perp, btcusd_250627
_SPEED_RE = re.compile(r"^(\d{1,4})ms$")


@dataclass(frozen=True)
class StreamName:
    """One parsed stream: ``symbol`` is lower case; ``speed_ms`` is set for depth streams only."""

    symbol: str
    kind: StreamKind
    speed_ms: int | None = None
    interval: str | None = None  # kline only
    explicit_speed: bool = False  # whether the name spelled the speed (keeps format() faithful)
    all_market: str | None = None  # the whole name of an all-market stream (``!miniTicker@arr``)

    @property
    def symbol_upper(self) -> str:
        return self.symbol.upper()

    def __str__(self) -> str:
        return format_stream(self)


def format_stream(s: StreamName) -> str:
    """The wire spelling of ``s`` (the inverse of :func:`parse_stream`)."""
    if s.kind == "depth":
        return f"{s.symbol}@depth@{s.speed_ms}ms" if s.explicit_speed else f"{s.symbol}@depth"
    if s.kind == "kline":
        return f"{s.symbol}@kline_{s.interval}"
    if s.kind == "allMarket":
        return s.all_market or ""
    if s.kind == "markPrice" and s.explicit_speed:
        return f"{s.symbol}@markPrice@1s"
    return f"{s.symbol}@{s.kind}"


def depth_stream(symbol: str, speed_ms: int | None, venue: Venue) -> StreamName:
    """A depth stream for ``symbol`` at ``speed_ms`` (None = the venue's default speed)."""
    if speed_ms is None:
        return StreamName(symbol.lower(), "depth", DEPTH_DEFAULT_MS[venue])
    if speed_ms not in DEPTH_SPEEDS_MS[venue]:
        raise UnknownSymbolError(
            f"{venue} has no {speed_ms}ms depth stream; speeds: {', '.join(f'{v}ms' for v in DEPTH_SPEEDS_MS[venue])}"
        )
    return StreamName(symbol.lower(), "depth", speed_ms, explicit_speed=True)


def stream_name(symbol: str, kind: StreamKind, venue: Venue, *, speed_ms: int | None = None) -> str:
    """The wire name of one stream of ``symbol`` (any case): ``btcusdt@aggTrade``,
    ``btcusdt@depth@100ms`` (``speed_ms`` None: the venue's default depth speed, ``btcusdt@depth``).
    Klines need an interval and are not named here."""
    if kind == "depth":
        return str(depth_stream(symbol, speed_ms, venue))
    if kind == "kline":
        raise UnknownSymbolError("a kline stream needs an interval: btcusdt@kline_1m")
    return format_stream(StreamName(symbol.lower(), kind))


# The trade streams a feed can read for its trades channel: aggregated (Binance's default) or raw.
TradeStream = Literal["aggTrade", "trade"]
TRADE_STREAMS: tuple[TradeStream, ...] = ("aggTrade", "trade")


def channel_streams(
    symbol: str,
    venue: Venue,
    channels: Iterable[Channel],
    *,
    depth_speed_ms: int | None = None,
    trade_stream: TradeStream = "aggTrade",
) -> list[str]:
    """The streams that carry ``channels`` of ``symbol``, in the order l2, trades, ticker:
    ``@depth[@<speed>]`` for l2, ``trade_stream`` (``@aggTrade`` or ``@trade``) for trades,
    ``@bookTicker`` for ticker."""
    if trade_stream not in TRADE_STREAMS:
        raise UnknownSymbolError(f"trade stream {trade_stream!r}: use aggTrade or trade")
    wanted = set(channels)
    kinds: list[tuple[Channel, StreamKind]] = [("l2", "depth"), ("trades", trade_stream), ("ticker", "bookTicker")]
    return [stream_name(symbol, kind, venue, speed_ms=depth_speed_ms) for ch, kind in kinds if ch in wanted]


def parse_stream(name: str, venue: Venue) -> StreamName:
    """Parse and validate ``name`` for ``venue``; an unknown shape is an :class:`UnknownSymbolError`.

    Symbols must be lower case, as Binance requires for stream names.
    """
    rules = endpoints(venue).rules  # validates the venue
    if name.startswith("!"):
        return _all_market(name, venue)
    parts = name.split("@")
    if len(parts) < 2 or not _SYMBOL_RE.match(parts[0]):
        raise UnknownSymbolError(f"invalid stream name {name!r}: expected '<lower-case symbol>@<stream>'")
    symbol, kind = parts[0], parts[1]
    rest = parts[2:]
    if kind == "depth":
        if not rest:
            return StreamName(symbol, "depth", DEPTH_DEFAULT_MS[venue])
        m = _SPEED_RE.match(rest[0]) if len(rest) == 1 else None
        if not m or int(m.group(1)) not in DEPTH_SPEEDS_MS[venue]:
            speeds = ", ".join(f"@depth@{v}ms" for v in DEPTH_SPEEDS_MS[venue])
            raise UnknownSymbolError(f"invalid stream name {name!r}: {venue} depth streams are @depth, {speeds}")
        return StreamName(symbol, "depth", int(m.group(1)), explicit_speed=True)
    if kind in _FUTURES_KINDS and rules != "futures":
        raise UnknownSymbolError(f"invalid stream name {name!r}: @{kind} is a futures stream, not on {venue}")
    if kind == "markPrice" and rest == ["1s"]:
        return StreamName(symbol, "markPrice", 1000, explicit_speed=True)
    if rest:
        raise UnknownSymbolError(f"invalid stream name {name!r}: unexpected suffix '@{'@'.join(rest)}'")
    if kind in _CHANNEL_KINDS:
        return StreamName(symbol, kind, 3000 if kind == "markPrice" else None)  # type: ignore[arg-type]
    if kind in ("trade", "aggTrade", "bookTicker"):
        return StreamName(symbol, kind)  # type: ignore[arg-type]
    if kind.startswith("kline_") and kind[len("kline_") :] in channels.intervals(venue):
        return StreamName(symbol, "kline", interval=kind[len("kline_") :])
    raise UnknownSymbolError(
        f"invalid stream name {name!r}: known streams are @depth[@<speed>], @trade, @aggTrade, "
        "@bookTicker, @kline_<interval>, @ticker, @miniTicker and on futures @markPrice[@1s], @forceOrder"
    )


def _all_market(name: str, venue: Venue) -> StreamName:
    offered = [
        stream
        for sub, stream in channels.ALL_MARKET.items()
        if sub in channels.offered(venue) or (sub == "all_markPrice" and channels.is_derivatives(venue))
    ]
    if channels.is_derivatives(venue):
        offered.append("!markPrice@arr")  # the 3 s spelling of !markPrice@arr@1s
    if name not in offered:
        raise UnknownSymbolError(f"invalid stream name {name!r}: {venue}'s all-market streams are {', '.join(offered)}")
    return StreamName("", "allMarket", all_market=name)


# The stored channel each stream kind lands in.
_CHANNEL_OF: dict[str, Channel] = {
    "depth": "l2",
    "trade": "trades",
    "aggTrade": "trades",
    "bookTicker": "ticker",
    "kline": "candles",
    "ticker": "ticker24h",
    "miniTicker": "mini_ticker",
    "markPrice": "mark_price",
    "forceOrder": "liquidations",
}


@dataclass(frozen=True)
class StoredStream:
    """What a subscribed stream means for the stored data: the symbol as stored (upper case), the
    channel its events land in, and for depth streams the update speed (``@depth@0ms``: 0)."""

    symbol: str
    channel: Channel
    cadence_ms: int | None


def stored_stream(name: str, venue: Venue) -> StoredStream | None:
    """The stored stream a subscribed stream name stands for, or None for a name that is not a stream
    of ``venue`` or whose kind is not stored (kline): readers of the store (dq) then know channels and
    cadences without knowing Binance's spelling."""
    try:
        s = parse_stream(name, venue)
    except UnknownSymbolError:
        return None
    channel = _CHANNEL_OF.get(s.kind)
    if channel is None or channel not in ("l2", "trades", "ticker"):
        return None  # the low-rate channels have their own dq checks (dq/channels.py); all-market: no symbol
    return StoredStream(s.symbol_upper, channel, s.speed_ms if s.kind == "depth" else None)


def parse_streams(names: str | list[str], venue: Venue) -> list[StreamName]:
    """Parse a ``/``-separated list (the combined-stream query) or a list of names."""
    items = [n for n in names.split("/") if n] if isinstance(names, str) else list(names)
    return [parse_stream(n, venue) for n in items]


def combined_path(streams: list[StreamName] | list[str]) -> str:
    """The combined-stream path for ``streams``: ``/stream?streams=a/b/c``."""
    return "/stream?streams=" + "/".join(str(s) for s in streams)


def raw_path(stream: StreamName | str) -> str:
    """The raw-stream path for one stream: ``/ws/<stream>``."""
    return f"/ws/{stream}"
