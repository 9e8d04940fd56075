"""The low-rate public channels: which venue offers which, their stream names, and their events.

The native core keeps depth, trades and bookTicker; every other frame comes back to Python (the
core's ``HANDOFF`` result) and is decoded with msgspec (``parse``) and normalized here, by the one
:class:`ChannelNormalizer` both processors share, so the reference and the core cannot disagree.

Subscription names (``feed --channels``) -> stored channel (``events.py``, ``docs/schema.md``):

* ``kline_<interval>`` -> ``candles`` (``<s>@kline_<i>``; every interval, ``1s`` on spot-rule venues only)
* ``ticker24h`` -> ``ticker24h`` (``<s>@ticker``), ``miniTicker`` -> ``mini_ticker`` (``<s>@miniTicker``)
* futures only: ``markPrice`` -> ``mark_price`` (``<s>@markPrice@1s``), ``liquidations`` ->
  ``liquidations`` (``<s>@forceOrder``), ``openInterest`` -> ``open_interest`` (REST poll)
* all-market, one stream for every symbol: ``all_miniTicker`` (``!miniTicker@arr``, every venue);
  futures only: ``all_ticker24h`` (``!ticker@arr``; spot deprecated it), ``all_markPrice``
  (``!markPrice@arr@1s``), ``all_bookTicker`` (``!bookTicker``, into ``ticker``; spot removed it in
  2022), ``all_liquidations`` (``!forceOrder@arr``).

Which venue has the futures channels is the venue table's ``rules`` (a futures-rule venue is a
derivatives venue), so COIN-M gets them with no entry here.

De-duplication (a connection rollover delivers a stream twice for a while): an update whose event
time is not after the last one of its stream (``(E, open time, closed)`` for candles) is a duplicate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tickpath.errors import ConfigError
from tickpath.events import (
    Candle,
    Channel,
    DayTicker,
    Event,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OpenInterest,
    Venue,
)
from tickpath.venues.binance.endpoints import endpoints
from tickpath.venues.binance.parse import decode_open_interest
from tickpath.venues.binance.schemas import (
    DayTickerMsg,
    ForceOrderMsg,
    Kline,
    MarkPriceMsg,
    MiniTickerMsg,
    OpenInterestBody,
)

KLINE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
CORE_CHANNELS = ("l2", "trades", "ticker")
SYMBOL_CHANNELS = ("ticker24h", "miniTicker", "markPrice", "liquidations", "openInterest")
ALL_MARKET = {
    "all_miniTicker": "!miniTicker@arr",
    "all_ticker24h": "!ticker@arr",
    "all_markPrice": "!markPrice@arr@1s",
    "all_bookTicker": "!bookTicker",
    "all_liquidations": "!forceOrder@arr",
}
SUBSCRIPTIONS = (*CORE_CHANNELS, *SYMBOL_CHANNELS, *ALL_MARKET)  # plus kline_<interval>
_FUTURES_ONLY = {
    "markPrice",
    "liquidations",
    "openInterest",
    "all_ticker24h",
    "all_markPrice",
    "all_bookTicker",
    "all_liquidations",
}
_STREAM_OF = {
    "ticker24h": "ticker",
    "miniTicker": "miniTicker",
    "markPrice": "markPrice@1s",
    "liquidations": "forceOrder",
}
_STORED: dict[str, Channel] = {
    "l2": "l2",
    "trades": "trades",
    "ticker": "ticker",
    "ticker24h": "ticker24h",
    "miniTicker": "mini_ticker",
    "markPrice": "mark_price",
    "liquidations": "liquidations",
    "openInterest": "open_interest",
    "all_miniTicker": "mini_ticker",
    "all_ticker24h": "ticker24h",
    "all_markPrice": "mark_price",
    "all_bookTicker": "ticker",
    "all_liquidations": "liquidations",
}


def is_derivatives(venue: Venue) -> bool:
    return endpoints(venue).rules == "futures"


def offered(venue: Venue) -> list[str]:
    """Every subscription name ``venue`` offers, for help and error messages."""
    names = [*CORE_CHANNELS, *(f"kline_{i}" for i in intervals(venue)), *SYMBOL_CHANNELS, *ALL_MARKET]
    return [n for n in names if is_derivatives(venue) or n not in _FUTURES_ONLY]


def intervals(venue: Venue) -> tuple[str, ...]:
    """Kline intervals of ``venue``: ``1s`` exists on spot-rule venues only."""
    return KLINE_INTERVALS if not is_derivatives(venue) else KLINE_INTERVALS[1:]


def validate(name: str, venue: Venue) -> str:
    """``name`` if ``venue`` offers it, else a :class:`ConfigError` naming what it offers."""
    if name.startswith("kline_"):
        if name[len("kline_") :] in intervals(venue):
            return name
        raise ConfigError(f"{venue} has no {name!r}: kline intervals are {', '.join(intervals(venue))}")
    if name in _STORED and (is_derivatives(venue) or name not in _FUTURES_ONLY):
        return name
    raise ConfigError(f"unknown channel {name!r} on {venue}: use {', '.join(offered(venue)[:6])}, ...")


def stored_channel(name: str) -> Channel:
    """The stored channel a subscription name lands in (``kline_1m`` -> ``candles``)."""
    return "candles" if name.startswith("kline_") else _STORED[name]


def symbol_streams(symbol: str, names: tuple[str, ...] | list[str]) -> list[str]:
    """The per-symbol streams of the low-rate subscription names (no all-market, no REST ones)."""
    s = symbol.lower()
    out = []
    for n in names:
        if n.startswith("kline_"):
            out.append(f"{s}@{n}")
        elif n in _STREAM_OF:
            out.append(f"{s}@{_STREAM_OF[n]}")
    return out


def all_market_streams(names: tuple[str, ...] | list[str]) -> list[str]:
    """The all-market streams among the subscription names."""
    return [ALL_MARKET[n] for n in names if n in ALL_MARKET]


@dataclass
class ChannelCounts:
    """Frames handed to the channel decoder, by what they were."""

    klines: int = 0
    channel_frames: int = 0  # 24 h tickers, mini tickers, mark price, liquidations, arrays
    duplicates: int = 0
    open_interest_polls: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ChannelNormalizer:
    """Per session and venue: wire messages of the low-rate channels -> events, with seq counters."""

    def __init__(self, venue: Venue, *, session: str) -> None:
        self.venue: Venue = venue
        self.session = session
        self.counts = ChannelCounts()
        self._seq: dict[tuple[str, str], int] = {}
        self._last: dict[tuple[str, str, str], tuple[Any, ...]] = {}

    def _next(self, channel: str, symbol: str, key: str, mark: tuple[Any, ...]) -> int | None:
        """The next seq of ``(channel, symbol)``, or None when ``mark`` is not after the last one."""
        k = (channel, symbol, key)
        last = self._last.get(k)
        if last is not None and mark <= last:
            self.counts.duplicates += 1
            return None
        self._last[k] = mark
        seq = self._seq.get((channel, symbol), 0) + 1
        self._seq[(channel, symbol)] = seq
        return seq

    def on_message(self, msg: Any, receipt_ns: int) -> list[Event]:
        """The events of one decoded low-rate message (a list: an all-market array)."""
        if type(msg) is Kline:
            self.counts.klines += 1
            return self._candle(msg, receipt_ns)
        self.counts.channel_frames += 1
        items = msg if isinstance(msg, list) else [msg]
        out: list[Event] = []
        for m in items:
            ev = self._one(m, receipt_ns)
            if ev is not None:
                out.append(ev)
        return out

    def _common(self, channel: str, symbol: str, mark: tuple[Any, ...], receipt_ns: int) -> dict[str, Any] | None:
        seq = self._next(channel, symbol, "", mark)
        if seq is None:
            return None
        return {"session": self.session, "venue": self.venue, "symbol": symbol, "seq": seq, "receipt_ns": receipt_ns}

    def _one(self, m: Any, receipt_ns: int) -> Event | None:
        if type(m) is MiniTickerMsg:
            c = self._common("mini_ticker", m.s, (m.E,), receipt_ns)
            return None if c is None else _mini(m, c)
        if type(m) is DayTickerMsg:
            c = self._common("ticker24h", m.s, (m.E,), receipt_ns)
            return None if c is None else _day(m, c)
        if type(m) is MarkPriceMsg:
            c = self._common("mark_price", m.s, (m.E,), receipt_ns)
            return None if c is None else _mark(m, c)
        assert type(m) is ForceOrderMsg
        c = self._common("liquidations", m.o.s, (m.E, m.o.T), receipt_ns)
        return None if c is None else _liquidation(m, c)

    def _candle(self, m: Kline, receipt_ns: int) -> list[Event]:
        k = m.k
        if k is None:
            return []
        seq = self._next("candles", m.s, k.i, (m.E, k.t, k.x))
        if seq is None:
            return []
        return [
            Candle(
                session=self.session,
                venue=self.venue,
                symbol=m.s,
                seq=seq,
                event_time_ms=m.E,
                transaction_time_ms=None,
                receipt_ns=receipt_ns,
                interval=k.i,
                open_time_ms=k.t,
                close_time_ms=k.T,
                first_trade_id=None if k.f < 0 else k.f,
                last_trade_id=None if k.L < 0 else k.L,
                open=k.o,
                high=k.h,
                low=k.l,
                close=k.c,
                volume=k.v,
                quote_volume=k.q,
                trades=k.n,
                taker_buy_volume=k.V,
                taker_buy_quote_volume=k.Q,
                closed=k.x,
            )
        ]

    def open_interest(self, body: OpenInterestBody | bytes | str, receipt_ns: int) -> list[Event]:
        """The event of one polled open-interest body (none when Binance's time has not moved); raw
        bytes are decoded first (:class:`~tickpath.venues.binance.parse.ParseError` when bad)."""
        if not isinstance(body, OpenInterestBody):
            body = decode_open_interest(body)
        self.counts.open_interest_polls += 1
        c = self._common("open_interest", body.symbol, (body.time,), receipt_ns)
        if c is None:
            return []
        return [OpenInterest(**c, event_time_ms=body.time, transaction_time_ms=None, open_interest=body.openInterest)]


def _mini(m: MiniTickerMsg, c: dict[str, Any]) -> MiniTicker:
    return MiniTicker(
        **c,
        event_time_ms=m.E,
        transaction_time_ms=None,
        close=m.c,
        open=m.o,
        high=m.h,
        low=m.l,
        volume=m.v,
        quote_volume=m.q,
    )


def _day(m: DayTickerMsg, c: dict[str, Any]) -> DayTicker:
    return DayTicker(
        **c,
        event_time_ms=m.E,
        transaction_time_ms=None,
        price_change=m.p,
        price_change_pct=m.P,
        weighted_avg_price=m.w,
        last_price=m.c,
        last_qty=m.Q,
        open=m.o,
        high=m.h,
        low=m.l,
        volume=m.v,
        quote_volume=m.q,
        open_time_ms=m.O,
        close_time_ms=m.C,
        first_trade_id=None if m.F < 0 else m.F,
        last_trade_id=None if m.L < 0 else m.L,
        trades=m.n,
        prev_close=m.x,
        bid_price=m.b,
        bid_qty=m.B,
        ask_price=m.a,
        ask_qty=m.A,
    )


def _mark(m: MarkPriceMsg, c: dict[str, Any]) -> MarkPrice:
    return MarkPrice(
        **c,
        event_time_ms=m.E,
        transaction_time_ms=None,
        mark_price=m.p,
        index_price=m.i,
        settle_price=m.P,
        funding_rate=m.r or None,
        next_funding_time_ms=m.T or None,
    )


def _liquidation(m: ForceOrderMsg, c: dict[str, Any]) -> Liquidation:
    o = m.o
    return Liquidation(
        **c,
        event_time_ms=m.E,
        transaction_time_ms=o.T,
        side="sell" if o.S == "SELL" else "buy",
        order_type=o.o,
        time_in_force=o.f,
        qty=o.q,
        price=o.p,
        avg_price=o.ap,
        status=o.X,
        last_filled_qty=o.l,
        filled_qty=o.z,
    )


def open_interest_path(venue: Venue) -> str:
    """``/fapi/v1/openInterest`` or ``/dapi/v1/openInterest``: beside the venue's depth path."""
    if not is_derivatives(venue):
        raise ConfigError(f"{venue} has no open interest: it is a futures channel")
    return endpoints(venue).depth_path.rsplit("/", 1)[0] + "/openInterest"


OPEN_INTEREST_WEIGHT = 1  # Binance's documented request weight of /fapi/v1/openInterest
