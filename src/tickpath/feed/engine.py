"""The feed's hot path: frames in, normalized events out to the pipeline.

:class:`FeedEngine` is synchronous and single-threaded on purpose: every connection's reader calls
:meth:`FeedEngine.on_frame` with the frame and its receipt time, and the engine hands it to the venue's
processor (:func:`tickpath.venues.binance.processor.make_processor`: the native core, or the
pure-Python reference with ``TICKPATH_PURE=1``), which decodes it, de-duplicates it, keeps the books in
sync and normalizes it; the engine appends the events to the pipeline, asks for snapshots and samples
latency, without an await or a log line per message. It only returns an awaitable when the pipeline
is full (back-pressure). It knows no wire format.

Latency figures are honest and cheap on the hot path: the receipt-to-enqueue time and the
receipt-minus-event time of one frame in every ``latency_sample_every`` are appended to arrays and
moved into HdrHistograms (:class:`~tickpath.stats.LatencyRecorder`) by :meth:`drain_latency`, off the
per-message path and in bulk (:meth:`~tickpath.stats.LatencyRecorder.record_array`: one by one cost as much
event-loop time per frame as decoding it). Sampling every k-th frame does not bias percentiles (it
does not depend on the value), and the rate is stated in the summary.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.events import BookSnapshot, Event, Venue
from tickpath.feed.clocks import clock_readers
from tickpath.logs import log_event
from tickpath.sinks.base import TableBatch
from tickpath.stats import LatencyRecorder
from tickpath.venues.binance.processor import (
    HANDOFF,
    WANTS_SNAPSHOT,
    BookView,
    NativeProcessor,
    ParseError,
    book_views,
    make_processor,
)

log = logging.getLogger(__name__)

MALFORMED_LOG_FIRST = 10
MALFORMED_LOG_EVERY = 1000
LAT_BUFFER_MAX = 1_000_000  # samples kept between drains (bounded memory)


class EventSink(Protocol):
    def emit(self, events: list[Event]) -> Awaitable[None] | None: ...


class TablePipeline(EventSink, Protocol):
    """A pipeline that also takes events in columns (the native core's columnar path)."""

    batch_size: int

    def emit_tables(self, batch: TableBatch) -> Awaitable[None] | None: ...
    def set_source(self, take: Callable[[], TableBatch | None]) -> None: ...


class SnapshotRequester(Protocol):
    def request(self, symbol: str) -> bool: ...


class FrameRecorder(Protocol):
    def frame(self, conn_id: str, wall_ns: int, text: str) -> None: ...


class _Conn(Protocol):
    conn_id: str


@dataclass
class EngineStats:
    """A snapshot of the engine's counters (:attr:`FeedEngine.stats`)."""

    frames: int = 0
    depth: int = 0
    trades: int = 0
    tickers: int = 0
    klines: int = 0
    control: int = 0
    malformed: dict[str, int] = field(default_factory=lambda: {"malformed_json": 0, "schema": 0, "unknown_event": 0})
    unexpected_symbol: int = 0
    duplicates: int = 0  # trades/tickers seen twice (rollover overlap, venue duplicates)
    snapshots_bad: int = 0
    resets_by_engine: int = 0  # resets the engine asked for (connection lost)
    latency_dropped: int = 0  # latency samples not kept because the buffer was full

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


class FeedEngine:
    """Frames to the venue's processor, events to the pipeline; one per venue and session."""

    def __init__(
        self,
        venue: Venue,
        symbols: tuple[str, ...] | None,  # None: any symbol whose frames arrive (--symbols all)
        pipeline: EventSink,
        *,
        session: str,
        depth: int | None = None,
        clock: Clock = DEFAULT_CLOCK,
        snapshots: SnapshotRequester | None = None,
        recorder: FrameRecorder | None = None,
        latency_sample_every: int = 1,
        clock_offset_ns: int = 0,
        columnar: TablePipeline | None = None,
    ) -> None:
        self.venue: Venue = venue
        self.symbols = symbols
        self.session = session
        self.pipeline = pipeline
        self.clock = clock
        self._mono_ns = clock_readers(clock)[1]
        self.snapshots = snapshots
        self.recorder = recorder
        self.processor = make_processor(venue, session=session, symbols=symbols, depth=depth)
        self.ever_synced: set[str] = set()  # books published at least once this run
        self.clock_offset_ns = clock_offset_ns
        self._frames = 0
        self._resets_by_engine = 0
        self._latency_dropped = 0
        self.sample_every = max(1, latency_sample_every)
        self._lat_enqueue = array("q")
        self._lat_event = array("q")
        self.enqueue_latency = LatencyRecorder("receipt_to_enqueue")
        self.event_latency = LatencyRecorder("receipt_minus_event")
        # The columnar path: with the native core and a pipeline whose sinks all take Arrow tables,
        # events stay in the core's column buffers and leave as TableBatches, no object per event.
        self._columns: NativeProcessor | None = None
        self._table_pipeline = columnar
        self._held = 0
        self._waits: Awaitable[None] | None = None  # the back-pressure of a batch's handed-back frames
        if columnar is not None and isinstance(self.processor, NativeProcessor):
            self._columns = self.processor
            self._feed = self.processor.feed
            self._batch_size = columnar.batch_size
            columnar.set_source(self.take_batch)
            self.on_frame = self._on_frame_columnar  # type: ignore[method-assign]

    @property
    def columnar(self) -> bool:
        return self._columns is not None

    # -- hot path ------------------------------------------------------------------------------

    def on_frame(self, text: str, wall_ns: int, mono_ns: int, conn: _Conn) -> Awaitable[None] | None:
        """One frame as received; returns an awaitable only when the pipeline applies back-pressure."""
        self._frames = n = self._frames + 1
        if self.recorder is not None:
            self.recorder.frame(conn.conn_id, wall_ns, text)
        proc = self.processor
        try:
            events = proc.on_frame(text, wall_ns)
        except ParseError as exc:
            self._bad_frame(exc)
            return None
        want = proc.wants_snapshot
        if want is not None and self.snapshots is not None:
            self.snapshots.request(want)
        if not events:
            return None
        wait = self.pipeline.emit(events)
        if n % self.sample_every == 0:
            self._sample(wall_ns, mono_ns, proc.last_event_ms)
        return wait

    def _on_frame_columnar(self, text: str, wall_ns: int, mono_ns: int, conn: _Conn) -> Awaitable[None] | None:
        """:meth:`on_frame` on the columnar path: the events stay native until a batch is full."""
        self._frames = n = self._frames + 1
        if self.recorder is not None:
            self.recorder.frame(conn.conn_id, wall_ns, text)
        got = self._feed(text, wall_ns)
        if got < 0:
            assert self._columns is not None
            if got == HANDOFF:  # a low-rate channel's frame: its events take the event path
                try:
                    events = self._columns.handoff(text, wall_ns)
                except ParseError as exc:
                    self._bad_frame(exc)
                    return None
                return self.pipeline.emit(events) if events else None
            self._bad_frame(self._columns.rejection(got, text))
            return None
        if got >= WANTS_SNAPSHOT:
            got -= WANTS_SNAPSHOT
            if self.snapshots is not None:
                want = self._columns.wants_snapshot if self._columns is not None else None
                if want is not None:
                    self.snapshots.request(want)
        if not got:
            return None
        self._held += got
        if n % self.sample_every == 0 and self._columns is not None:
            self._sample(wall_ns, mono_ns, self._columns.last_event_ms)
        if self._held >= self._batch_size:
            batch = self.take_batch()
            if batch is not None and self._table_pipeline is not None:
                return self._table_pipeline.emit_tables(batch)
        return None

    def on_frames(self, texts: list[str], wall_ns: int, mono_ns: int, conn: _Conn) -> Awaitable[None] | None:
        """Frames that arrived together (one socket read), in order: as :meth:`on_frame` on each.

        On the columnar path the core takes them in one call (``feed_batch``); a frame it hands back
        or rejects, or after which a book waits for a snapshot, is dealt with here before the next
        runs. Latency is sampled once per call (the first frame's receipt, the last event time).
        """
        cols = self._columns
        if cols is None or self.recorder is not None:
            wait = None
            for text in texts:
                wait = self.on_frame(text, wall_ns, mono_ns, conn) or wait
            return wait
        n0 = self._frames
        self._frames = n0 + len(texts)
        self._waits = None
        got = cols.feed_batch(texts, wall_ns, self._special)
        wait = self._waits
        if got:
            self._held += got
            if self._frames // self.sample_every > n0 // self.sample_every:
                self._sample(wall_ns, mono_ns, cols.last_event_ms)
            if self._held >= self._batch_size:
                batch = self.take_batch()
                if batch is not None and self._table_pipeline is not None:
                    wait = self._table_pipeline.emit_tables(batch) or wait
        return wait

    def _special(self, code: int, text: bytes | str, wall_ns: int) -> None:
        """A frame of a batch that needs the engine: handed back, rejected, or a book wants a snapshot."""
        cols = self._columns
        assert cols is not None
        if code >= 0:
            want = cols.wants_snapshot
            if want is not None and self.snapshots is not None:
                self.snapshots.request(want)
            return
        if code != HANDOFF:
            self._bad_frame(cols.rejection(code, text))
            return
        try:
            events = cols.handoff(text, wall_ns)
        except ParseError as exc:
            self._bad_frame(exc)
            return
        if events:
            self._waits = self.pipeline.emit(events) or self._waits

    def _sample(self, wall_ns: int, mono_ns: int, event_ms: int | None) -> None:
        if len(self._lat_enqueue) < LAT_BUFFER_MAX:
            self._lat_enqueue.append(self._mono_ns() - mono_ns)
            if event_ms is not None:
                self._lat_event.append(wall_ns - event_ms * 1_000_000 + self.clock_offset_ns)
        else:
            self._latency_dropped += 1

    def take_batch(self) -> TableBatch | None:
        """The events held in columns, as one TableBatch (None when there are none)."""
        if self._columns is None or (not self._held and not self._columns.pending()):
            return None
        tables = self._columns.take_tables()
        self._held = 0
        return TableBatch(tables, sum(t.num_rows for t in tables.values())) if tables else None

    @property
    def stats(self) -> EngineStats:
        c = self.processor.counts()
        return EngineStats(
            frames=c.frames,
            depth=c.depth,
            trades=c.trades,
            tickers=c.tickers,
            klines=c.klines,
            control=c.control,
            malformed={"malformed_json": c.malformed_json, "schema": c.schema, "unknown_event": c.unknown_event},
            unexpected_symbol=c.unexpected_symbol,
            duplicates=c.duplicates,
            snapshots_bad=c.snapshots_bad,
            resets_by_engine=self._resets_by_engine,
            latency_dropped=self._latency_dropped,
        )

    @property
    def books(self) -> dict[str, BookView]:
        """Every tracked symbol's book and sync state (a view; read it off the hot path)."""
        return book_views(self.processor)

    def _bad_frame(self, exc: ParseError) -> None:
        n = self.stats.malformed_total
        if n <= MALFORMED_LOG_FIRST or n % MALFORMED_LOG_EVERY == 0:
            log_event(log, logging.WARNING, "frame_rejected", reason=exc.reason, count=n, sample=exc.sample)

    # -- snapshots and connection events ---------------------------------------------------------

    def on_snapshot(self, symbol: str, body: bytes, wall_ns: int) -> Awaitable[None] | None:
        """A fetched REST snapshot for ``symbol``: sync the book, publish, ask again if rejected."""
        proc = self.processor
        try:
            if self._columns is not None:
                return self._snapshot_columnar(symbol, body, wall_ns)
            events = proc.on_snapshot(symbol, body, wall_ns)
        except ParseError as exc:
            log_event(log, logging.WARNING, "snapshot_rejected", symbol=symbol, reason=exc.reason, sample=exc.sample)
            if self.snapshots is not None:
                self.snapshots.request(symbol)
            return None
        if proc.wants_snapshot is not None and self.snapshots is not None:
            self.snapshots.request(symbol)
        if events:
            self.ever_synced.add(symbol)
            first = events[0]
            log_event(
                log,
                logging.INFO,
                "book_synced",
                symbol=symbol,
                last_update_id=first.last_update_id if isinstance(first, BookSnapshot) else None,
                replayed=len(events) - 1,
            )
        return self.pipeline.emit(events) if events else None

    def _snapshot_columnar(self, symbol: str, body: bytes, wall_ns: int) -> Awaitable[None] | None:
        proc = self._columns
        assert proc is not None
        got = proc.feed_snapshot(symbol, body, wall_ns)
        if proc.wants_snapshot is not None and self.snapshots is not None:
            self.snapshots.request(symbol)
        if got:
            self.ever_synced.add(symbol)
            self._held += got
            log_event(log, logging.INFO, "book_synced", symbol=symbol, replayed=got - 1)
        return None

    def reset_symbols(self, symbols: tuple[str, ...] | list[str], reason: str) -> Awaitable[None] | None:
        """Discard these books (e.g. their connection dropped); publishes the resets."""
        wall = self.clock.wall_ns()
        if self._columns is not None:
            got = sum(self._columns.feed_reset(s, reason, wall) for s in symbols)
            self._resets_by_engine += got
            self._held += got
            return None
        events: list[Event] = []
        for s in symbols:
            events.extend(self.processor.reset(s, reason, wall))
        self._resets_by_engine += len(events)
        return self.pipeline.emit(events) if events else None

    # -- reporting ---------------------------------------------------------------------------------

    def drain_latency(self) -> None:
        """Move buffered latency samples into the histograms (off the per-message path, in bulk:
        one numpy pass each instead of ~3 µs of hdrh per sample)."""
        if self._lat_enqueue:
            samples, self._lat_enqueue = self._lat_enqueue, array("q")
            self.enqueue_latency.record_array(samples)
        if self._lat_event:
            samples, self._lat_event = self._lat_event, array("q")
            self.event_latency.record_array(samples)

    def book_totals(self) -> dict[str, int]:
        """Sync counters summed over every symbol (resyncs, gaps, duplicates, ...)."""
        out: dict[str, int] = {}
        proc = self.processor
        for sym in proc.book_symbols():
            for k, v in proc.book_stats(sym).items():
                out[k] = out.get(k, 0) + v
        return out

    def synced_symbols(self) -> list[str]:
        proc = self.processor
        return sorted(s for s in proc.book_symbols() if (st := proc.book_state(s)) is not None and st.synced)

    def summary(self) -> dict[str, Any]:
        s = self.stats
        synced = self.synced_symbols()
        return {
            "frames": s.frames,
            "depth": s.depth,
            "trades": s.trades,
            "tickers": s.tickers,
            "klines": s.klines,
            "control": s.control,
            "malformed": dict(s.malformed),
            "malformed_total": s.malformed_total,
            "unexpected_symbol": s.unexpected_symbol,
            "duplicates": s.duplicates,
            "snapshots_bad": s.snapshots_bad,
            "books": self.book_totals(),
            "synced": synced,
            "never_synced": sorted(set(self.processor.book_symbols()) - self.ever_synced - set(synced)),
        }
