"""The venue's one entry for the feed: frame bytes + receipt time in, normalized events out.

:func:`make_processor` returns the native core (``tickpath.venues.binance._core``, C++) when it is
built and ``TICKPATH_PURE`` is not set to ``1``, else :class:`PureProcessor`, the pure-Python
reference (``parse.decode_frame`` -> ``Normalizer`` with the engine's de-duplication). Both have the
same interface and make the same decisions: tests/native drive them side by side on random and real
frames and require identical events, counters and book states.

De-duplication is part of the venue's job: across a connection rollover two connections deliver the
same streams for a while; depth is de-duplicated by update id inside the book's sync rules, trades by
trade id (``a`` of an aggTrade, ``t`` of a trade) and tickers by update id here, so every event is
published once and each channel's ``seq`` stays contiguous.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tickpath.events import BookDelta, BookReset, BookSnapshot, Event, Ticker, Trade, Venue
from tickpath.venues.binance.channels import ChannelNormalizer
from tickpath.venues.binance.endpoints import futures_rules
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.parse import ParseError, ParseReason, decode_frame, decode_snapshot, sample_of
from tickpath.venues.binance.schemas import (
    AggTrade,
    BookTicker,
    ControlReply,
    DayTickerMsg,
    DepthUpdate,
    ForceOrderMsg,
    Kline,
    MarkPriceMsg,
    MiniTickerMsg,
    RawTrade,
)
from tickpath.venues.binance.sync import DEFAULT_MAX_BUFFER, SyncStats

try:  # built by the package's own build (setup.py); absent only in a source tree never built
    from tickpath.venues.binance import _core
except ImportError:  # pragma: no cover - the build always provides it
    _core = None  # type: ignore[assignment]

__all__ = ["BookView", "FrameProcessor", "NativeProcessor", "ParseError", "PureProcessor", "make_processor"]


@dataclass
class ProcessorCounts:
    """Frames by what they were; malformed ones by why."""

    frames: int = 0
    depth: int = 0
    trades: int = 0
    tickers: int = 0
    klines: int = 0
    control: int = 0
    unexpected_symbol: int = 0
    duplicates: int = 0  # trades/tickers seen twice (rollover overlap, venue duplicates)
    snapshots_bad: int = 0
    malformed_json: int = 0
    schema: int = 0
    unknown_event: int = 0
    channel_frames: int = 0  # 24 h tickers, mark price, liquidations, all-market arrays (channels.py)
    open_interest_polls: int = 0

    def add_channels(self, channels: ChannelNormalizer, malformed: dict[str, int]) -> ProcessorCounts:
        """These counts plus the channel decoder's (frames the core handed back)."""
        cc = channels.counts
        self.klines += cc.klines
        self.channel_frames += cc.channel_frames
        self.open_interest_polls += cc.open_interest_polls
        self.duplicates += cc.duplicates
        for reason, n in malformed.items():
            setattr(self, reason, getattr(self, reason) + n)
        return self


# Wire types the low-rate channel decoder takes (a list: an all-market array).
_CHANNEL_TYPES = (Kline, DayTickerMsg, MiniTickerMsg, MarkPriceMsg, ForceOrderMsg, list)


@dataclass(frozen=True)
class BookState:
    synced: bool
    needs_snapshot: bool
    last_update_id: int | None
    buffered: int
    seq: int


class FrameProcessor(Protocol):
    """What the feed engine calls; see the module docstring."""

    native: bool
    channels: ChannelNormalizer  # the low-rate channels' events and seq (open interest polls use it too)

    @property
    def last_event_ms(self) -> int | None:
        """Event time of the last frame that yielded events (for latency)."""

    @property
    def wants_snapshot(self) -> str | None:
        """The symbol whose book needs a snapshot after the last depth frame."""

    def on_frame(self, raw: bytes | str, receipt_ns: int) -> list[Event]: ...
    def on_snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> list[Event]: ...
    def reset(self, symbol: str, reason: str, receipt_ns: int) -> list[Event]: ...
    def counts(self) -> ProcessorCounts: ...
    def book_symbols(self) -> list[str]: ...
    def book_state(self, symbol: str) -> BookState | None: ...
    def book_stats(self, symbol: str) -> dict[str, int]: ...
    def book_top(self, symbol: str, n: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]: ...


def native_available() -> bool:
    return _core is not None


def pure_requested() -> bool:
    return os.environ.get("TICKPATH_PURE", "") == "1"


def check_max_buffer(max_buffer: int) -> None:
    """A book waiting for its snapshot buffers up to ``max_buffer`` events: at least one (with none the
    native core had nothing to drop for the newest and crashed; the reference raised IndexError)."""
    if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
        from tickpath.errors import ConfigError

        raise ConfigError(f"max_buffer must be an int of at least 1, got {max_buffer!r}")


def make_processor(
    venue: Venue,
    *,
    session: str,
    symbols: tuple[str, ...] | None = None,
    depth: int | None = None,
    max_buffer: int = DEFAULT_MAX_BUFFER,
    native: bool | None = None,
) -> FrameProcessor:
    """The processor for one (venue, session): native unless ``TICKPATH_PURE=1`` or ``native=False``."""
    check_max_buffer(max_buffer)
    use_native = (not pure_requested() and native_available()) if native is None else native
    if use_native:
        return NativeProcessor(venue, session=session, symbols=symbols, depth=depth, max_buffer=max_buffer)
    return PureProcessor(venue, session=session, symbols=symbols, depth=depth, max_buffer=max_buffer)


class PureProcessor:
    """The reference: msgspec decoding, Python books."""

    native = False

    def __init__(
        self,
        venue: Venue,
        *,
        session: str,
        symbols: tuple[str, ...] | None = None,
        depth: int | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        check_max_buffer(max_buffer)
        self.normalizer = Normalizer(venue, session=session, depth=depth, symbols=symbols, max_buffer=max_buffer)
        self.channels = ChannelNormalizer(venue, session=session)
        self._restricted = symbols is not None
        self._counts = ProcessorCounts()
        self._last_trade: dict[str, int] = {}
        self._last_ticker: dict[str, int] = {}
        self.last_event_ms: int | None = None
        self.wants_snapshot: str | None = None

    def on_frame(self, raw: bytes | str, receipt_ns: int) -> list[Event]:
        c = self._counts
        c.frames += 1
        self.wants_snapshot = None
        try:
            msg = decode_frame(raw)
        except ParseError as exc:
            setattr(c, exc.reason, getattr(c, exc.reason) + 1)
            raise
        t = type(msg)
        if t is DepthUpdate:
            return self._depth(msg, receipt_ns)  # type: ignore[arg-type]
        if t is AggTrade or t is RawTrade:
            trade: AggTrade | RawTrade = msg  # type: ignore[assignment]
            c.trades += 1
            tid = trade.a if type(trade) is AggTrade else trade.t  # type: ignore[union-attr]
            if tid <= self._last_trade.get(trade.s, -1):
                c.duplicates += 1
                return []
            self._last_trade[trade.s] = tid
            self.last_event_ms = trade.E
            return [self.normalizer.trade(trade, receipt_ns)]
        if t is BookTicker:
            ticker: BookTicker = msg  # type: ignore[assignment]
            c.tickers += 1
            if ticker.u <= self._last_ticker.get(ticker.s, -1):
                c.duplicates += 1
                return []
            self._last_ticker[ticker.s] = ticker.u
            self.last_event_ms = ticker.E
            return [self.normalizer.ticker(ticker, receipt_ns)]
        if t is ControlReply:
            c.control += 1
            return []
        return self.channels.on_message(msg, receipt_ns)  # the low-rate channels

    def _depth(self, msg: DepthUpdate, receipt_ns: int) -> list[Event]:
        self._counts.depth += 1
        bs = self.normalizer.books.get(msg.s)
        if bs is None:
            if self._restricted:
                self._counts.unexpected_symbol += 1
                return []
            bs = self.normalizer.book_sync(msg.s)
        events = bs.on_depth(msg, receipt_ns)
        if bs.needs_snapshot:
            self.wants_snapshot = msg.s
        self.last_event_ms = msg.E
        return events

    def on_snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> list[Event]:
        self.wants_snapshot = None
        try:
            snap = decode_snapshot(body)
        except ParseError:
            self._counts.snapshots_bad += 1
            raise
        bs = self.normalizer.books.get(symbol)
        if bs is None:
            if self._restricted:
                return []
            bs = self.normalizer.book_sync(symbol)
        events = bs.on_snapshot(snap, receipt_ns)
        if bs.needs_snapshot:
            self.wants_snapshot = symbol
        return events

    def reset(self, symbol: str, reason: str, receipt_ns: int) -> list[Event]:
        bs = self.normalizer.books.get(symbol)
        return bs.reset(reason, receipt_ns) if bs is not None else []

    def counts(self) -> ProcessorCounts:
        return ProcessorCounts(**vars(self._counts)).add_channels(self.channels, {})

    def book_symbols(self) -> list[str]:
        return list(self.normalizer.books)

    def book_state(self, symbol: str) -> BookState | None:
        bs = self.normalizer.books.get(symbol)
        if bs is None:
            return None
        return BookState(bs.synced, bs.needs_snapshot, bs.last_update_id, bs.buffered, bs.seq)

    def book_stats(self, symbol: str) -> dict[str, int]:
        bs = self.normalizer.books.get(symbol)
        return bs.stats.as_dict() if bs is not None else {}

    def book_top(self, symbol: str, n: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bs = self.normalizer.books.get(symbol)
        return bs.book.top(n) if bs is not None else ([], [])


_REASONS: dict[int, ParseReason] = {}
if _core is not None:
    _REASONS = {_core.BAD_JSON: "malformed_json", _core.BAD_SCHEMA: "schema", _core.BAD_UNKNOWN: "unknown_event"}
_CLASSES = (BookDelta, BookSnapshot, BookReset, Trade, Ticker)
WANTS_SNAPSHOT = _core.WANTS_SNAPSHOT if _core is not None else 1 << 24
HANDOFF = _core.HANDOFF if _core is not None else -4  # a frame for the Python channel decoder


class NativeProcessor:
    """The C++ core behind the same interface; events stay native until asked for."""

    native = True

    def __init__(
        self,
        venue: Venue,
        *,
        session: str,
        symbols: tuple[str, ...] | None = None,
        depth: int | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        if _core is None:  # pragma: no cover
            raise RuntimeError("the native core is not built; reinstall tickpath or set TICKPATH_PURE=1")
        check_max_buffer(max_buffer)
        names = sorted({s.upper() for s in symbols}) if symbols is not None else []
        self._restricted = symbols is not None
        self._session = session
        self._venue = venue
        self.core = _core.Core(
            futures_rules(venue),  # the venue table says which sync guide (pu chain or U rule)
            names,
            symbols is not None,
            -1 if depth is None else depth,
            max_buffer,
            session,
            venue,
            _CLASSES,
        )
        # feed(raw, receipt_ns) -> int: like on_frame, but events stay native until take_tables (the
        # columnar path): the number of events kept, plus WANTS_SNAPSHOT when a book now waits for
        # one; negative for a rejected frame (counted). A direct builtin: no pybind11 dispatch.
        self.feed = self.core.feeder()
        # feed_many(frames, receipt_ns, start) -> (done, code, events): feed() over frames[start:] in one
        # call, without the GIL, stopping after a frame that needs the caller (see feed_batch).
        self.feed_many = self.core.batcher()
        self.channels = ChannelNormalizer(venue, session=session)
        self._malformed = {"malformed_json": 0, "schema": 0, "unknown_event": 0}  # of handed-back frames
        if depth is not None and depth < 1:
            from tickpath.errors import ConfigError

            raise ConfigError(f"top-N depth must be at least 1, got {depth}")

    @property
    def last_event_ms(self) -> int | None:
        return self.core.last_event_ms

    @property
    def wants_snapshot(self) -> str | None:
        return self.core.wants_snapshot

    def on_frame(self, raw: bytes | str, receipt_ns: int) -> list[Event]:
        n = self.feed(raw, receipt_ns)
        if n >= WANTS_SNAPSHOT:
            n -= WANTS_SNAPSHOT
        if n < 0:
            if n == HANDOFF:
                return self.handoff(raw, receipt_ns)
            raise self.rejection(n, raw)
        return self.core.take_events() if n > 0 else []

    def feed_batch(
        self,
        frames: Sequence[bytes | str],
        receipt_ns: int | Sequence[int] | None,
        special: Callable[[int, bytes | str, int], object],
    ) -> int:
        """:meth:`feed` over every frame, in order, in as few native calls as the frames allow.

        ``receipt_ns``: one time for every frame (the read that delivered them), one per frame, or
        None for the core to read the system's real-time clock per frame. Each frame whose
        :meth:`feed` result is not a plain count (rejected, handed back, or a book now waiting for a
        snapshot) is passed to ``special(result, frame, its receipt time)`` before the next frame
        runs, so counters, events and decisions are those of single calls. Returns the events kept.
        """
        feed_many, n, i, kept = self.feed_many, len(frames), 0, 0
        while i < n:
            done, code, got = feed_many(frames, receipt_ns, i)
            kept += got
            i += done
            if code:
                special(code, frames[i - 1], self.core.last_receipt_ns)
        return kept

    def handoff(self, raw: bytes | str, receipt_ns: int) -> list[Event]:
        """A frame the core handed back (``HANDOFF``): decoded and normalized as the reference does."""
        try:
            msg = decode_frame(raw)
        except ParseError as exc:
            self._malformed[exc.reason] += 1
            raise
        if not isinstance(msg, _CHANNEL_TYPES):  # the core names these kinds itself; never reached
            return []
        return self.channels.on_message(msg, receipt_ns)

    def rejection(self, code: int, raw: bytes | str) -> ParseError:
        """The :class:`ParseError` for a negative result of the core (a rejected frame or body)."""
        reason = _REASONS[code]
        if reason == "unknown_event":
            return ParseError(f"unknown event kind {self.core.unknown_kind!r}", reason=reason, sample=sample_of(raw))
        what = "frame violates the schema" if reason == "schema" else "undecodable frame"
        return ParseError(what, reason=reason, sample=sample_of(raw))

    def feed_snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> int:
        """Like :meth:`on_snapshot` for the columnar path; raises :class:`ParseError` on a bad body."""
        n = self.core.on_snapshot(symbol, body, receipt_ns, not self._restricted)
        if n < 0:
            raise self.rejection(n, body)
        return n

    def feed_reset(self, symbol: str, reason: str, receipt_ns: int) -> int:
        """Like :meth:`reset` for the columnar path."""
        return self.core.reset(symbol, reason, receipt_ns)

    def pending(self) -> int:
        """Events held for :meth:`take_tables`."""
        return self.core.pending()

    def take_tables(self) -> dict[str, Any]:
        """Every pending event as one Arrow table per storage table (``tickpath.tables`` layout)."""
        from tickpath.venues.binance.native_tables import columns_to_tables

        cols = self.core.take_columns()
        if not cols:
            return {}
        return columns_to_tables(cols)

    def on_snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> list[Event]:
        return self.core.take_events() if self.feed_snapshot(symbol, body, receipt_ns) > 0 else []

    def reset(self, symbol: str, reason: str, receipt_ns: int) -> list[Event]:
        return self.core.take_events() if self.feed_reset(symbol, reason, receipt_ns) > 0 else []

    def counts(self) -> ProcessorCounts:
        return ProcessorCounts(**self.core.stats()).add_channels(self.channels, self._malformed)

    def book_symbols(self) -> list[str]:
        return self.core.symbols()

    def book_state(self, symbol: str) -> BookState | None:
        st = self.core.book_state(symbol)
        return None if st is None else BookState(*st)

    def book_stats(self, symbol: str) -> dict[str, int]:
        return self.core.book_stats(symbol) or {}

    def book_top(self, symbol: str, n: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        top = self.core.book_top(symbol, -1 if n is None else n)
        return ([], []) if top is None else top


class _BookLevels:
    """A book's levels as the reference's ``OrderBook`` shows them: ``top`` and ``as_dicts``."""

    __slots__ = ("_proc", "_symbol")

    def __init__(self, proc: FrameProcessor, symbol: str) -> None:
        self._proc = proc
        self._symbol = symbol

    def top(self, n: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self._proc.book_top(self._symbol, n)

    def as_dicts(self) -> tuple[dict[str, str], dict[str, str]]:
        bids, asks = self.top()
        return dict(bids), dict(asks)


class BookView:
    """One symbol's book and sync state read through a processor, whichever implementation it is."""

    __slots__ = ("_proc", "symbol")

    def __init__(self, proc: FrameProcessor, symbol: str) -> None:
        self._proc = proc
        self.symbol = symbol

    def _state(self) -> BookState:
        st = self._proc.book_state(self.symbol)
        assert st is not None
        return st

    @property
    def synced(self) -> bool:
        return self._state().synced

    @property
    def needs_snapshot(self) -> bool:
        return self._state().needs_snapshot

    @property
    def last_update_id(self) -> int | None:
        return self._state().last_update_id

    @property
    def buffered(self) -> int:
        return self._state().buffered

    @property
    def seq(self) -> int:
        return self._state().seq

    @property
    def stats(self) -> SyncStats:
        return SyncStats(**self._proc.book_stats(self.symbol))

    @property
    def book(self) -> _BookLevels:
        return _BookLevels(self._proc, self.symbol)


def book_views(proc: FrameProcessor) -> dict[str, BookView]:
    """Every tracked symbol's :class:`BookView`."""
    return {s: BookView(proc, s) for s in proc.book_symbols()}
