"""From normalized events to every sink, through bounded queues.

The feed appends events to one current batch (synchronous, cheap: no await per message). A batch is
handed off when it is full or ``flush_interval_s`` old, as the same list to every sink's bounded queue
(``queue_batches`` batches). Each sink has its own writer task. When a sink's queue is full the hand-off
awaits, the feed's readers stop reading (``emit`` returns an awaitable), TCP pushes back on the venue,
and memory stays bounded: a slow sink slows the feed, it never grows memory and never silently loses
data. Waits are counted (``backpressure_waits``, ``backpressure_ns``).

A sink whose ``write`` raises is counted (``errors``) and its batch counted as dropped for that sink
only, with a log line, so one broken sink does not stop the others; the exit summary reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import TickpathError
from tickpath.events import Event, SessionInfo
from tickpath.logs import log_event
from tickpath.sinks.base import Sink, SinkStats, TableBatch

log = logging.getLogger(__name__)

_STOP: list[Event] = []  # sentinel batch (identity-compared)
Batch = list[Event] | TableBatch
_CHANNEL_OF_TABLE = {"l2": "l2", "trades": "trades", "tickers": "ticker"}


@dataclass
class PipelineStats:
    emitted: int = 0
    batches: int = 0
    backpressure_waits: int = 0
    backpressure_ns: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: {"trades": 0, "ticker": 0, "l2": 0})


class _SinkWorker:
    def __init__(self, sink: Sink, queue_batches: int, flush_every_s: float, clock: Clock) -> None:
        self.sink = sink
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=queue_batches)
        self.flush_every_ns = int(flush_every_s * 1e9)
        self.clock = clock
        self.task: asyncio.Task[None] | None = None
        self.failed_batches = 0

    async def run(self) -> None:
        sink, queue, clock = self.sink, self.queue, self.clock
        last_flush = clock.monotonic_ns()
        while True:
            batch = await queue.get()
            if batch is _STOP:
                return
            accepted = sink.stats.accepted
            try:
                if isinstance(batch, TableBatch):
                    await sink.write_tables(batch)
                else:
                    await sink.write(batch)
                now = clock.monotonic_ns()
                if now - last_flush >= self.flush_every_ns and not sink.flushes_itself:
                    last_flush = now
                    await sink.flush()
            except Exception as exc:  # a bug in a sink must not end this loop: the feed would hang
                self.failed_batches += 1
                sink.stats.errors += 1
                if sink.stats.accepted == accepted:  # it raised before taking the batch: count it, as lost
                    sink.stats.accepted += batch.rows if isinstance(batch, TableBatch) else len(batch)
                # write() counted the batch as accepted; whatever it could not keep is dropped, loudly.
                lost = max(0, sink.stats.accepted - sink.stats.written - sink.stats.dropped - sink.buffered)
                sink.stats.dropped += lost
                error = exc if isinstance(exc, TickpathError) else f"{type(exc).__name__}: {exc}"
                log_event(log, logging.ERROR, "sink_write_failed", sink=sink.name, error=error, dropped=lost)


class Pipeline:
    """Batches events and feeds them to every sink with back-pressure."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        batch_size: int = 2000,
        flush_interval_s: float = 0.1,
        queue_batches: int = 32,
        sink_flush_every_s: float = 1.0,
        clock: Clock = DEFAULT_CLOCK,
    ) -> None:
        self.sinks = list(sinks)
        self.batch_size = max(1, batch_size)
        self.flush_interval_s = flush_interval_s
        self.clock = clock
        self.stats = PipelineStats()
        self._workers = [_SinkWorker(s, queue_batches, sink_flush_every_s, clock) for s in self.sinks]
        self._batch: list[Event] = []
        self._ticker: asyncio.Task[None] | None = None
        self._handoff_lock = asyncio.Lock()
        self._pending: asyncio.Future[None] | None = None
        self._source: Callable[[], TableBatch | None] | None = None
        self.closed = False

    @property
    def columnar(self) -> bool:
        """Every sink stores Arrow tables as they are: the feed may hand over TableBatches."""
        return bool(self.sinks) and all(s.accepts_tables for s in self.sinks)

    def set_source(self, take: Callable[[], TableBatch | None]) -> None:
        """Where columnar events wait (the native core): taken at every tick and at drain, so a
        partial batch waits no longer than ``flush_interval_s``."""
        self._source = take

    async def start(self) -> None:
        for s in self.sinks:
            await s.start()
        for w in self._workers:
            w.task = asyncio.create_task(w.run(), name=f"sink-{w.sink.name}")
        self._ticker = asyncio.create_task(self._tick(), name="pipeline-ticker")

    def queue_depths(self) -> dict[str, int]:
        """Batches waiting per sink (plus the current open batch under ``"batch"``)."""
        out = {f"{i}:{w.sink.name}": w.queue.qsize() for i, w in enumerate(self._workers)}
        out["batch"] = len(self._batch)
        return out

    def emit(self, events: list[Event]) -> asyncio.Future[None] | None:
        """Add events; returns an awaitable when the caller must wait for room (back-pressure)."""
        if not events:
            return None
        by = self.stats.by_channel
        for e in events:
            ch = e.channel
            by[ch] = by.get(ch, 0) + 1  # the low-rate channels appear only once subscribed
        self.stats.emitted += len(events)
        self._batch.extend(events)
        if len(self._batch) >= self.batch_size:
            return self._handoff_now()
        return None

    def emit_tables(self, batch: TableBatch) -> asyncio.Future[None] | None:
        """Hand over events in columns (a whole batch); returns an awaitable under back-pressure."""
        if not batch.rows:
            return None
        by = self.stats.by_channel
        for table, arrow in batch.tables.items():
            by[_CHANNEL_OF_TABLE[table]] += arrow.num_rows
        self.stats.emitted += batch.rows
        return self._handoff(batch)

    def _pull(self) -> asyncio.Future[None] | None:
        batch = self._source() if self._source is not None else None
        return self.emit_tables(batch) if batch is not None else None

    def _handoff_now(self) -> asyncio.Future[None] | None:
        batch, self._batch = self._batch, []
        return self._handoff(batch)

    def _handoff(self, batch: Batch) -> asyncio.Future[None] | None:
        self.stats.batches += 1
        waiting = self._pending is not None and not self._pending.done()
        if not waiting and not any(w.queue.full() for w in self._workers):
            for w in self._workers:
                w.queue.put_nowait(batch)
            return None
        # FIFO: asyncio.Lock wakes waiters in order, so batches keep their order across waits.
        self._pending = asyncio.ensure_future(self._handoff_wait(batch))
        # Shielded: a reader cancelled while waiting (shutdown) must not cancel the hand-off itself,
        # or an accepted batch would be lost; close() awaits it.
        return asyncio.shield(self._pending)

    async def _handoff_wait(self, batch: Batch) -> None:
        start = self.clock.monotonic_ns()
        self.stats.backpressure_waits += 1
        async with self._handoff_lock:
            for w in self._workers:
                await w.queue.put(batch)
        self.stats.backpressure_ns += self.clock.monotonic_ns() - start

    async def _tick(self) -> None:
        period = int(self.flush_interval_s * 1e9)
        while True:
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + period)
            fut = self._pull()
            if fut is not None:
                await fut
            if self._batch:
                fut = self._handoff_now()
                if fut is not None:
                    await fut

    async def drain(self) -> None:
        """Hand off the open batch (awaiting room)."""
        fut = self._pull()
        if fut is not None:
            await fut
        if self._batch:
            fut = self._handoff_now()
            if fut is not None:
                await fut
        if self._pending is not None:
            await self._pending

    async def close(self) -> None:
        """Hand off everything, let every sink write it, then flush and close every sink."""
        if self.closed:
            return
        self.closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._pending is not None:
            await self._pending
        await self.drain()
        async with self._handoff_lock:
            for w in self._workers:
                await w.queue.put(_STOP)
        for w in self._workers:
            if w.task is not None:
                await w.task
        errors: list[str] = []
        for s in self.sinks:
            try:
                await s.close()
            except TickpathError as exc:
                errors.append(f"{s.name}: {exc}")
                lost = max(0, s.stats.accepted - s.stats.written - s.stats.dropped)
                s.stats.dropped += lost
                log_event(log, logging.ERROR, "sink_close_failed", sink=s.name, error=exc, dropped=lost)
        if errors:
            log_event(log, logging.ERROR, "sinks_failed", errors="; ".join(errors))

    async def write_session(self, session: SessionInfo) -> None:
        """Give the run's ``feed_sessions`` row to every sink (those without tables ignore it)."""
        for s in self.sinks:
            await s.write_session(session)

    def undelivered(self) -> list[str]:
        """Each sink's word on what it kept undelivered (after close), e.g. events left in a spool."""
        return [f"{s.name}: {note}" for s in self.sinks if (note := s.undelivered())]

    def sink_stats(self) -> dict[str, SinkStats]:
        """A copy of each sink's stats, by name (``name#i`` when two sinks share a name)."""
        names = [s.name for s in self.sinks]
        return {
            (s.name if names.count(s.name) == 1 else f"{s.name}#{i}"): s.stats.copy() for i, s in enumerate(self.sinks)
        }
