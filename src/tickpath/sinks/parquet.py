"""Parquet sink: files partitioned Hive-style by venue, channel and date.

Layout under the directory given by ``parquet:DIR``::

    DIR/venue=futures/channel=l2/date=2026-11-22/part-<session>-<n>.parquet
    DIR/feed_sessions/part-<session>-<n>.parquet

``channel`` is the storage table name (``trades``, ``tickers``, ``l2``) and ``date`` is the UTC date
of the receipt time, so a partition only ever grows by whole files. Each file is written under a
temporary name and renamed, so a reader never sees half a file; a flush renames its files only once
all are written, and a flush that fails removes the ones it wrote, so its rows (kept buffered and
retried) are never on disk twice. A feed writes its ``feed_sessions``
row when it starts and again when it stops; files only grow, so both are there, and the one with
``ended_ns`` set is the final one.

When files are written: when ``batch_rows`` rows are buffered, when the oldest buffered row has
waited ``flush_s`` (default 1 s, on the injected clock, also with no further rows arriving), and at
close; ``parquet:DIR?flush_s=5&batch_rows=200000`` sets them (``flush_s=off``: rows and close only).
So a killed process loses at most about ``flush_s`` of accepted rows. The price is file count: a
flush writes one file per (venue, table, date, session) it holds, so 1 s means up to 86,400 small
files a day per table and process, each one row group; readers (DuckDB's ``read_parquet``, the
``--workers`` views) take them as they are, and a longer ``flush_s`` or an offline compaction
(``COPY (SELECT * FROM read_parquet('DIR/venue=*/channel=l2/date=D/*.parquet')) TO ...``) gives
fewer, larger ones. No compaction happens at close: replacing files a reader may be reading cannot
be made atomic, and a kill mid-way would leave rows twice.

Order on disk: a session's first row is written (and renamed into place) by :meth:`write_session`
itself, before any of that session's events can be, so a process killed at any moment never leaves
events whose session is unknown. Later rows (the stop row) go after the events of the same flush,
so a run killed before its last events were written has no stop row either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo
from tickpath.logs import log_event
from tickpath.sinks._threads import stop_timer, to_thread_to_the_end
from tickpath.sinks.base import Sink, TableBatch
from tickpath.sinks.duckdb import arrow_table, split_by_table
from tickpath.tables import SCHEMAS

log = logging.getLogger(__name__)
_NS_PER_DAY = 86_400 * 1_000_000_000
DEFAULT_FLUSH_S = 1.0  # at most about this much accepted data is lost with a killed process


def _date(receipt_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(receipt_ns // 1_000_000_000))


def _partitions(table: pa.Table) -> Iterator[tuple[tuple[str, int, str], pa.Table]]:
    """``table``'s rows per (venue, UTC day, session), each in the order given. One batch of a feed
    is nearly always one of each: then the table goes whole, with no copy."""
    keys = pa.table(
        {
            "venue": table.column("venue"),
            "day": pc.divide(table.column("receipt_ns"), _NS_PER_DAY),
            "session": table.column("session"),
        }
    )
    combos = keys.group_by(["venue", "day", "session"], use_threads=False).aggregate([]).to_pylist()
    if len(combos) == 1:
        c = combos[0]
        yield (c["venue"], c["day"], c["session"]), table
        return
    for c in combos:
        mask = pc.and_(
            pc.and_(pc.equal(keys.column("venue"), c["venue"]), pc.equal(keys.column("day"), c["day"])),
            pc.equal(keys.column("session"), c["session"]),
        )
        yield (c["venue"], c["day"], c["session"]), table.filter(mask)


class ParquetSink(Sink):
    """Writes events as partitioned Parquet files under ``root``: Python events, or the native core's
    Arrow tables as they are (``accepts_tables``: the columnar path, no Python object per event)."""

    name = "parquet"
    accepts_tables = True

    def __init__(
        self,
        root: str | Path,
        *,
        batch_rows: int = 50_000,
        compression: str = "zstd",
        flush_s: float | None = DEFAULT_FLUSH_S,
        clock: Clock = DEFAULT_CLOCK,
    ) -> None:
        super().__init__()
        if flush_s is not None and not 0 < flush_s < float("inf"):
            raise ConfigError(f"parquet flush_s={flush_s}: use a positive number of seconds (or off)")
        self.root = Path(root)
        self.batch_rows = max(1, batch_rows)
        self.compression = compression
        self.flush_s = flush_s
        self.flushes_itself = flush_s is not None  # the pipeline leaves the timing to this sink
        self.clock = clock
        self._buf: list[Event] = []
        self._tables: list[tuple[Mapping[str, pa.Table], int]] = []  # columnar batches, not yet written
        self._table_rows = 0
        self._oldest_ns: int | None = None  # monotonic time the oldest buffered row was accepted
        self._sessions: list[dict[str, Any]] = []
        self._durable: set[str] = set()  # sessions whose first row is on disk
        self._n = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self.files: list[Path] = []
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final) names of the flush being written

    @classmethod
    def from_target(cls, target: str, **options: Any) -> ParquetSink:
        """``DIR`` or ``DIR?flush_s=5&batch_rows=200000`` (``flush_s=off``: by row count and at close only).
        ``label=NAME`` names the sink in stats, logs and /metrics (a --workers share of a ``duckdb:``
        target is a Parquet sink that keeps the target's name)."""
        root, _, query = target.partition("?")
        label = None
        for key, values in parse_qs(query, keep_blank_values=True).items():
            value = values[-1].strip().lower()
            try:
                if key == "label":
                    label = value or None
                elif key == "flush_s":
                    options["flush_s"] = None if value in ("off", "none", "0") else float(value)
                elif key == "batch_rows":
                    options["batch_rows"] = int(value)
                else:
                    raise ConfigError(f"parquet:{target}: unknown option {key!r} (use flush_s, batch_rows, label)")
            except ValueError:
                raise ConfigError(f"parquet:{target}: {key}={values[-1]!r} is not a number") from None
        sink = cls(root, **options)
        if label is not None:
            sink.name = label
        return sink

    async def start(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create Parquet directory {self.root}: {exc.strerror}") from exc
        if self.flush_s is not None and self._timer is None:
            self._timer = asyncio.create_task(self._flush_on_time(), name="parquet-flush")

    async def write(self, batch: Sequence[Event]) -> None:
        self._buf.extend(batch)
        await self._accepted(len(batch))

    async def write_tables(self, batch: TableBatch) -> None:
        """Rows already in Arrow tables (the native core's columnar path): written as they are."""
        self._tables.append((batch.tables, batch.rows))
        self._table_rows += batch.rows
        await self._accepted(batch.rows)

    async def _accepted(self, rows: int) -> None:
        """Count ``rows`` just buffered; write once ``batch_rows`` are buffered or the oldest is due."""
        self.stats.accepted += rows
        if rows and self._oldest_ns is None:
            self._oldest_ns = self.clock.monotonic_ns()
        if self.buffered >= self.batch_rows or self._due():
            await self.flush()

    def _due(self) -> bool:
        """True once the oldest buffered row has waited ``flush_s``."""
        if self.flush_s is None or self._oldest_ns is None:
            return False
        return self.clock.monotonic_ns() - self._oldest_ns >= self.flush_s * 1e9

    async def _flush_on_time(self) -> None:
        """Write what has waited ``flush_s`` even when no more rows come (a quiet market, a stall)."""
        assert self.flush_s is not None
        period_ns = int(self.flush_s * 1e9)
        while True:
            oldest = self._oldest_ns
            await self.clock.sleep_until_ns((oldest if oldest is not None else self.clock.monotonic_ns()) + period_ns)
            if self._due():
                try:
                    await self.flush()
                except SinkError as exc:  # kept buffered: the next period (or close) tries again
                    log_event(log, logging.ERROR, "parquet_flush_failed", error=exc)

    async def close(self) -> None:
        """Write everything, also when the timer had died (reported after)."""
        died = await stop_timer(self._timer, self._lock) if self._timer is not None else None
        self._timer = None
        await self.flush()
        if died is not None:
            raise SinkError(f"Parquet flush timer for {self.root} had failed: {type(died).__name__}: {died}") from died

    @property
    def buffered(self) -> int:
        return len(self._buf) + self._table_rows

    async def write_session(self, session: SessionInfo) -> None:
        """Record one ``feed_sessions`` row: a session's first row is written now (before any of its
        events can be), later ones at the next flush, after the events accepted before them."""
        row = session.row()
        if session.session in self._durable:
            self._sessions.append(row)
            return
        async with self._lock:
            work, cancelled = await to_thread_to_the_end(self._landed, self._write_sessions, [row])
            exc = work.exception()
            if isinstance(exc, (OSError, pa.ArrowException)):
                self.stats.errors += 1
                raise SinkError(f"writing the session row under {self.root} failed: {exc}") from exc
            if exc is not None:
                raise exc
            self._durable.add(session.session)
            if cancelled:
                raise asyncio.CancelledError

    def _write_sessions(self, sessions: list[dict[str, Any]]) -> None:
        arrow = pa.Table.from_pylist(sessions, schema=SCHEMAS["feed_sessions"])
        self._write_file(self.root / "feed_sessions", str(sessions[0]["session"]), arrow)

    def _write_file(self, directory: Path, session: str, table: pa.Table) -> None:
        """Write ``table`` under a temporary name; :meth:`_landed` renames it with the rest of its flush."""
        directory.mkdir(parents=True, exist_ok=True)
        self._n += 1
        final = directory / f"part-{session}-{os.getpid()}-{self._n:06d}.parquet"
        tmp = final.with_suffix(".parquet.tmp")
        self._pending.append((tmp, final))
        pq.write_table(table, tmp, compression=self.compression)

    def _landed(self, write: Callable[..., None], *args: Any) -> None:
        """Run ``write(*args)`` (its files under temporary names), then rename them all into place.
        If any step fails, none of its files stays, so the retry writes each row once, not twice."""
        self._pending = []
        landed: list[Path] = []
        try:
            write(*args)
            for tmp, final in self._pending:
                os.replace(tmp, final)
                landed.append(final)
        except BaseException:
            self._undo([tmp for tmp, _ in self._pending] + landed)
            raise
        self.files.extend(landed)

    def _undo(self, paths: list[Path]) -> None:
        """Remove a failed flush's files; one that cannot be removed would be read twice after the retry."""
        stuck = []
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                stuck.append(str(path))
        if stuck:
            log_event(log, logging.ERROR, "parquet_undo_failed", files=stuck[:8], count=len(stuck))

    def _write_all(self, events: list[Event], sessions: list[dict[str, Any]]) -> None:
        parts: dict[tuple[str, str, int, str], list[Event]] = {}
        for table, evs in split_by_table(events).items():
            for e in evs:
                key = (e.venue, table, e.receipt_ns // _NS_PER_DAY, e.session)
                lst = parts.get(key)
                if lst is None:
                    parts[key] = lst = []
                lst.append(e)
        for (venue, table, day, session), evs in parts.items():
            self._write_part(venue, table, day, session, arrow_table(table, evs))
        if sessions:
            self._write_sessions(sessions)

    def _write_part(self, venue: str, table: str, day: int, session: str, rows: pa.Table) -> None:
        directory = self.root / f"venue={venue}" / f"channel={table}" / f"date={_date(day * _NS_PER_DAY)}"
        self._write_file(directory, session, rows)

    def _write_tables(self, batches: list[tuple[Mapping[str, pa.Table], int]]) -> None:
        by_table: dict[str, list[pa.Table]] = {}
        for tables, _ in batches:
            for name, t in tables.items():
                if t.num_rows:
                    by_table.setdefault(name, []).append(t)
        for name, chunks in by_table.items():
            for (venue, day, session), rows in _partitions(pa.concat_tables(chunks)):
                self._write_part(venue, name, day, session, rows)

    async def flush(self) -> None:
        async with self._lock:
            if not self._buf and not self._tables and not self._sessions:
                return
            events, self._buf = self._buf, []
            batches, self._tables = self._tables, []
            sessions, self._sessions = self._sessions, []
            oldest, self._oldest_ns = self._oldest_ns, None
            # Run to its end whatever cancels us: the thread writes files the counts must match.
            work, cancelled = await to_thread_to_the_end(self._landed, self._write_batches, batches, events, sessions)
            exc = work.exception()
            if exc is not None:
                self._buf[:0] = events
                self._tables[:0] = batches
                self._sessions[:0] = sessions
                if oldest is not None:  # retried one period from now, not at once (a full disk must not spin the loop)
                    self._oldest_ns = self.clock.monotonic_ns()
                self._write_failed(exc, cancelled)
            rows = sum(n for _, n in batches)
            self._table_rows -= rows
            self.stats.written += len(events) + rows
            if cancelled:
                raise asyncio.CancelledError

    def _write_failed(self, exc: BaseException, cancelled: bool) -> NoReturn:
        """Raise a failed write's error (its rows are back in the buffers), or the cancel, logging the error."""
        if not isinstance(exc, (OSError, pa.ArrowException)):
            raise exc  # a bug: not a sink failure
        self.stats.errors += 1
        error = SinkError(f"writing Parquet under {self.root} failed: {exc}")
        if cancelled:
            log_event(log, logging.ERROR, "parquet_flush_failed", error=error)
            raise asyncio.CancelledError
        raise error from exc

    def _write_batches(
        self, batches: list[tuple[Mapping[str, pa.Table], int]], events: list[Event], sessions: list[dict[str, Any]]
    ) -> None:
        self._write_tables(batches)  # before the events' files and the stop row written after them
        self._write_all(events, sessions)
