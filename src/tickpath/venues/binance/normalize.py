"""Binance wire types -> tickpath's normalized events, for one feed session.

:class:`Normalizer` owns the per-stream ``seq`` counters of the ``trades`` and ``ticker`` channels and
one :class:`~tickpath.venues.binance.sync.BookSync` per symbol for ``l2`` (which owns its own seq), so
:meth:`Normalizer.on_message` turns any decoded frame into the events to publish. The engine may also
call the ``parse_to_*`` functions and the ``BookSync`` objects directly.

Trades keep Binance's price and quantity strings verbatim. ``side`` is the taker's side: ``m`` true
means the buyer was the maker, so the taker sold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tickpath.events import Event, Ticker, Trade, Venue
from tickpath.venues.binance.schemas import (
    AggTrade,
    BookTicker,
    ControlReply,
    DepthSnapshot,
    DepthUpdate,
    Kline,
    RawTrade,
    WireMessage,
)
from tickpath.venues.binance.sync import DEFAULT_MAX_BUFFER, BookSync


def parse_to_trade(msg: AggTrade | RawTrade, *, session: str, venue: Venue, seq: int, receipt_ns: int) -> Trade:
    """A trade event from ``@aggTrade`` (id ``a``, range ``f``..``l``) or ``@trade`` (id ``t``)."""
    if isinstance(msg, AggTrade):
        return Trade(
            session=session,
            venue=venue,
            symbol=msg.s,
            seq=seq,
            event_time_ms=msg.E,
            transaction_time_ms=msg.T,
            receipt_ns=receipt_ns,
            trade_id=msg.a,
            first_trade_id=msg.f,
            last_trade_id=msg.l,
            price=msg.p,
            qty=msg.q,
            side="sell" if msg.m else "buy",
        )
    return Trade(
        session=session,
        venue=venue,
        symbol=msg.s,
        seq=seq,
        event_time_ms=msg.E,
        transaction_time_ms=msg.T,
        receipt_ns=receipt_ns,
        trade_id=msg.t,
        price=msg.p,
        qty=msg.q,
        side="sell" if msg.m else "buy",
    )


def parse_to_ticker(msg: BookTicker, *, session: str, venue: Venue, seq: int, receipt_ns: int) -> Ticker:
    """A best bid/offer event; spot bookTickers carry no exchange times (None)."""
    return Ticker(
        session=session,
        venue=venue,
        symbol=msg.s,
        seq=seq,
        event_time_ms=msg.E,
        transaction_time_ms=msg.T,
        receipt_ns=receipt_ns,
        update_id=msg.u,
        bid_price=msg.b,
        bid_qty=msg.B,
        ask_price=msg.a,
        ask_qty=msg.A,
    )


@dataclass
class NormalizerStats:
    """Frames that produced no event of their own, by why."""

    klines: int = 0  # valid, not normalized
    control: int = 0  # subscription replies
    unexpected_symbol: int = 0  # depth for a symbol this session does not track (when restricted)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Normalizer:
    """Per session and venue: seq counters for trades/ticker and the books of every symbol.

    ``symbols`` (upper case), when given, restricts books to those symbols: depth for any other
    symbol is counted, not tracked, so a stray stream cannot grow memory without bound.
    """

    def __init__(
        self,
        venue: Venue,
        *,
        session: str,
        depth: int | None = None,
        symbols: tuple[str, ...] | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        self.venue: Venue = venue
        self.session = session
        self.depth = depth
        self.max_buffer = max_buffer
        self._allowed = frozenset(s.upper() for s in symbols) if symbols is not None else None
        self.books: dict[str, BookSync] = {}
        self._trade_seq: dict[str, int] = {}
        self._ticker_seq: dict[str, int] = {}
        self.stats = NormalizerStats()
        for s in self._allowed or ():
            self.book_sync(s)

    def book_sync(self, symbol: str) -> BookSync:
        """The symbol's BookSync, created on first use."""
        bs = self.books.get(symbol)
        if bs is None:
            bs = self.books[symbol] = BookSync(
                self.venue, symbol, session=self.session, depth=self.depth, max_buffer=self.max_buffer
            )
        return bs

    def needs_snapshot(self) -> list[str]:
        """Symbols whose book waits for a snapshot (and has buffered at least one event)."""
        return [s for s, b in self.books.items() if b.needs_snapshot and b.buffered]

    def trade(self, msg: AggTrade | RawTrade, receipt_ns: int) -> Trade:
        seq = self._trade_seq.get(msg.s, 0) + 1
        self._trade_seq[msg.s] = seq
        return parse_to_trade(msg, session=self.session, venue=self.venue, seq=seq, receipt_ns=receipt_ns)

    def ticker(self, msg: BookTicker, receipt_ns: int) -> Ticker:
        seq = self._ticker_seq.get(msg.s, 0) + 1
        self._ticker_seq[msg.s] = seq
        return parse_to_ticker(msg, session=self.session, venue=self.venue, seq=seq, receipt_ns=receipt_ns)

    def on_message(self, msg: WireMessage, receipt_ns: int) -> list[Event]:
        """The events one decoded frame yields (often one, none for klines, several on a resync)."""
        if type(msg) is DepthUpdate:
            bs = self.books.get(msg.s)
            if bs is None:
                if self._allowed is not None:
                    self.stats.unexpected_symbol += 1
                    return []
                bs = self.book_sync(msg.s)
            return bs.on_depth(msg, receipt_ns)
        if type(msg) is BookTicker:
            return [self.ticker(msg, receipt_ns)]
        if type(msg) is AggTrade or type(msg) is RawTrade:
            return [self.trade(msg, receipt_ns)]
        if type(msg) is Kline:
            self.stats.klines += 1
        elif type(msg) is ControlReply:
            self.stats.control += 1
        return []

    def on_snapshot(self, symbol: str, snap: DepthSnapshot, receipt_ns: int) -> list[Event]:
        """Hand a fetched snapshot to the symbol's BookSync."""
        return self.book_sync(symbol).on_snapshot(snap, receipt_ns)
