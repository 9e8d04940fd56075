"""Keeping one symbol's order book in exact sync with Binance, by Binance's documented rules.

Spot (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#how-to-manage-a-local-order-book-correctly):
buffer the diff events; fetch a snapshot (``limit=5000`` by default); if the snapshot is older than
the first buffered event (``lastUpdateId + 1 < U``) fetch again; drop events with
``u <= lastUpdateId``; the first applied event has ``U <= lastUpdateId + 1 <= u``; after that each
event's ``U`` is the previous ``u + 1``.

USD-M futures (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly):
drop events with ``u < lastUpdateId``; the first applied event has ``U <= lastUpdateId <= u``;
after that each event's ``pu`` is the previous event's ``u``. COIN-M delivery futures documents the
same rules (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly);
Binance.US and Binance TR follow spot's. Which rules a venue follows is ``rules`` in its
:class:`~tickpath.venues.binance.endpoints.VenueEndpoints`.

Anything else is a break. A break (or a crossed book after an update, or a level that cannot be
parsed) discards this symbol's book, emits a :class:`~tickpath.events.BookReset` so consumers know,
and sets :attr:`BookSync.needs_snapshot`; the event that revealed the gap is kept as the first of the
new buffer. Other symbols are untouched: there is one ``BookSync`` per (venue, symbol).

An event whose ``u`` is at or below the last applied ``u`` was already applied (a duplicate, or the
overlap of a connection rollover): it is counted and ignored, which keeps the book exact.

Output is the ``l2`` channel of that symbol: a snapshot, then deltas, with resets between syncs, in
one contiguous ``seq``. In top-N mode (``depth=N``) the deltas carry only the changes inside the top
N (see :mod:`tickpath.book.topn`) and updates that change nothing visible are folded into the next
delta's ``U``/``u`` range, so that range stays contiguous and an upstream gap stays detectable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Literal

from tickpath.book.orderbook import InvalidLevelError, OrderBook
from tickpath.book.topn import TopNWindow
from tickpath.errors import ConfigError
from tickpath.events import BookDelta, BookReset, BookSnapshot, Event, Level, Venue
from tickpath.venues.binance.endpoints import KNOWN_VENUES, VENUES, futures_rules
from tickpath.venues.binance.schemas import DepthSnapshot, DepthUpdate

# Events buffered per book before its snapshot; the oldest go first (counted). Only the events after the
# snapshot's lastUpdateId are ever applied, and a snapshot is taken when it is requested, so the buffer
# need only span one request: 1,000 is 100 s at Binance's fastest diff stream (@100ms, 10 a second) and
# 10 s at 100 a second. A book waiting minutes for a weight-paced snapshot holds 1,000, not all it saw.
DEFAULT_MAX_BUFFER = 1_000


@dataclass
class SyncStats:
    """What happened to one symbol's book; the engine exports these as metrics."""

    snapshots: int = 0  # snapshots accepted
    refetches: int = 0  # snapshots rejected (older than the first buffered event, bad, crossed)
    ignored_snapshots: int = 0  # snapshots that arrived while already in sync
    resyncs: int = 0  # resets emitted after the book had been published
    gaps: int = 0  # sequence breaks (U / pu mismatch, or a snapshot that cannot be bridged)
    duplicates: int = 0  # events at or below the last applied update id, ignored
    dropped_before_sync: int = 0  # events older than the snapshot, dropped as the rules require
    buffer_overflow: int = 0  # buffered events discarded because the buffer was full
    crossed: int = 0  # updates (or snapshots) that left bid >= ask
    invalid: int = 0  # events or snapshots with a level that is not a valid decimal
    deltas: int = 0  # delta events emitted

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BookSync:
    """The sync state machine and book of one (venue, symbol); owns that symbol's ``l2`` seq."""

    def __init__(
        self, venue: Venue, symbol: str, *, session: str, depth: int | None = None, max_buffer: int = DEFAULT_MAX_BUFFER
    ) -> None:
        if venue not in VENUES:
            raise ConfigError(f"unknown venue {venue!r}; known venues: {KNOWN_VENUES}")
        self.venue: Venue = venue
        self.symbol = symbol
        self.session = session
        self.depth = depth
        self.max_buffer = max_buffer
        self.book = OrderBook()
        self.stats = SyncStats()
        self.needs_snapshot = True
        self.synced = False  # a snapshot has been published and the book is valid
        self.last_update_id: int | None = None  # u of the last applied event (lastUpdateId after a snapshot)
        self._awaiting_first = False  # snapshot published; the first-event rule is still to be met
        self._buffer: deque[tuple[DepthUpdate, int]] = deque()
        self._futures = futures_rules(venue)  # COIN-M too; Binance.US and TR follow spot
        self._window = TopNWindow(depth) if depth is not None else None
        self._plain = depth is None  # full-depth mode: deltas are the exchange's levels as sent
        self._pending: tuple[int, int | None] | None = None  # top-N: (U, pu) of folded updates
        self._seq = 0

    @property
    def seq(self) -> int:
        """The seq of the last emitted event (0 before any)."""
        return self._seq

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def first_buffered_update_id(self) -> int | None:
        """``U`` of the oldest buffered event: a snapshot must reach at least this far."""
        return self._buffer[0][0].U if self._buffer else None

    def classify(self, msg: DepthUpdate) -> Literal["next", "duplicate", "ahead", "waiting"]:
        """What :meth:`on_depth` would make of ``msg``, without applying it.

        ``next`` continues the live book, ``duplicate`` was already applied, ``ahead`` would be a gap
        (events are missing before it), ``waiting`` means no book is live yet (it would be buffered).
        During a connection rollover the engine can feed the new connection's events only once they
        are ``next`` or ``duplicate``, so a new connection that runs ahead of the old one never
        looks like a gap.
        """
        last = self.last_update_id
        if not self.synced or last is None:
            return "waiting"
        first_id = msg.U
        if self._awaiting_first:
            if (msg.u < last) if self._futures else (msg.u <= last):
                return "duplicate"
            return "next" if first_id <= (last if self._futures else last + 1) else "ahead"
        if msg.u <= last:
            return "duplicate"
        return "next" if ((msg.pu == last) if self._futures else (first_id == last + 1)) else "ahead"

    # -- input -----------------------------------------------------------------------------------

    def on_depth(self, msg: DepthUpdate, receipt_ns: int) -> list[Event]:
        """Feed one diff event: buffered before sync, applied when live; returns what to publish."""
        # Fast path: the steady state of a full-depth book (live, contiguous, valid, not crossed).
        # Any other case, or any surprise on the way, goes through _live, which handles them all.
        last = self.last_update_id
        first_id = msg.U
        if (
            self._plain
            and self.synced
            and not self._awaiting_first
            and last is not None
            and msg.u > last
            and ((msg.pu == last) if self._futures else (first_id == last + 1))
        ):
            book = self.book
            bids = book.bids
            asks = book.asks
            try:
                # OrderBook.apply and is_crossed inlined: two calls fewer per message, and an empty
                # side (about one in eight) costs nothing.
                if msg.b:
                    bids.apply(msg.b)
                if msg.a:
                    asks.apply(msg.a)
            except InvalidLevelError:
                pass  # _live re-applies and takes the resync path (the book is discarded anyway)
            else:
                b = bids.ranks
                a = asks.ranks
                if not (b and a and b[-1] >= -a[-1]):
                    self.last_update_id = msg.u
                    self._seq = seq = self._seq + 1
                    self.stats.deltas += 1
                    return [
                        BookDelta(
                            session=self.session,
                            venue=self.venue,
                            symbol=self.symbol,
                            seq=seq,
                            event_time_ms=msg.E,
                            transaction_time_ms=msg.T,
                            receipt_ns=receipt_ns,
                            first_update_id=first_id,
                            final_update_id=msg.u,
                            prev_final_update_id=msg.pu,
                            bids=msg.b,
                            asks=msg.a,
                        )
                    ]
        out: list[Event] = []
        if self.synced:
            self._live(msg, receipt_ns, out)
        else:
            self._buffer_msg(msg, receipt_ns)
        return out

    def on_snapshot(self, snap: DepthSnapshot, receipt_ns: int) -> list[Event]:
        """Apply a REST snapshot if it can be bridged to the buffered events, then replay them.

        Returns nothing and leaves :attr:`needs_snapshot` set when the snapshot is older than the
        first buffered event (fetch again), invalid, or crossed.
        """
        out: list[Event] = []
        if not self.needs_snapshot:
            self.stats.ignored_snapshots += 1
            return out
        kept = self._bridge(snap.lastUpdateId)
        if kept is None or not self._load(snap):
            return out
        self.stats.snapshots += 1
        self.needs_snapshot = False
        self.synced = True
        self._awaiting_first = True
        self.last_update_id = snap.lastUpdateId
        self._pending = None
        if self._window is not None:
            bids, asks = self._window.reset(self.book)
        else:
            bids, asks = self.book.top()
        self._seq += 1
        out.append(
            BookSnapshot(
                session=self.session,
                venue=self.venue,
                symbol=self.symbol,
                seq=self._seq,
                event_time_ms=snap.E,
                transaction_time_ms=snap.T,
                receipt_ns=receipt_ns,
                last_update_id=snap.lastUpdateId,
                bids=bids,
                asks=asks,
                depth=self.depth,
            )
        )
        self._buffer = deque()
        for m, r in kept:
            if self.synced:
                self._live(m, r, out)
            else:
                self._buffer_msg(m, r)
        return out

    def _bridge(self, last: int) -> list[tuple[DepthUpdate, int]] | None:
        """Drop buffered events the snapshot already contains; None (fetch again) when the first
        one left starts after the snapshot, which is then too old to bridge to the stream."""
        futures = self._futures
        kept: list[tuple[DepthUpdate, int]] = []
        for item in self._buffer:
            m = item[0]
            if (m.u < last) if futures else (m.u <= last):
                self.stats.dropped_before_sync += 1
            else:
                kept.append(item)
        self._buffer = deque(kept)
        first_id = kept[0][0].U if kept else None
        if first_id is not None and first_id > (last if futures else last + 1):
            self.stats.refetches += 1
            return None
        return kept

    def _load(self, snap: DepthSnapshot) -> bool:
        """Load the snapshot's levels; False (fetch again) when they are invalid or crossed."""
        try:
            self.book.load(snap.bids, snap.asks)
        except InvalidLevelError:
            self.stats.invalid += 1
            self.stats.refetches += 1
            self.book.clear()
            return False
        if self.book.is_crossed():
            self.stats.crossed += 1
            self.stats.refetches += 1
            self.book.clear()
            return False
        return True

    def reset(self, reason: str, receipt_ns: int) -> list[Event]:
        """Discard the book on the engine's behalf (e.g. a reconnect lost events); emits a reset if
        a book had been published, and asks for a new snapshot."""
        out: list[Event] = []
        if self.synced:
            self._reset(reason, receipt_ns, None, None, out)
        else:
            self._buffer.clear()
            self.needs_snapshot = True
        return out

    # -- internals -------------------------------------------------------------------------------

    def _buffer_msg(self, msg: DepthUpdate, receipt_ns: int) -> None:
        buf = self._buffer
        if len(buf) >= self.max_buffer:
            buf.popleft()
            self.stats.buffer_overflow += 1
        buf.append((msg, receipt_ns))

    def _reset(
        self, reason: str, receipt_ns: int, event_time_ms: int | None, transaction_time_ms: int | None, out: list[Event]
    ) -> None:
        self._seq += 1
        out.append(
            BookReset(
                session=self.session,
                venue=self.venue,
                symbol=self.symbol,
                seq=self._seq,
                event_time_ms=event_time_ms,
                transaction_time_ms=transaction_time_ms,
                receipt_ns=receipt_ns,
                reason=reason,
                last_good_update_id=self.last_update_id,
            )
        )
        self.stats.resyncs += 1
        self.book.clear()
        if self._window is not None:
            self._window.clear()
        self._pending = None
        self._buffer.clear()
        self.synced = False
        self._awaiting_first = False
        self.needs_snapshot = True

    def _live(self, msg: DepthUpdate, receipt_ns: int, out: list[Event]) -> None:
        if not self._in_sequence(msg, receipt_ns, out):
            return
        book = self.book
        try:
            book.apply(msg.b, msg.a)
        except InvalidLevelError:
            # The event is lost, so everything after it would be a gap: resync now.
            self.stats.invalid += 1
            self._reset("invalid_update", receipt_ns, msg.E, msg.T, out)
            return
        self._awaiting_first = False
        self.last_update_id = msg.u
        if book.is_crossed():
            self.stats.crossed += 1
            self._reset("crossed", receipt_ns, msg.E, msg.T, out)
            return
        if self._window is None:
            self._emit_delta(msg, receipt_ns, (msg.U, msg.pu), msg.b, msg.a, None, out)
        else:
            self._emit_window(msg, receipt_ns, out)

    def _in_sequence(self, msg: DepthUpdate, receipt_ns: int, out: list[Event]) -> bool:
        """Binance's rules for the next event: False when it is dropped (stale or duplicate) or
        when it starts a resync (a gap, or a snapshot older than the stream)."""
        last = self.last_update_id
        assert last is not None
        u, first_id = msg.u, msg.U
        if self._awaiting_first:
            if (u < last) if self._futures else (u <= last):
                self.stats.dropped_before_sync += 1
                return False
            if first_id <= (last if self._futures else last + 1):
                return True
            self.stats.gaps += 1  # the snapshot turned out older than the stream: start over
            self._reset("snapshot_too_old", receipt_ns, msg.E, msg.T, out)
            self._buffer_msg(msg, receipt_ns)
            return False
        if u <= last:
            self.stats.duplicates += 1
            return False
        if (msg.pu != last) if self._futures else (first_id != last + 1):
            self.stats.gaps += 1
            self._reset("gap", receipt_ns, msg.E, msg.T, out)
            self._buffer_msg(msg, receipt_ns)
            return False
        return True

    def _emit_window(self, msg: DepthUpdate, receipt_ns: int, out: list[Event]) -> None:
        """A top-N book publishes what changed inside its window; an event that changed nothing
        visible folds its update-id range into the next delta."""
        assert self._window is not None
        pending = self._pending
        if pending is None:
            pending = (msg.U, msg.pu)
        bids, asks = self._window.diff(self.book)
        if not bids and not asks:
            self._pending = pending
            return
        self._pending = None
        self._emit_delta(msg, receipt_ns, pending, bids, asks, self.depth, out)

    def _emit_delta(
        self,
        msg: DepthUpdate,
        receipt_ns: int,
        ids: tuple[int, int | None],
        bids: list[Level],
        asks: list[Level],
        depth: int | None,
        out: list[Event],
    ) -> None:
        self._seq += 1
        self.stats.deltas += 1
        delta = BookDelta(
            session=self.session,
            venue=self.venue,
            symbol=self.symbol,
            seq=self._seq,
            event_time_ms=msg.E,
            transaction_time_ms=msg.T,
            receipt_ns=receipt_ns,
            first_update_id=ids[0],
            final_update_id=msg.u,
            prev_final_update_id=ids[1],
            bids=bids,
            asks=asks,
            depth=depth,
        )
        out.append(delta)

    def stats_dict(self) -> dict[str, int]:
        return self.stats.as_dict()
