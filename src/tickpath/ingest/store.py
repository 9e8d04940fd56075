"""Where ``tickpath ingest`` commits: a DuckDB file or a Parquet directory, idempotently.

A batch is committed with de-duplication on the event key: per table, rows whose
``(session, venue, symbol, seq)`` already exist are skipped, and so are repeats inside the batch
(the channel is implied by the table). That makes a re-delivered batch (crash between commit and
ack, a consumer restart, a publish the bus stored twice) a no-op, so ``ingest`` can acknowledge only
after :meth:`Store.commit` returns and still write every event exactly once.

- :class:`DuckDBStore`: one transaction per batch over all tables, then ``COMMIT``.
- :class:`ParquetStore`: one file per table and batch, ``<dir>/<table>/part-<n>.parquet``, written
  to a temporary name and renamed into place (the rename is the commit). The existence check reads
  the table's committed files, with the batch's ``seq`` range pushed down to Parquet statistics.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickpath.errors import ConfigError, SinkError
from tickpath.tables import EVENT_TABLES, duckdb_ddl

__all__ = ["DuckDBStore", "ParquetStore", "Store", "open_store"]

_KEY = ("session", "venue", "symbol", "seq")


def _dedup_select(source: str, existing: str | None, lo: int, hi: int, unique: bool = False) -> str:
    """SELECT of the batch rows that are new: first of each key in the batch, absent from ``existing``.

    ``unique`` says the caller already removed repeats inside the batch (it skips a window function
    that costs about a third of the commit).
    """
    sql = f"SELECT * FROM {source}" if unique else (
        f"SELECT * FROM {source} QUALIFY row_number() OVER "
        f"(PARTITION BY session, venue, symbol, seq ORDER BY publish_ns NULLS LAST) = 1")
    if existing is None:
        return sql
    # The seq range lets DuckDB skip row groups / Parquet row groups by their min-max statistics.
    return (f"SELECT b.* FROM ({sql}) b WHERE NOT EXISTS (SELECT 1 FROM {existing} t "
            f"WHERE t.seq BETWEEN {lo} AND {hi} AND t.seq = b.seq AND t.symbol = b.symbol "
            f"AND t.venue = b.venue AND t.session = b.session)")


def _seq_range(batch: pa.Table) -> tuple[int, int]:
    seq = batch.column("seq")
    lo, hi = pc.min(seq).as_py(), pc.max(seq).as_py()
    return int(lo), int(hi)


class Store(ABC):
    """A committing, de-duplicating destination for batches of rows (one Arrow table per table)."""

    target: str

    @abstractmethod
    def commit(self, batches: dict[str, pa.Table], *, unique: bool = False) -> dict[str, int]:
        """Write new rows of every table durably; returns rows inserted per table.

        ``unique=True`` promises no key repeats inside ``batches`` (only the committed data is checked).
        """

    @abstractmethod
    def count(self, table: str) -> int:
        """Rows committed in ``table`` (for summaries and tests)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""


class DuckDBStore(Store):
    """Commits into a DuckDB file, one transaction per batch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.target = f"duckdb:{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path))
            for t in (*EVENT_TABLES, "feed_sessions"):
                self._con.execute(duckdb_ddl(t))
        except (OSError, duckdb.Error) as exc:
            raise SinkError(f"cannot open DuckDB file {self.path}: {exc}") from exc

    def commit(self, batches: dict[str, pa.Table], *, unique: bool = False) -> dict[str, int]:
        con = self._con
        inserted: dict[str, int] = {}
        try:
            con.execute("BEGIN")
            try:
                for table, arrow in batches.items():
                    if arrow.num_rows == 0:
                        continue
                    lo, hi = _seq_range(arrow)
                    con.register("_ingest_batch", arrow)
                    row = con.execute(
                        f"INSERT INTO {table} {_dedup_select('_ingest_batch', table, lo, hi, unique)}").fetchone()
                    con.unregister("_ingest_batch")
                    inserted[table] = int(row[0]) if row else 0
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except duckdb.Error as exc:
            raise SinkError(f"DuckDB commit into {self.path} failed: {exc}") from exc
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
        try:
            for t in EVENT_TABLES:
                (self.directory / t).mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(":memory:")
        except (OSError, duckdb.Error) as exc:
            raise SinkError(f"cannot use Parquet directory {self.directory}: {exc}") from exc
        self._seq = time.time_ns()

    def _glob(self, table: str) -> str | None:
        folder = self.directory / table
        if not any(folder.glob("part-*.parquet")):
            return None
        return f"read_parquet('{folder.as_posix()}/part-*.parquet')"

    def commit(self, batches: dict[str, pa.Table], *, unique: bool = False) -> dict[str, int]:
        inserted: dict[str, int] = {}
        con = self._con
        try:
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
                self._seq += 1
                final = self.directory / table / f"part-{self._seq}.parquet"
                tmp = final.with_name(f".{final.name}.tmp")
                pq.write_table(new.cast(arrow.schema), tmp, compression="zstd")
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, final)
        except (OSError, duckdb.Error, pa.ArrowException) as exc:
            raise SinkError(f"Parquet commit into {self.directory} failed: {exc}") from exc
        return inserted

    def count(self, table: str) -> int:
        glob = self._glob(table)
        if glob is None:
            return 0
        row = self._con.execute(f"SELECT count(*) FROM {glob}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._con.close()


def open_store(target: str) -> Store:
    """``duckdb:PATH`` or ``parquet:DIR`` (a bare path ending in .duckdb means DuckDB)."""
    kind, sep, path = target.partition(":")
    if not sep:
        kind, path = ("duckdb", target) if target.endswith(".duckdb") else ("", target)
    if not path:
        raise ConfigError(f"no path in ingest target {target!r}: use duckdb:PATH or parquet:DIR")
    if kind == "duckdb":
        return DuckDBStore(path)
    if kind == "parquet":
        return ParquetStore(path)
    raise ConfigError(f"unknown ingest target {target!r}: use duckdb:PATH or parquet:DIR")
