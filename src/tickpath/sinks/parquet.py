"""Parquet sink: files partitioned Hive-style by venue, channel and date.

Layout under the directory given by ``parquet:DIR``::

    DIR/venue=futures/channel=l2/date=2026-11-22/part-<session>-<n>.parquet
    DIR/feed_sessions/part-<session>-<n>.parquet

``channel`` is the storage table name (``trades``, ``tickers``, ``l2``) and ``date`` is the UTC date
of the receipt time, so a partition only ever grows by whole files. Each file is written under a
temporary name and renamed, so a reader never sees half a file. A feed writes its ``feed_sessions``
row when it starts and again when it stops; files only grow, so both are there, and the one with
``ended_ns`` set is the final one.

Order on disk: a session's first row is written (and renamed into place) by :meth:`write_session`
itself, before any of that session's events can be, so a process killed at any moment never leaves
events whose session is unknown. Later rows (the stop row) go after the events of the same flush,
so a run killed before its last events were written has no stop row either.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tickpath.errors import SinkError
from tickpath.events import Event, SessionInfo
from tickpath.sinks.base import Sink
from tickpath.sinks.duckdb import arrow_table, split_by_table
from tickpath.tables import SCHEMAS

_NS_PER_DAY = 86_400 * 1_000_000_000


def _date(receipt_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(receipt_ns // 1_000_000_000))


class ParquetSink(Sink):
    """Writes events as partitioned Parquet files under ``root``."""

    name = "parquet"

    def __init__(self, root: str | Path, *, batch_rows: int = 50_000, compression: str = "zstd") -> None:
        super().__init__()
        self.root = Path(root)
        self.batch_rows = max(1, batch_rows)
        self.compression = compression
        self._buf: list[Event] = []
        self._sessions: list[dict[str, Any]] = []
        self._durable: set[str] = set()  # sessions whose first row is on disk
        self._n = 0
        self._lock = asyncio.Lock()
        self.files: list[Path] = []

    async def start(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create Parquet directory {self.root}: {exc.strerror}") from exc

    async def write(self, batch: Sequence[Event]) -> None:
        self.stats.accepted += len(batch)
        self._buf.extend(batch)
        if len(self._buf) >= self.batch_rows:
            await self.flush()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def write_session(self, session: SessionInfo) -> None:
        """Record one ``feed_sessions`` row: a session's first row is written now (before any of its
        events can be), later ones at the next flush, after the events accepted before them."""
        row = session.row()
        if session.session in self._durable:
            self._sessions.append(row)
            return
        async with self._lock:
            try:
                await asyncio.to_thread(self._write_sessions, [row])
            except (OSError, pa.ArrowException) as exc:
                self.stats.errors += 1
                raise SinkError(f"writing the session row under {self.root} failed: {exc}") from exc
            self._durable.add(session.session)

    def _write_sessions(self, sessions: list[dict[str, Any]]) -> None:
        arrow = pa.Table.from_pylist(sessions, schema=SCHEMAS["feed_sessions"])
        self._write_file(self.root / "feed_sessions", str(sessions[0]["session"]), arrow)

    def _write_file(self, directory: Path, session: str, table: pa.Table) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._n += 1
        final = directory / f"part-{session}-{os.getpid()}-{self._n:06d}.parquet"
        tmp = final.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp, compression=self.compression)
        os.replace(tmp, final)
        self.files.append(final)

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
            directory = self.root / f"venue={venue}" / f"channel={table}" / f"date={_date(day * _NS_PER_DAY)}"
            self._write_file(directory, session, arrow_table(table, evs))
        if sessions:
            self._write_sessions(sessions)

    async def flush(self) -> None:
        async with self._lock:
            if not self._buf and not self._sessions:
                return
            events, self._buf = self._buf, []
            sessions, self._sessions = self._sessions, []
            try:
                await asyncio.to_thread(self._write_all, events, sessions)
            except (OSError, pa.ArrowException) as exc:
                self.stats.errors += 1
                self._buf[:0] = events
                self._sessions[:0] = sessions
                raise SinkError(f"writing Parquet under {self.root} failed: {exc}") from exc
            self.stats.written += len(events)
