"""Where ``tickpath ingest`` commits: a DuckDB file or a Parquet directory, idempotently.

A batch is committed with de-duplication on the event key: per table, rows whose
``(session, venue, symbol, seq)`` already exist are skipped, and so are repeats inside the batch
(the channel is implied by the table). That makes a re-delivered batch (crash between commit and
ack, a consumer restart, a publish the bus stored twice) a no-op, so ``ingest`` can acknowledge only
after :meth:`Store.commit` returns and still write every event exactly once.

- :class:`DuckDBStore`: one transaction per batch over all tables, then ``COMMIT``. The stored keys
  are looked up in a :class:`~tickpath.ingest.keyindex.KeyIndex` (runs of ``seq`` per stream, in
  memory) instead of an anti-join against the table, which cost more than the insert and grew
  with the table.
- :class:`ParquetStore`: one file per table and batch, ``<dir>/<table>/part-<n>.parquet``, written
  to a temporary name and renamed into place (the rename is the commit). The existence check reads
  the table's committed files, with the batch's ``seq`` range pushed down to Parquet statistics.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickpath.errors import ConfigError, SinkError
from tickpath.events import SessionInfo
from tickpath.ingest.keyindex import KeyIndex, Pending
from tickpath.sinks.duckdb import DEFAULT_MEMORY_LIMIT
from tickpath.tables import EVENT_TABLES, duckdb_ddl, latest_sessions, merge_sessions

__all__ = ["DuckDBStore", "ParquetStore", "Store", "open_store", "parse_target"]

_KEY = ("session", "venue", "symbol", "seq")


def _dedup_select(source: str, existing: str | None, lo: int, hi: int, unique: bool = False) -> str:
    """SELECT of the batch rows that are new: first of each key in the batch, absent from ``existing``.

    ``unique`` says the caller already removed repeats inside the batch (it skips a window function
    that costs about a third of the commit).
    """
    sql = (
        f"SELECT * FROM {source}"
        if unique
        else (
            f"SELECT * FROM {source} QUALIFY row_number() OVER "
            f"(PARTITION BY session, venue, symbol, seq ORDER BY publish_ns NULLS LAST) = 1"
        )
    )
    if existing is None:
        return sql
    # The seq range lets DuckDB skip row groups / Parquet row groups by their min-max statistics.
    return (
        f"SELECT b.* FROM ({sql}) b WHERE NOT EXISTS (SELECT 1 FROM {existing} t "
        f"WHERE t.seq BETWEEN {lo} AND {hi} AND t.seq = b.seq AND t.symbol = b.symbol "
        f"AND t.venue = b.venue AND t.session = b.session)"
    )


def _missing(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, outermost first (what opening it creates)."""
    out: list[Path] = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out[::-1]


def _seq_range(batch: pa.Table) -> tuple[int, int]:
    seq = batch.column("seq")
    lo, hi = pc.min(seq).as_py(), pc.max(seq).as_py()
    return int(lo), int(hi)


class Store(ABC):
    """A committing, de-duplicating destination for batches of rows (one Arrow table per table)."""

    target: str
    commits: int = 0  # successful commits (instances count their own)
    _created: list[Path]  # files and directories that opening this store created, outermost first

    @abstractmethod
    def commit(
        self, batches: dict[str, pa.Table], *, unique: bool = False, sessions: Sequence[SessionInfo] = ()
    ) -> dict[str, int]:
        """Write new rows of every table durably; returns rows inserted per table.

        ``unique=True`` promises no key repeats inside ``batches`` (only the committed data is checked).
        ``sessions`` are feed runs' ``feed_sessions`` rows: the latest per (session, venue) is kept.
        """

    @abstractmethod
    def count(self, table: str) -> int:
        """Rows committed in ``table`` (for summaries and tests)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def discard(self) -> None:
        """After :meth:`close`: remove what opening the store created, if nothing was ever committed.

        A run that fails before its first commit (the source went away, a bad option) leaves no
        empty database or directory behind. Directories are only removed when empty (``rmdir``),
        so nothing that was there before, or that something else wrote meanwhile, is touched.
        """
        if self.commits:
            return
        for path in reversed(getattr(self, "_created", [])):
            try:
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink(missing_ok=True)
                    Path(f"{path}.wal").unlink(missing_ok=True)
            except OSError:
                return  # not empty or not ours to remove: keep it and its parents


class DuckDBStore(Store):
    """Commits into a DuckDB file, one transaction per batch."""

    def __init__(self, path: str | Path, *, threads: int | None = 1) -> None:
        self.path = Path(path)
        self.target = f"duckdb:{self.path}"
        self._created = _missing(self.path) if str(path) != ":memory:" else []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path))
            # One DuckDB thread: a 10,000-row insert gains no wall time from more, and each extra
            # thread burned CPU that ingest's event loop and nats-server need (2.9 instead of 4.7
            # CPU-us per row committed on two cores, measured).
            if threads is not None:
                self._con.execute(f"SET threads = {int(threads)}")
            # Bounded like the feed's DuckDB sink: a writer otherwise keeps every block it wrote,
            # so a long ingest's RSS grew with its store (docs/schema.md).
            self._con.execute("SET memory_limit = ?", [DEFAULT_MEMORY_LIMIT])
            for t in (*EVENT_TABLES, "feed_sessions"):
                self._con.execute(duckdb_ddl(t))
        except (OSError, duckdb.Error) as exc:
            if hasattr(self, "_con"):
                self._con.close()
            self.discard()
            raise SinkError(f"cannot open DuckDB file {self.path}: {exc}") from exc
        self._index = KeyIndex(self._stored_runs)

    def _stored_runs(self, table: str, session: str) -> list[tuple[str, str, int, int]]:
        """Runs of consecutive ``seq`` per (venue, symbol) that ``table`` holds for ``session``."""
        # Gaps and islands: within a run, seq minus its rank is constant.
        return self._con.execute(
            f"SELECT venue, symbol, min(seq), max(seq) FROM (SELECT venue, symbol, seq, "
            f"seq - row_number() OVER (PARTITION BY venue, symbol ORDER BY seq) AS island "
            f"FROM {table} WHERE session = ?) GROUP BY venue, symbol, island",
            [session],
        ).fetchall()

    def commit(
        self, batches: dict[str, pa.Table], *, unique: bool = False, sessions: Sequence[SessionInfo] = ()
    ) -> dict[str, int]:
        con = self._con
        inserted: dict[str, int] = {}
        pending: list[Pending] = []
        try:
            for table, arrow in batches.items():
                if arrow.num_rows == 0:
                    continue
                if not unique:  # first of each key inside the batch, as the SQL defines it
                    con.register("_ingest_batch", arrow)
                    arrow = con.sql(_dedup_select("_ingest_batch", None, 0, 0)).to_arrow_table().cast(arrow.schema)
                    con.unregister("_ingest_batch")
                pending.append(self._index.new_rows(table, arrow))
            con.execute("BEGIN")
            try:
                for p in pending:
                    if p.rows.num_rows:
                        con.register("_ingest_batch", p.rows)
                        con.execute(f"INSERT INTO {p.table} SELECT * FROM _ingest_batch")
                        con.unregister("_ingest_batch")
                    inserted[p.table] = p.rows.num_rows
                if sessions:
                    merge_sessions(con, [i.row() for i in sessions])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except duckdb.Error as exc:
            raise SinkError(f"DuckDB commit into {self.path} failed: {exc}") from exc
        for p in pending:  # only what is durably committed
            self._index.add(p)
        self.commits += 1
        return inserted

    def count(self, table: str) -> int:
        row = self._con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._con.close()


class ParquetStore(Store):
    """Commits one Parquet file per table and batch into ``<dir>/<table>/``, renamed into place."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.target = f"parquet:{self.directory}"
        self._created = _missing(self.directory) + [
            self.directory / t for t in EVENT_TABLES if not (self.directory / t).exists()
        ]
        try:
            for t in EVENT_TABLES:
                (self.directory / t).mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(":memory:")
        except (OSError, duckdb.Error) as exc:
            self.discard()
            raise SinkError(f"cannot use Parquet directory {self.directory}: {exc}") from exc
        self._seq = time.time_ns()

    def _glob(self, table: str) -> str | None:
        folder = self.directory / table
        if not any(folder.glob("part-*.parquet")):
            return None
        return f"read_parquet('{folder.as_posix()}/part-*.parquet')"

    def commit(
        self, batches: dict[str, pa.Table], *, unique: bool = False, sessions: Sequence[SessionInfo] = ()
    ) -> dict[str, int]:
        inserted: dict[str, int] = {}
        con = self._con
        try:
            if sessions:  # files only grow: every row is kept, the one with ended_ns is final
                self._write(self.directory / "feed_sessions", latest_sessions([i.row() for i in sessions]))
            for table, arrow in batches.items():
                if arrow.num_rows == 0:
                    continue
                lo, hi = _seq_range(arrow)
                con.register("_ingest_batch", arrow)
                new = con.sql(_dedup_select("_ingest_batch", self._glob(table), lo, hi, unique)).to_arrow_table()
                con.unregister("_ingest_batch")
                inserted[table] = new.num_rows
                if new.num_rows == 0:
                    continue
                self._write(self.directory / table, new.cast(arrow.schema))
        except (OSError, duckdb.Error, pa.ArrowException) as exc:
            raise SinkError(f"Parquet commit into {self.directory} failed: {exc}") from exc
        self.commits += 1
        return inserted

    def _write(self, folder: Path, table: pa.Table) -> None:
        """One new ``part-<n>.parquet`` in ``folder``, written under a temporary name and renamed."""
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        final = folder / f"part-{self._seq}.parquet"
        tmp = final.with_name(f".{final.name}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)

    def count(self, table: str) -> int:
        glob = self._glob(table)
        if glob is None:
            return 0
        row = self._con.execute(f"SELECT count(*) FROM {glob}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._con.close()


def parse_target(target: str) -> tuple[str, str]:
    """``(kind, path)`` of ``duckdb:PATH`` or ``parquet:DIR`` (a bare path ending in .duckdb means
    DuckDB), or ConfigError; opens nothing, so a bad target is refused before connecting."""
    kind, sep, path = target.partition(":")
    if not sep:
        kind, path = ("duckdb", target) if target.endswith(".duckdb") else ("", target)
    if not path:
        raise ConfigError(f"no path in ingest target {target!r}: use duckdb:PATH or parquet:DIR")
    if kind not in ("duckdb", "parquet"):
        raise ConfigError(f"unknown ingest target {target!r}: use duckdb:PATH or parquet:DIR")
    return kind, path


def open_store(target: str) -> Store:
    """Open ``duckdb:PATH`` or ``parquet:DIR`` (see :func:`parse_target`)."""
    kind, path = parse_target(target)
    return DuckDBStore(path) if kind == "duckdb" else ParquetStore(path)
