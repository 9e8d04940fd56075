"""DuckDB sink: the default, so ``tickpath feed`` works with no server at all.

Events are buffered per batch and inserted through Arrow, one table per channel (``trades``,
``tickers``, ``l2``) plus ``feed_sessions``, with the layout from :mod:`tickpath.tables`. Inserts run
in a worker thread so the event loop keeps reading while DuckDB writes; ``write`` awaits the insert
when the buffer is full, which is how a slow disk applies back-pressure to the feed.

:func:`arrow_tables` (events to one Arrow table per storage table, built column-wise by
:func:`tickpath.tables.events_to_arrow`, the builder ``ingest`` uses too) is shared with the Parquet sink.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import duckdb
import pyarrow as pa

from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo
from tickpath.sinks.base import Sink, TableBatch
from tickpath.tables import CHANNEL_TABLE, EVENT_TABLES, duckdb_ddl, events_to_arrow, merge_sessions

DEFAULT_PATH = "./data/ticks.duckdb"


def split_by_table(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events grouped by their storage table, order kept within each table."""
    out: dict[str, list[Event]] = {}
    for e in events:
        table = CHANNEL_TABLE[e.channel]
        lst = out.get(table)
        if lst is None:
            out[table] = lst = []
        lst.append(e)
    return out


def arrow_table(
    table: str, events: Sequence[Event], *, publish_ns: int | None = None, ingest_ns: int | None = None
) -> pa.Table:
    """Events of one storage table as an Arrow table with the canonical schema."""
    return events_to_arrow(table, events, publish_ns=publish_ns, ingest_ns=ingest_ns)


def arrow_tables(events: Sequence[Event]) -> dict[str, pa.Table]:
    """Events as one Arrow table per storage table (``trades``, ``tickers``, ``l2``)."""
    return {t: arrow_table(t, evs) for t, evs in split_by_table(events).items()}


_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|B)$", re.IGNORECASE)
DEFAULT_MEMORY_LIMIT = "128MB"  # DuckDB's buffer pool for a feed's writer (duckdb:PATH?memory_limit=1GB)


class DuckDBSink(Sink):
    """Writes events into a DuckDB file (``duckdb:PATH``; default ``./data/ticks.duckdb``).

    Accepted events are turned into Arrow tables every ``convert_rows`` events (in a worker thread)
    and the events themselves released: each buffered event is several GC-tracked objects, and the
    cyclic garbage collector walks every one of them again at each older-generation collection
    (it took about a third of the process's CPU in ``bench_feed`` (b)); Arrow buffers are invisible
    to it. The tables are inserted every ``batch_rows`` rows or at :meth:`flush`.
    """

    name = "duckdb"
    accepts_tables = True

    def __init__(
        self,
        path: str | Path = DEFAULT_PATH,
        *,
        batch_rows: int = 131_072,
        threads: int | None = 1,
        convert_rows: int = 4096,
        checkpoint_s: float | None = 10.0,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        # DuckDB's buffer pool may take 80 % of RAM by default, and a writer keeps every block it
        # wrote: the feed's RSS grew with its store (+179 MB for a 179 MB file, measured) and was
        # never flat over a long run. Bounded, RSS stays flat once the pool is full (64 MB: flat at
        # 272 MB over the same 179 MB, ~10 % more insert CPU); None leaves DuckDB's default.
        self.memory_limit = memory_limit
        # Large inserts cost DuckDB less per row (one INSERT of 100,000 l2 rows took ~30 % less CPU
        # per row than five of 20,000, measured); a batch of at least one row group (122,880 rows)
        # can also be written straight to the table's blocks rather than through the WAL. The
        # pipeline's periodic flush (1 s) still bounds how long a row waits at lower rates.
        self.batch_rows = max(1, batch_rows)
        self.convert_rows = max(1, convert_rows)
        # One DuckDB thread by default: appends gain little from parallelism, and extra threads would
        # compete with the feed's event loop for cores (measured ~25 % less CPU per row with 1).
        self.threads = threads
        # DuckDB lets no other process open a file while this one writes it, so ``tickpath dq`` reads
        # a copy of the main file, which holds what the last checkpoint wrote (the rest is in the WAL
        # until DuckDB's own checkpoint at 16 MB of it). Checkpointing every ``checkpoint_s`` after an
        # insert keeps that copy at most this far behind; None leaves it to DuckDB.
        self.checkpoint_s = checkpoint_s
        self._checkpointed = 0.0
        self._buf: list[Event] = []  # accepted, not yet converted
        self._tables: list[tuple[dict[str, pa.Table], int]] = []  # converted (tables, rows), not inserted
        self._table_rows = 0
        self._sessions: list[dict[str, Any]] = []
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_target(cls, target: str, **options: Any) -> DuckDBSink:
        """``PATH`` or ``PATH?memory_limit=512MB`` (``off``: DuckDB's own default, 80 % of RAM)."""
        path, _, query = target.partition("?")
        for key, values in parse_qs(query, keep_blank_values=True).items():
            if key != "memory_limit":
                raise ConfigError(f"duckdb:{path}: unknown option {key!r} (use memory_limit, e.g. 512MB, or off)")
            value = values[-1].strip()
            if value.lower() in ("off", "none", ""):
                options["memory_limit"] = None
            elif _SIZE_RE.match(value):
                options["memory_limit"] = value
            else:
                raise ConfigError(f"duckdb:{path}: memory_limit={value!r} is not a size (e.g. 128MB, 2GB) or off")
        return cls(path, **options)

    @property
    def buffered(self) -> int:
        """Accepted events not yet written (converted or not)."""
        return len(self._buf) + self._table_rows

    async def start(self) -> None:
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path))
            if self.threads is not None:
                self._con.execute(f"SET threads = {int(self.threads)}")
            if self.memory_limit is not None:
                self._con.execute("SET memory_limit = ?", [self.memory_limit])
            for t in (*EVENT_TABLES, "feed_sessions"):
                self._con.execute(duckdb_ddl(t))
            self._checkpoint()  # the tables exist in the main file from the start
        except (OSError, duckdb.Error) as exc:
            raise SinkError(f"cannot open DuckDB file {self.path}: {exc}") from exc

    async def write(self, batch: Sequence[Event]) -> None:
        self.stats.accepted += len(batch)
        self._buf.extend(batch)
        if len(self._buf) >= self.convert_rows:
            async with self._lock:
                await self._convert(threaded=True)
        if self._table_rows >= self.batch_rows:
            await self.flush()

    async def write_tables(self, batch: TableBatch) -> None:
        """Events already in Arrow tables (the native core's columnar path): inserted as they are."""
        self.stats.accepted += batch.rows
        self._tables.append((dict(batch.tables), batch.rows))
        self._table_rows += batch.rows
        if self._table_rows >= self.batch_rows:
            await self.flush()

    async def write_session(self, session: SessionInfo) -> None:
        """Record one ``feed_sessions`` row (written at the next flush)."""
        self._sessions.append(session.row())

    async def _convert(self, *, threaded: bool) -> None:
        """Move ``_buf`` into Arrow tables; on failure the events stay buffered (nothing is lost)."""
        if not self._buf:
            return
        events, self._buf = self._buf, []
        try:
            tables = await asyncio.to_thread(arrow_tables, events) if threaded else arrow_tables(events)
        except pa.ArrowException as exc:
            self._buf[:0] = events  # ahead of anything accepted meanwhile
            self.stats.errors += 1
            raise SinkError(f"DuckDB sink cannot convert events for {self.path}: {exc}") from exc
        self._tables.append((tables, len(events)))
        self._table_rows += len(events)

    def _insert(self, parts: list[tuple[dict[str, pa.Table], int]], sessions: list[dict[str, Any]]) -> None:
        con = self._con
        assert con is not None
        by_table: dict[str, list[pa.Table]] = {}
        for tables, _ in parts:
            for table, arrow in tables.items():
                by_table.setdefault(table, []).append(arrow)
        con.execute("BEGIN")
        try:
            for table, chunks in by_table.items():
                # One INSERT per table: zero-copy concatenation, DuckDB scans the chunks in turn.
                con.register("_batch", pa.concat_tables(chunks) if len(chunks) > 1 else chunks[0])
                con.execute(f"INSERT INTO {table} SELECT * FROM _batch")
                con.unregister("_batch")
            if sessions:  # one row per (session, venue), the latest
                merge_sessions(con, sessions)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if self.checkpoint_s is not None and time.monotonic() - self._checkpointed >= self.checkpoint_s:
            self._checkpoint()

    def _checkpoint(self) -> None:
        if self._con is not None and self.checkpoint_s is not None and str(self.path) != ":memory:":
            self._con.execute("CHECKPOINT")
            self._checkpointed = time.monotonic()

    async def flush(self) -> None:
        async with self._lock:
            if self._con is None or (not self._buf and not self._tables and not self._sessions):
                return
            await self._convert(threaded=True)
            parts, self._tables = self._tables, []
            sessions, self._sessions = self._sessions, []
            rows = sum(n for _, n in parts)
            try:
                await asyncio.to_thread(self._insert, parts, sessions)
            except (duckdb.Error, pa.ArrowException) as exc:
                self.stats.errors += 1
                # Keep what was accepted: put it back so a later flush (or close) can retry it.
                self._tables[:0] = parts
                self._sessions[:0] = sessions
                raise SinkError(f"DuckDB insert into {self.path} failed: {exc}") from exc
            self._table_rows -= rows
            self.stats.written += rows

    def flush_sync(self) -> None:
        """Flush on the calling thread (benchmarks measure CPU without the thread hop)."""
        if self._buf:
            events, self._buf = self._buf, []
            self._tables.append((arrow_tables(events), len(events)))
            self._table_rows += len(events)
        parts, self._tables = self._tables, []
        sessions, self._sessions = self._sessions, []
        self._insert(parts, sessions)
        rows = sum(n for _, n in parts)
        self._table_rows -= rows
        self.stats.written += rows

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            if self._con is not None:
                self._con.close()
                self._con = None
