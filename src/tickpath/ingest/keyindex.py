"""Which event keys a DuckDB store already holds, as runs of ``seq`` per stream, in memory.

``ingest`` de-duplicates every commit on the event key ``(session, venue, symbol, seq)`` per table.
As a SQL anti-join against the table that cost more than the insert itself, and it grew with the
table: min-max statistics cannot skip row groups whose ``seq`` ranges span many symbols and
sessions, so every batch scanned most of what was stored. But the feed numbers each stream
contiguously, so what a table holds of one stream is almost always one run ``[first, last]``:
:class:`KeyIndex` keeps those runs per ``(session, venue, symbol)`` and tells a batch's new rows
from the stored ones with a few comparisons per stream, not a scan per batch.

The runs of a session are read from the table the first time a batch of that session arrives
(a gaps-and-islands query over that session's rows, once per run of ``ingest``), and extended by
:meth:`KeyIndex.add` after each commit. The index is only right while its store is the table's
only writer, which DuckDB's file lock guarantees across processes; within a process, one store per
file.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["KeyIndex", "Pending", "runs_of"]

Stream = tuple[str, str, str]  # (session, venue, symbol)
Runs = list[tuple[int, int]]  # sorted, disjoint, non-adjacent inclusive [first, last] ranges of seq

# Reads the stored runs of one session of one table: rows of (venue, symbol, first, last).
Loader = Callable[[str, str], list[tuple[str, str, int, int]]]


def runs_of(seqs: np.ndarray) -> Runs:
    """The maximal runs of consecutive values among ``seqs`` (any order, repeats allowed)."""
    if len(seqs) == 0:
        return []
    s = np.unique(seqs)
    breaks = np.flatnonzero(np.diff(s) != 1)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(s) - 1]))
    return [(int(s[a]), int(s[b])) for a, b in zip(starts, ends, strict=True)]


def _merge(a: Runs, b: Runs) -> Runs:
    out: Runs = []
    for lo, hi in sorted(a + b):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _overlaps(runs: Runs, lo: int, hi: int) -> bool:
    """Whether any run meets ``[lo, hi]``."""
    i = bisect.bisect_right(runs, (hi, 2**63)) - 1  # last run starting at or before hi
    return i >= 0 and runs[i][1] >= lo


class KeyIndex:
    """Stored ``seq`` runs per stream for each table, loaded per session on first sight."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._runs: dict[str, dict[Stream, Runs]] = {}
        self._loaded: dict[str, set[str]] = {}

    def _table(self, table: str, sessions: list[str]) -> dict[Stream, Runs]:
        runs = self._runs.setdefault(table, {})
        loaded = self._loaded.setdefault(table, set())
        for session in sessions:
            if session not in loaded:
                stored: dict[Stream, Runs] = {}
                for venue, symbol, lo, hi in self._loader(table, session):
                    stored.setdefault((session, venue, symbol), []).append((int(lo), int(hi)))
                for stream, r in stored.items():
                    runs[stream] = _merge(runs.get(stream, []), r)
                loaded.add(session)
        return runs

    def new_rows(self, table: str, batch: pa.Table) -> Pending:
        """The rows of ``batch`` whose key the table does not hold yet (order kept), to commit.

        Repeats inside ``batch`` are not looked at (the caller removes them first). After the rows
        are committed, :meth:`add` records them.
        """
        streams = _streams(batch)
        runs = self._table(table, sorted({s[0][0] for s in streams}))
        hit = [stream for stream, lo, hi, _ in streams if _overlaps(runs.get(stream, []), lo, hi)]
        if not hit:  # the common case: every stream continues past what is stored
            return Pending(table, batch, streams)
        seq = batch.column("seq").to_numpy()
        keep = np.ones(batch.num_rows, dtype=bool)
        for stream in hit:
            rows = np.flatnonzero(_stream_mask(batch, stream))
            r = np.array(runs[stream], dtype=np.int64)
            s = seq[rows]
            i = np.searchsorted(r[:, 0], s, side="right") - 1
            stored = (i >= 0) & (s <= r[np.maximum(i, 0), 1])
            keep[rows[stored]] = False
        rows_left = batch.filter(pa.array(keep))
        return Pending(table, rows_left, _streams(rows_left) if rows_left.num_rows else [])

    def add(self, pending: Pending) -> None:
        """Record the keys of ``pending.rows``, now committed."""
        runs = self._table(pending.table, sorted({s[0][0] for s in pending.streams}))
        seq: np.ndarray | None = None
        for stream, lo, hi, n in pending.streams:
            if hi - lo + 1 == n:  # one contiguous run (the rows are unique per key)
                new: Runs = [(lo, hi)]
            else:
                if seq is None:
                    seq = pending.rows.column("seq").to_numpy()
                new = runs_of(seq[_stream_mask(pending.rows, stream)])
            runs[stream] = _merge(runs.get(stream, []), new)


@dataclass
class Pending:
    """Rows of one table about to be committed, with their streams' ``(stream, first, last, count)``."""

    table: str
    rows: pa.Table
    streams: list[tuple[Stream, int, int, int]]


def _streams(batch: pa.Table) -> list[tuple[Stream, int, int, int]]:
    """Each stream of ``batch`` with its lowest and highest ``seq`` and its row count (one group-by)."""
    g = batch.group_by(["session", "venue", "symbol"]).aggregate([("seq", "min"), ("seq", "max"), ("seq", "count")])
    cols = [g.column(n).to_pylist() for n in ("session", "venue", "symbol", "seq_min", "seq_max", "seq_count")]
    return [((s, v, y), lo, hi, n) for s, v, y, lo, hi, n in zip(*cols, strict=True)]


def _stream_mask(batch: pa.Table, stream: Stream) -> np.ndarray:
    m = pc.and_(
        pc.and_(pc.equal(batch.column("session"), stream[0]), pc.equal(batch.column("venue"), stream[1])),
        pc.equal(batch.column("symbol"), stream[2]),
    )
    return m.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]
