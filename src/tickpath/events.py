"""Normalized market-data events: the one schema every sink, the bus and ``dq`` share.

Wire formats are Binance's business (``venues/binance``); these types are tickpath's own. Prices and
quantities stay the exchange's decimal strings, exactly as sent, so no float rounding can creep in.

Ordering and identity:
- ``session`` names one feed run (a short random id); ``seq`` is contiguous per stream, where a
  stream is ``(session, venue, channel, symbol)``, starting at 1. The event key
  ``(session, venue, channel, symbol, seq)`` identifies an event everywhere (bus message ids,
  ingest de-duplication).
- Channel ``l2`` carries deltas, snapshots and resets in one sequence, so a consumer rebuilds a book
  by applying them in ``seq`` order: a reset means "discard your book", a snapshot replaces it.
- Times: ``event_time_ms`` (Binance ``E``) and ``transaction_time_ms`` (``T``) are the exchange's
  clock in milliseconds (None where the venue does not send one); ``receipt_ns`` is this machine's
  wall clock in nanoseconds, taken when the frame arrived.

Full reference: ``docs/schema.md``.

The structs are ``gc=False``: they hold only strings, numbers and lists of string tuples, so they
cannot be part of a reference cycle, and keeping hundreds of thousands of them out of the cyclic
garbage collector's view saves a third of the feed's CPU under load.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Venue = Literal["spot", "futures", "coinm", "us", "tr"]  # the table: venues/binance/endpoints.py
Channel = Literal[
    "trades", "ticker", "l2", "candles", "ticker24h", "mini_ticker", "mark_price", "open_interest", "liquidations"
]
Side = Literal["buy", "sell"]
Level = tuple[str, str]  # (price, quantity), decimal strings as the exchange sent them

CHANNELS: tuple[Channel, ...] = ("trades", "ticker", "l2")  # the default subscription
# Every stored channel: the three above plus the low-rate ones (venues/binance/channels.py).
ALL_CHANNELS: tuple[Channel, ...] = (
    *CHANNELS,
    "candles",
    "ticker24h",
    "mini_ticker",
    "mark_price",
    "open_interest",
    "liquidations",
)
SCHEMA_VERSION = 1


class Trade(msgspec.Struct, frozen=True, tag="trade", kw_only=True, gc=False):
    """One trade (``@trade``) or aggregated trade (``@aggTrade``); side is the taker's side."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None  # Binance ``T``: trade time
    receipt_ns: int
    trade_id: int  # ``t`` for @trade, ``a`` (aggregate id) for @aggTrade
    first_trade_id: int | None = None  # ``f`` of an aggTrade
    last_trade_id: int | None = None  # ``l`` of an aggTrade
    price: str
    qty: str
    side: Side

    channel: Channel = "trades"


class Ticker(msgspec.Struct, frozen=True, tag="ticker", kw_only=True, gc=False):
    """Best bid and offer (``@bookTicker``)."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None  # spot bookTicker has no ``E``
    transaction_time_ms: int | None
    receipt_ns: int
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str

    channel: Channel = "ticker"


class BookDelta(msgspec.Struct, frozen=True, tag="delta", kw_only=True, gc=False):
    """Changed levels of an order book; quantity ``"0"`` removes the level.

    ``first_update_id``/``final_update_id``/``prev_final_update_id`` are Binance's ``U``/``u``/``pu``
    (``pu`` is None on spot). In top-N mode (``depth`` set) the levels are the changes inside the top
    N, including inserts and deletes of levels entering or leaving the window, and the upstream
    ``U``/``u`` range still rides along so an upstream gap stays detectable.
    """

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int | None
    bids: list[Level]
    asks: list[Level]
    depth: int | None = None

    channel: Channel = "l2"


class BookSnapshot(msgspec.Struct, frozen=True, tag="snapshot", kw_only=True, gc=False):
    """A whole book (or its top ``depth`` levels) as of ``last_update_id``: replaces any prior book."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    depth: int | None = None

    channel: Channel = "l2"


class BookReset(msgspec.Struct, frozen=True, tag="reset", kw_only=True, gc=False):
    """The book for this symbol is no longer valid (gap, crossed book, reconnect); a snapshot follows."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    reason: str
    last_good_update_id: int | None = None

    channel: Channel = "l2"


class Candle(msgspec.Struct, frozen=True, tag="candle", kw_only=True, gc=False):
    """One kline update (``@kline_<interval>``): the candle so far, ``closed`` once it is final.

    Binance pushes the open candle every 1-2 s and then once more with ``x`` true; ``seq`` runs per
    symbol across intervals. ``quote_volume`` is Binance's ``q`` (on COIN-M it is the base asset volume,
    as ``volume`` is in contracts there)."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None  # None: a kline has no transaction time
    receipt_ns: int
    interval: str
    open_time_ms: int
    close_time_ms: int
    first_trade_id: int | None  # -1 on Binance when no trade yet: stored as None
    last_trade_id: int | None
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    taker_buy_volume: str
    taker_buy_quote_volume: str
    closed: bool

    channel: Channel = "candles"


class DayTicker(msgspec.Struct, frozen=True, tag="ticker24h", kw_only=True, gc=False):
    """Rolling 24 h statistics (``@ticker``, ``!ticker@arr``); spot adds previous close and the BBO."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    price_change: str
    price_change_pct: str
    weighted_avg_price: str
    last_price: str
    last_qty: str
    open: str
    high: str
    low: str
    volume: str
    quote_volume: str
    open_time_ms: int
    close_time_ms: int
    first_trade_id: int | None
    last_trade_id: int | None
    trades: int
    prev_close: str | None = None  # spot only
    bid_price: str | None = None  # spot only
    bid_qty: str | None = None
    ask_price: str | None = None
    ask_qty: str | None = None

    channel: Channel = "ticker24h"


class MiniTicker(msgspec.Struct, frozen=True, tag="mini_ticker", kw_only=True, gc=False):
    """Rolling 24 h open/high/low/close and volumes (``@miniTicker``, ``!miniTicker@arr``)."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    close: str
    open: str
    high: str
    low: str
    volume: str
    quote_volume: str

    channel: Channel = "mini_ticker"


class MarkPrice(msgspec.Struct, frozen=True, tag="mark_price", kw_only=True, gc=False):
    """Mark price, index price and funding (futures ``@markPrice``, ``!markPrice@arr``).

    ``funding_rate``/``next_funding_time_ms`` are None on a delivery contract (Binance: ``""``/0)."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    mark_price: str
    index_price: str
    settle_price: str  # estimated settle price
    funding_rate: str | None
    next_funding_time_ms: int | None

    channel: Channel = "mark_price"


class OpenInterest(msgspec.Struct, frozen=True, tag="open_interest", kw_only=True, gc=False):
    """Open interest of one contract, polled over REST (``/fapi/v1/openInterest``); time is Binance's."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    receipt_ns: int
    open_interest: str

    channel: Channel = "open_interest"


class Liquidation(msgspec.Struct, frozen=True, tag="liquidation", kw_only=True, gc=False):
    """A liquidation order (futures ``@forceOrder``, ``!forceOrder@arr``); ``side`` is the order's."""

    session: str
    venue: Venue
    symbol: str
    seq: int
    event_time_ms: int | None
    transaction_time_ms: int | None  # the order's trade time ``T``
    receipt_ns: int
    side: Side
    order_type: str
    time_in_force: str
    qty: str
    price: str
    avg_price: str
    status: str
    last_filled_qty: str
    filled_qty: str

    channel: Channel = "liquidations"


Event = (
    Trade
    | Ticker
    | BookDelta
    | BookSnapshot
    | BookReset
    | Candle
    | DayTicker
    | MiniTicker
    | MarkPrice
    | OpenInterest
    | Liquidation
)
EVENT_TYPES: tuple[type[Event], ...] = (
    Trade,
    Ticker,
    BookDelta,
    BookSnapshot,
    BookReset,
    Candle,
    DayTicker,
    MiniTicker,
    MarkPrice,
    OpenInterest,
    Liquidation,
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    """JSON bytes with a ``type`` tag; the wire form on every bus."""
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> Event:
    """Inverse of :func:`encode_event`; raises ``msgspec.ValidationError``/``DecodeError`` on bad input."""
    return _decoder.decode(data)


def event_key(event: Event) -> str:
    """The identity of an event everywhere: ``session.venue.channel.symbol.seq``."""
    return f"{event.session}.{event.venue}.{event.channel}.{event.symbol}.{event.seq}"


class SessionInfo(msgspec.Struct, frozen=True, tag="session", kw_only=True):
    """One feed run on one venue (its ``feed_sessions`` row: subscriptions and clock offset), as it
    travels on a bus beside the events, so a store built by ``ingest`` has it too. A feed sends it
    when its connections open (``ended_ns`` None) and again when it stops."""

    session: str
    venue: Venue
    started_ns: int
    ended_ns: int | None = None
    symbols: list[str] = msgspec.field(default_factory=list)
    channels: list[str] = msgspec.field(default_factory=list)
    streams: list[str] = msgspec.field(default_factory=list)
    depth: int | None = None
    clock_offset_ns: int | None = None
    clock_offset_bound_ns: int | None = None

    def row(self) -> dict[str, Any]:
        """The ``feed_sessions`` row (:mod:`tickpath.tables`)."""
        return {f: getattr(self, f) for f in self.__struct_fields__}

    def key(self) -> str:
        """Its bus message id: the start and the end of a run are two messages."""
        return f"{self.session}.{self.venue}.session.{'end' if self.ended_ns is not None else 'start'}"


_session_decoder = msgspec.json.Decoder(SessionInfo)


def encode_session(info: SessionInfo) -> bytes:
    """JSON bytes with ``"type":"session"``, as :func:`encode_event` encodes events."""
    return _encoder.encode(info)


def decode_session(data: bytes | str) -> SessionInfo:
    """Inverse of :func:`encode_session`; raises ``msgspec.ValidationError``/``DecodeError`` on bad input."""
    return _session_decoder.decode(data)
