"""Runs check queries on the embedded DuckDB store (the default), read-only.

DuckDB lets no other process open a file while one writes it, so a store that a running
``tickpath feed`` holds cannot be opened as it is. Then the engine checks a snapshot instead: a copy
of the store's main file, which holds what the writer's last checkpoint wrote (the DuckDB sink
checkpoints every 10 s; newer rows are still in its write-ahead log and are not seen). The copy is
kept only if the file's headers were the same before and after copying it, so it is one
checkpoint's state, not a mix of two; it lives beside the store and is deleted on :meth:`close`.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tickpath.dq.sql import Dialect
from tickpath.errors import ConfigError
from tickpath.tables import EVENT_TABLES, SCHEMAS

# DuckDB's main header and its two database headers (one per checkpoint, alternating): a checkpoint
# is complete when the newer database header is written, so equal headers around a copy mean no
# checkpoint completed meanwhile.
_HEADER_BYTES = 3 * 4096
_SNAPSHOT_ATTEMPTS = 5
_REQUIRED = ("trades", "tickers", "l2", "feed_sessions")


@dataclass(frozen=True)
class Snapshot:
    """What dq read instead of a store another process is writing."""

    holder: str  # the writer, as DuckDB's lock error names it
    newest_receipt_ns: int | None  # the newest row in the copy (the live edge of what dq sees)
    size_bytes: int


class DuckDBEngine:
    """A read-only connection to a DuckDB file (or an existing connection, for tests and benches)."""

    dialect: Dialect = "duckdb"
    dataset: str | None = None

    def __init__(self, path: str | Path | None = None, *, connection: duckdb.DuckDBPyConnection | None = None) -> None:
        self.snapshot: Snapshot | None = None
        self._copy_dir: Path | None = None
        # Opened read-only by path without a lock conflict: no feed or ingest holds the file, so none
        # of its sessions can still be writing (a session without a close record was killed).
        self.writer_gone = False
        if connection is not None:
            self._con = connection
            self.name = "duckdb (connection)"
        else:
            if path is None:
                raise ConfigError("DuckDB store needs a path (--db)")
            p = Path(path)
            if not p.exists():
                raise ConfigError(f"no DuckDB store at {p}; run `tickpath feed` first or pass --db PATH")
            self.name = f"duckdb {p}"
            try:
                self._con = duckdb.connect(str(p), read_only=True)
                self.writer_gone = True
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise ConfigError(f"cannot open DuckDB store {p}: {exc}") from exc
                self._open_snapshot(p, str(exc))
            except duckdb.Error as exc:
                raise ConfigError(f"cannot open DuckDB store {p}: {exc}") from exc
        try:
            self._check_tables()
        except ConfigError:
            self.close()
            raise

    def _open_snapshot(self, p: Path, lock_error: str) -> None:
        holder = lock_error.split("Conflicting lock is held in", 1)[-1].split(". See also", 1)[0].strip()
        try:
            self._copy_dir = Path(tempfile.mkdtemp(prefix=".tickpath-dq-", dir=p.parent))
        except OSError:
            self._copy_dir = Path(tempfile.mkdtemp(prefix="tickpath-dq-"))
        copy = self._copy_dir / p.name
        try:
            for _ in range(_SNAPSHOT_ATTEMPTS):
                before = _headers(p)
                shutil.copyfile(p, copy)
                if _headers(p) == before:
                    break
            else:
                raise ConfigError(
                    f"{p} is being written by {holder} and checkpointed faster than it can be "
                    f"copied ({_SNAPSHOT_ATTEMPTS} attempts); run dq when the writer stops"
                )
            self._con = duckdb.connect(str(copy), read_only=True)
        except BaseException as exc:
            self.close()  # no copy is left behind, whatever went wrong
            if isinstance(exc, OSError):
                raise ConfigError(
                    f"{p} is being written by {holder}, and dq could not copy it to read: {exc.strerror or exc}"
                ) from exc
            if isinstance(exc, duckdb.Error):
                raise ConfigError(f"{p} is being written by {holder}, and its copy cannot be read: {exc}") from exc
            raise
        self.name = f"duckdb {p} (snapshot: the store is being written by {holder})"
        self.snapshot = Snapshot(holder, self._newest_receipt(), copy.stat().st_size)

    def _newest_receipt(self) -> int | None:
        have = self._tables()
        parts = [f"SELECT MAX(receipt_ns) AS t FROM {t}" for t in EVENT_TABLES if t in have]
        if not parts:
            return None
        row = self._con.execute(f"SELECT MAX(t) FROM ({' UNION ALL '.join(parts)})").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _tables(self) -> set[str]:
        return {
            r[0]
            for r in self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        }

    def _check_tables(self) -> None:
        # the low-rate channels' tables (candles, ...) are younger than some stores: not required
        have = self._tables()
        missing = [t for t in SCHEMAS if t in _REQUIRED and t not in have]
        if missing and self.snapshot is not None:
            raise ConfigError(
                f"{self.name}: its last checkpoint has no table {', '.join(missing)} yet "
                "(a feed checkpoints every 10 s); try again shortly"
            )
        if missing:
            raise ConfigError(f"{self.name} has no table {', '.join(missing)}: not a tickpath store")

    def query(self, sql: str) -> list[dict[str, Any]]:
        try:
            cur = self._con.execute(sql)
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            raise ConfigError(f"DuckDB query failed: {exc}") from exc

    def close(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()
        if self._copy_dir is not None:
            shutil.rmtree(self._copy_dir, ignore_errors=True)
            self._copy_dir = None


def _headers(p: Path) -> bytes:
    with contextlib.suppress(OSError), p.open("rb") as f:
        return f.read(_HEADER_BYTES)
    return b""
