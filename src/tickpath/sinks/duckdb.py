"""DuckDB sink: the default, so ``tickpath feed`` works with no server at all.

Events are inserted through Arrow, one table per channel (``trades``, ``tickers``, ``l2``) plus
``feed_sessions``, with the layout from :mod:`tickpath.tables`. What the sink receives (the native
core's Arrow tables, or events converted every ``convert_rows``) is held per storage table without a
copy (:class:`~tickpath.sinks.coalesce.TableBuffer`) and committed in one transaction per insert:

- once a table holds ``batch_rows`` rows (default 122,880), its rows in whole row groups (30,720
  rows, the file's row group size): DuckDB then writes them straight to the table's blocks rather
  than through the WAL and again at the checkpoint (about 1.5x less CPU per row); the rest waits;
- once the oldest row held has waited ``commit_s`` (default 1 s, on the injected clock, also with no
  further rows arriving), or ``batch_bytes`` are held, or at :meth:`flush` / :meth:`close`: all of it.

A row counts as written only once its transaction committed, and a failed insert keeps every row held
(the timer retries it one ``commit_s`` later, a later commit or close too), so a crash loses at most
the last ``commit_s`` of accepted rows and nothing committed. Events that Arrow cannot take would
fail every retry: their conversion batch is dropped, counted and logged once. Inserts run in a
worker thread so the event loop keeps reading while DuckDB writes; ``write`` awaits a due insert,
which is how a slow disk applies back-pressure to the feed.
The file is ATTACHed with its own row group size (``row_group_rows``), so while the sink has it open
no other connection of the same process can open it (``row_group_rows=None``: a plain connect).

:func:`arrow_tables` (events to one Arrow table per storage table, built column-wise by
:func:`tickpath.tables.events_to_arrow`, the builder ``ingest`` uses too) is shared with the Parquet sink.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs

import duckdb
import pyarrow as pa

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo
from tickpath.logs import log_event
from tickpath.sinks._threads import stop_timer, to_thread_to_the_end
from tickpath.sinks.base import Sink, TableBatch
from tickpath.sinks.coalesce import DUCKDB_ROW_GROUP_ROWS, ROW_GROUP_ROWS, TableBuffer, Take
from tickpath.tables import CHANNEL_TABLE, EVENT_TABLES, duckdb_ddl, events_to_arrow, merge_sessions

DEFAULT_PATH = "./data/ticks.duckdb"
log = logging.getLogger(__name__)


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
    to it. When the tables are committed: the module docstring.
    """

    name = "duckdb"
    accepts_tables = True

    def __init__(
        self,
        path: str | Path = DEFAULT_PATH,
        *,
        batch_rows: int = 4 * ROW_GROUP_ROWS,
        row_group_rows: int | None = ROW_GROUP_ROWS,
        batch_bytes: int = 64 << 20,
        commit_s: float | None = 1.0,
        threads: int | None = 1,
        convert_rows: int = 4096,
        checkpoint_s: float | None = 10.0,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        clock: Clock = DEFAULT_CLOCK,
    ) -> None:
        super().__init__()
        if commit_s is not None and not 0 < commit_s < float("inf"):
            raise ConfigError(f"duckdb commit_s={commit_s}: use a positive number of seconds (or None)")
        self.path = Path(path)
        # DuckDB's buffer pool may take 80 % of RAM by default, and a writer keeps every block it
        # wrote: the feed's RSS grew with its store (+179 MB for a 179 MB file, measured) and was
        # never flat over a long run. Bounded, RSS stays flat once the pool is full (64 MB: flat at
        # 272 MB over the same 179 MB, ~10 % more insert CPU); None leaves DuckDB's default.
        self.memory_limit = memory_limit
        # Large inserts cost DuckDB less per row, whole row groups least (module docstring). The
        # bytes bound keeps rows with many levels (snapshots) from holding hundreds of MB.
        self.batch_rows = max(1, batch_rows)
        self.batch_bytes = max(1, batch_bytes)
        # The file's row group size: None opens it with DuckDB's (122,880), as a plain connect does,
        # so that other connections of this process can share it (an ATTACHed file cannot be).
        self.row_group_rows = row_group_rows
        self.commit_s = commit_s
        self.flushes_itself = commit_s is not None  # the pipeline leaves the timing to this sink
        self.clock = clock
        self.convert_rows = max(1, convert_rows)
        # One DuckDB thread by default: appends gain little from parallelism, and extra threads would
        # compete with the feed's event loop for cores (measured ~25 % less CPU per row with 1).
        self.threads = threads
        # DuckDB lets no other process open a file while this one writes it, so ``tickpath dq`` reads
        # a copy of the main file, which holds what the last checkpoint wrote (the rest is in the WAL
        # until DuckDB's own checkpoint at 16 MB of it). Checkpointing every ``checkpoint_s`` after an
        # insert keeps that copy at most this far behind; None leaves it to DuckDB.
        self.checkpoint_s = checkpoint_s
        self._checkpointed_ns: int | None = None  # the injected clock's monotonic time of the last checkpoint
        self._buf: list[Event] = []  # accepted, not yet converted
        self._buf_ns = 0  # when the oldest of them was accepted
        self._converting_ns: int | None = None  # the same for the events a conversion has under way
        self._held = TableBuffer()  # converted or received as tables, not yet committed
        self._sessions: list[dict[str, Any]] = []
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._retry_ns: int | None = None  # after a failed insert: not due again before this

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
        return len(self._buf) + self._held.rows

    async def start(self) -> None:
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = self._connect()
            if self.threads is not None:
                self._con.execute(f"SET threads = {int(self.threads)}")
            if self.memory_limit is not None:
                self._con.execute("SET memory_limit = ?", [self.memory_limit])
            for t in (*EVENT_TABLES, "feed_sessions"):
                self._con.execute(duckdb_ddl(t))
            self._checkpoint()  # the tables exist in the main file from the start
            self._checkpointed_ns = self.clock.monotonic_ns()
        except (OSError, duckdb.Error) as exc:
            raise SinkError(f"cannot open DuckDB file {self.path}: {exc}") from exc
        if self.commit_s is not None and self._timer is None:
            self._timer = asyncio.create_task(self._commit_on_time(), name="duckdb-commit")

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self.row_group_rows is None:
            return duckdb.connect(str(self.path))
        # Only an ATTACHed file's row group size can be chosen (coalesce.py says why it is).
        con = duckdb.connect()
        quoted = str(self.path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS store (ROW_GROUP_SIZE {int(self.row_group_rows)})")
        con.execute("USE store")
        return con

    async def write(self, batch: Sequence[Event]) -> None:
        self.stats.accepted += len(batch)
        if batch and not self._buf:
            self._buf_ns = self.clock.monotonic_ns()
        self._buf.extend(batch)
        if len(self._buf) >= self.convert_rows:
            async with self._lock:
                await self._convert()
        await self._commit_due()

    async def write_tables(self, batch: TableBatch) -> None:
        """Events already in Arrow tables (the native core's columnar path): held as they are."""
        self.stats.accepted += batch.rows
        self._held.add(batch.tables, self.clock.monotonic_ns())
        await self._commit_due()

    async def write_session(self, session: SessionInfo) -> None:
        """Record one ``feed_sessions`` row (written with the next commit)."""
        self._sessions.append(session.row())

    async def _convert(self) -> None:
        """Move ``_buf`` into Arrow tables, in a worker thread. Events that cannot be converted are
        dropped, counted and logged: bad data would fail every retry, and must not keep the rows
        held from being committed (nor close from committing them)."""
        if not self._buf:
            return
        events, self._buf, since = self._buf, [], self._buf_ns
        self._converting_ns = since  # in neither _buf nor _held meanwhile: the deadline still counts
        work, cancelled = await to_thread_to_the_end(arrow_tables, events)  # they are no longer in _buf
        self._converting_ns = None
        exc = work.exception()
        if exc is None:
            self._held.add(work.result(), since)
        else:
            self.stats.dropped += len(events)
            self.stats.errors += 1
            error = f"{type(exc).__name__}: {exc}"
            log_event(
                log, logging.ERROR, "duckdb_convert_failed", path=str(self.path), dropped=len(events), error=error
            )
        if cancelled:
            raise asyncio.CancelledError

    def _oldest_ns(self) -> int | None:
        """When the oldest row held (converted or not) was accepted."""
        times = [t for t in (self._held.oldest_ns(), self._converting_ns) if t is not None]
        if self._buf:
            times.append(self._buf_ns)
        return min(times, default=None)

    def _due(self) -> bool:
        """True once the oldest row held has waited ``commit_s``."""
        oldest = self._oldest_ns()
        if self.commit_s is None or oldest is None:
            return False
        now = self.clock.monotonic_ns()
        if self._retry_ns is not None and now < self._retry_ns:
            return False
        return now - oldest >= self.commit_s * 1e9

    async def _commit_due(self) -> None:
        """Commit what is due: everything (deadline, bytes), else the whole row groups of full tables."""
        if self._held.nbytes >= self.batch_bytes or self._due():
            await self.flush()
        elif self._held.largest_table_rows() >= self.batch_rows:
            await self._commit(min(self.batch_rows, self.row_group_rows or DUCKDB_ROW_GROUP_ROWS))

    async def _commit_on_time(self) -> None:
        """Commit what has waited ``commit_s`` even when no more rows come (a quiet market, a stall)."""
        assert self.commit_s is not None
        period_ns = int(self.commit_s * 1e9)
        while True:
            oldest = self._oldest_ns()
            deadline = (oldest if oldest is not None else self.clock.monotonic_ns()) + period_ns
            await self.clock.sleep_until_ns(max(deadline, self._retry_ns or 0))
            if self._due():
                try:
                    await self.flush()
                except SinkError as exc:  # kept held: the next period (or close) tries again
                    log_event(log, logging.ERROR, "duckdb_commit_failed", error=exc)

    def _insert(self, taken: Take, sessions: list[dict[str, Any]]) -> None:
        con = self._con
        assert con is not None
        con.execute("BEGIN")
        try:
            for table, arrow in taken.tables.items():
                # One INSERT per table: the held chunks concatenated without a copy, scanned in turn.
                con.register("_batch", arrow)
                con.execute(f"INSERT INTO {table} SELECT * FROM _batch")
                con.unregister("_batch")
            if sessions:  # one row per (session, venue), the latest
                merge_sessions(con, sessions)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _checkpoint(self) -> None:
        if self._con is not None and self.checkpoint_s is not None and str(self.path) != ":memory:":
            self._con.execute("CHECKPOINT")

    async def _checkpoint_due(self) -> None:
        """Checkpoint if ``checkpoint_s`` has passed (under the lock, after a commit was accounted). A
        failure is counted and logged, not raised: the rows are committed (in the WAL), only the
        main file a reader copies lags; the next try is ``checkpoint_s`` later."""
        now = self.clock.monotonic_ns()
        if self.checkpoint_s is None or (
            self._checkpointed_ns is not None and now - self._checkpointed_ns < self.checkpoint_s * 1e9
        ):
            return
        work, cancelled = await to_thread_to_the_end(self._checkpoint)
        self._checkpointed_ns = self.clock.monotonic_ns()  # a failed one is tried again checkpoint_s later
        exc = work.exception()
        if exc is not None:
            self.stats.errors += 1
            log_event(log, logging.ERROR, "duckdb_checkpoint_failed", path=str(self.path), error=exc)
        if cancelled:
            raise asyncio.CancelledError

    async def flush(self) -> None:
        """Commit everything accepted so far."""
        await self._commit(None)

    async def _commit(self, multiple: int | None) -> None:
        """Insert and commit everything held (``multiple`` None) or each table's whole ``multiple``s."""
        async with self._lock:
            if self._con is None:
                return
            if multiple is None:
                await self._convert()
            taken = self._held.take(multiple)
            if not taken.rows and not self._sessions:
                return
            sessions, self._sessions = self._sessions, []
            work, cancelled = await to_thread_to_the_end(self._insert, taken, sessions)
            exc = work.exception()
            if exc is not None:
                self._insert_failed(exc, sessions, cancelled)
            self._retry_ns = None
            self._held.drop(taken)
            self.stats.written += taken.rows
            if cancelled:
                raise asyncio.CancelledError
            await self._checkpoint_due()

    def _insert_failed(self, exc: BaseException, sessions: list[dict[str, Any]], cancelled: bool) -> NoReturn:
        """The rows stay held and the sessions kept: a later commit (or close) retries, the timer's
        one period from now, not at once (a full disk must not spin the loop). Raises."""
        self._sessions[:0] = sessions
        if self.commit_s is not None:
            self._retry_ns = self.clock.monotonic_ns() + int(self.commit_s * 1e9)
        if not isinstance(exc, (duckdb.Error, pa.ArrowException)):
            raise exc  # a bug: not a sink failure
        self.stats.errors += 1
        error = SinkError(f"DuckDB insert into {self.path} failed: {exc}")
        if cancelled:  # the caller's cancel wins, the failure is still told
            log_event(log, logging.ERROR, "duckdb_commit_failed", error=error)
            raise asyncio.CancelledError
        raise error from exc

    async def close(self) -> None:
        """Commit everything and close the file, also when the timer had died (reported after)."""
        died = await stop_timer(self._timer, self._lock) if self._timer is not None else None
        self._timer = None
        try:
            await self.flush()
        finally:
            if self._con is not None:
                self._con.close()
                self._con = None
        if died is not None:
            raise SinkError(f"DuckDB commit timer for {self.path} had failed: {type(died).__name__}: {died}") from died
