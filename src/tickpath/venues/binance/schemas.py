"""Binance market-data wire types, as frozen ``msgspec.Struct``s that keep Binance's field names.

Decoding straight into these structs with msgspec is the hot path: one C-level pass validates the
shape (types, required fields) and builds the object, with no intermediate dicts. Prices and
quantities stay ``str``, exactly as Binance sent them.

Field reference (checked against the real captures in ``../shared/data/binance``):

* ``depthUpdate`` (``<symbol>@depth[@speed]``), spot: ``e E s U u b a``; USD-M futures adds ``T``
  (transaction time) and ``pu`` (the previous event's ``u``).
  https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#diff-depth-stream
  https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Diff-Book-Depth-Streams
* ``aggTrade``: ``e E s a p q f l T m`` (spot also ``M``, ignored). ``m`` true means the buyer was the
  maker, so the taker sold.
* ``trade``: ``e E s t p q T m`` (older spot payloads also carry ``b``/``a`` order ids, ignored).
* ``bookTicker``: spot ``u s b B a A`` (no ``e``, no times); futures ``e u E T s b B a A``.
* COIN-M delivery futures (``dstream``/``dapi``) sends the futures shapes plus ``ps`` (the pair,
  ``BTCUSD``) on depth and bookTicker, with quantities in contracts; ``ps`` is not stored (the
  symbol names the contract) and, like every unknown key, is skipped by both decoders.
  https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/Diff-Book-Depth-Streams
  Binance.US and Binance TR send spot's shapes.
* ``kline``, ``24hrTicker``, ``24hrMiniTicker``, ``markPriceUpdate``, ``forceOrder`` and the
  all-market arrays: the low-rate channels at the end of this module (``channels.py`` normalizes them).
* REST ``GET /api/v3/depth``, ``GET /fapi/v1/depth`` and ``GET /dapi/v1/depth``: ``lastUpdateId bids
  asks`` (futures also ``E`` and ``T``; COIN-M also ``symbol`` and ``pair``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Level = tuple[str, str]  # (price, quantity) decimal strings, verbatim
# Ids and times are 64-bit on every venue; a larger number is a schema error (the native core keeps int64).
Int = Annotated[int, msgspec.Meta(ge=-(2**63 - 1), le=2**63 - 1)]  # INT64_MIN is the native "absent"


class DepthUpdate(msgspec.Struct, frozen=True, tag_field="e", tag="depthUpdate"):
    """One diff-depth event: set each level's quantity; ``"0"`` removes the level."""

    E: Int  # event time, ms
    s: str  # symbol, upper case
    U: Int  # first update id in this event
    u: Int  # final update id in this event
    b: list[Level]
    a: list[Level]
    T: Int | None = None  # futures: transaction time, ms
    pu: Int | None = None  # futures: the previous event's final update id


class AggTrade(msgspec.Struct, frozen=True, tag_field="e", tag="aggTrade"):
    """An aggregated trade: fills of one taker order at one price."""

    E: Int
    s: str
    a: Int  # aggregate trade id
    p: str
    q: str
    f: Int  # first trade id
    l: Int  # last trade id  # noqa: E741 - Binance's field name
    T: Int  # trade time
    m: bool  # buyer is the maker


class RawTrade(msgspec.Struct, frozen=True, tag_field="e", tag="trade"):
    """One trade (``@trade``)."""

    E: Int
    s: str
    t: Int  # trade id
    p: str
    q: str
    T: Int
    m: bool


class BookTicker(msgspec.Struct, frozen=True):
    """Best bid/offer. Spot sends no ``e``/``E``/``T``; futures sends all three (``e`` is ignored)."""

    u: Int  # order book update id
    s: str
    b: str  # best bid price
    B: str  # best bid quantity
    a: str  # best ask price
    A: str  # best ask quantity
    E: Int | None = None
    T: Int | None = None


class KlineBar(msgspec.Struct, frozen=True):
    """The ``k`` object of a kline: the candle so far (``x`` true once closed)."""

    t: Int  # open time
    T: Int  # close time
    i: str  # interval
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - Binance's field name
    v: str  # volume (COIN-M: contracts)
    n: Int  # number of trades
    x: bool  # closed
    q: str  # quote volume (COIN-M: base asset volume)
    V: str  # taker buy volume
    Q: str  # taker buy quote volume
    f: Int = -1  # first trade id (-1: none yet)
    L: Int = -1  # last trade id


class Kline(msgspec.Struct, frozen=True, tag_field="e", tag="kline"):
    """A candlestick update (``<symbol>@kline_<interval>``); without ``k`` it is counted, not stored."""

    E: Int
    s: str
    k: KlineBar | None = None


class ControlReply(msgspec.Struct, frozen=True):
    """Reply to a SUBSCRIBE/UNSUBSCRIBE/LIST request: ``{"result": ..., "id": ...}``."""

    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw()


class DepthSnapshot(msgspec.Struct, frozen=True):
    """REST depth snapshot: the whole book as of ``lastUpdateId``."""

    lastUpdateId: Int
    bids: list[Level]
    asks: list[Level]
    E: Int | None = None  # futures only
    T: Int | None = None  # futures only


class Envelope(msgspec.Struct, frozen=True):
    """The combined-stream envelope; ``data`` stays raw until its stream name says what it is."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty (falsy) when absent
    e: str | None = None  # set when the frame is a raw (non-envelope) event payload
    id: int | str | None = None  # set on control replies


# -- the low-rate channels (normalized by channels.py) -----------------------------------------
# https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams (Individual Symbol
#   Ticker / Mini Ticker, All Market Mini Tickers, Kline/Candlestick)
# https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
#   (Mark-Price-Stream, Liquidation-Order-Streams, All-Market-Tickers-Streams, Kline-Candlestick-Streams)
# https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Open-Interest


class DayTickerMsg(msgspec.Struct, frozen=True, tag_field="e", tag="24hrTicker"):
    """``24hrTicker``: spot ``E s p P w x c Q b B a A o h l v q O C F L n``; futures lack ``x b B a A``."""

    E: Int
    s: str
    p: str  # price change
    P: str  # price change percent
    w: str  # weighted average price
    c: str  # last price
    Q: str  # last quantity
    o: str
    h: str
    l: str  # noqa: E741 - Binance's field name
    v: str
    q: str
    O: Int  # noqa: E741 - statistics open time
    C: Int  # statistics close time
    F: Int  # first trade id (-1: none)
    L: Int  # last trade id
    n: Int  # number of trades
    x: str | None = None  # spot: previous day's close
    b: str | None = None  # spot: best bid, bid qty, best ask, ask qty
    B: str | None = None
    a: str | None = None
    A: str | None = None


class MiniTickerMsg(msgspec.Struct, frozen=True, tag_field="e", tag="24hrMiniTicker"):
    """``24hrMiniTicker``: ``E s c o h l v q``."""

    E: Int
    s: str
    c: str
    o: str
    h: str
    l: str  # noqa: E741 - Binance's field name
    v: str
    q: str


class MarkPriceMsg(msgspec.Struct, frozen=True, tag_field="e", tag="markPriceUpdate"):
    """``markPriceUpdate``: ``E s p i P r T``; COIN-M delivery contracts send ``r`` "" and ``T`` 0."""

    E: Int
    s: str
    p: str  # mark price
    i: str  # index price
    P: str  # estimated settle price
    r: str = ""  # funding rate
    T: Int = 0  # next funding time


class ForceOrderBody(msgspec.Struct, frozen=True):
    """The ``o`` object of a ``forceOrder``."""

    s: str
    S: str  # side: BUY | SELL
    o: str  # order type
    f: str  # time in force
    q: str  # original quantity
    p: str  # price
    ap: str  # average price
    X: str  # status
    l: str  # noqa: E741 - last filled quantity
    z: str  # filled accumulated quantity
    T: Int  # trade time


class ForceOrderMsg(msgspec.Struct, frozen=True, tag_field="e", tag="forceOrder"):
    """``forceOrder`` (``<symbol>@forceOrder``, ``!forceOrder@arr``): one liquidation order."""

    E: Int
    o: ForceOrderBody


class OpenInterestBody(msgspec.Struct, frozen=True):
    """REST ``GET /fapi/v1/openInterest`` (and ``/dapi/v1/openInterest``): ``openInterest symbol time``."""

    openInterest: str
    symbol: str
    time: Int


ChannelMessage = Kline | DayTickerMsg | MiniTickerMsg | MarkPriceMsg | ForceOrderMsg
WireMessage = DepthUpdate | AggTrade | RawTrade | BookTicker | ControlReply | ChannelMessage | list[ChannelMessage]
