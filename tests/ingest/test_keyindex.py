"""The in-memory key index of the DuckDB store agrees with a SQL anti-join on every batch."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.ingest.support import make_events
from tickpath.ingest.keyindex import runs_of
from tickpath.ingest.store import DuckDBStore
from tickpath.sinks.duckdb import arrow_tables


def test_runs_of_finds_maximal_runs_in_any_order_with_repeats() -> None:
    """Unsorted seqs with repeats and gaps give the sorted maximal runs."""
    assert runs_of(np.array([7, 3, 4, 4, 5, 10, 9, 1], dtype=np.int64)) == [(1, 1), (3, 5), (7, 7), (9, 10)]
    assert runs_of(np.array([], dtype=np.int64)) == []


def _keys(db: Path) -> list[tuple[str, str, str, str, int]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(
            con.execute(
                "SELECT 'trades', session, venue, symbol, seq FROM trades UNION ALL "
                "SELECT 'tickers', session, venue, symbol, seq FROM tickers UNION ALL "
                "SELECT 'l2', session, venue, symbol, seq FROM l2"
            ).fetchall()
        )
    finally:
        con.close()


@pytest.mark.parametrize("seed", range(4))
def test_random_overlapping_batches_store_each_key_once(tmp_path: Path, seed: int) -> None:
    """Random slices of two sessions' events, with gaps, overlaps and reopens: each key lands exactly once."""
    rng = random.Random(seed)
    events = make_events(600, session="a") + make_events(300, session="b", start_seq=50)
    db = tmp_path / "t.duckdb"
    store = DuckDBStore(db)
    expected: set[tuple[str, str, str, str, int]] = set()
    for step in range(25):
        lo = rng.randrange(len(events))
        chunk = events[lo : lo + rng.randrange(1, 120)]
        chunk = [e for e in chunk if rng.random() > 0.2]  # gaps inside a batch
        if not chunk:
            continue
        unique = rng.random() < 0.5
        if not unique:
            chunk = chunk + rng.sample(chunk, min(5, len(chunk)))  # repeats inside the batch
        before = len(expected)
        for e in chunk:
            expected.add(({"ticker": "tickers"}.get(e.channel, e.channel), e.session, e.venue, e.symbol, e.seq))
        inserted = store.commit(arrow_tables(chunk), unique=unique)
        assert sum(inserted.values()) == len(expected) - before
        if step % 8 == 7:  # a restart: the index is rebuilt from the table
            store.close()
            store = DuckDBStore(db)
    store.close()
    assert _keys(db) == sorted(expected)


def test_rows_stored_by_another_writer_before_open_are_skipped(tmp_path: Path) -> None:
    """Keys already in the file with holes (written before this store opened) are found by the loaded runs."""
    events = make_events(90)
    db = tmp_path / "t.duckdb"
    first = DuckDBStore(db)
    first.commit(arrow_tables(events[::2]))  # every other event: runs with holes per stream
    first.close()
    store = DuckDBStore(db)
    inserted = store.commit(arrow_tables(events), unique=True)
    assert sum(inserted.values()) == 45
    assert sum(store.commit(arrow_tables(events), unique=True).values()) == 0
    store.close()
    assert len(_keys(db)) == 90


def test_failed_commit_records_nothing(tmp_path: Path) -> None:
    """A batch whose insert fails leaves the index untouched, so its retry inserts every row."""
    events = make_events(30)
    store = DuckDBStore(tmp_path / "t.duckdb")
    good = arrow_tables(events)
    bad = dict(good)
    bad["trades"] = good["trades"].drop_columns(["price"])  # DuckDB rejects the column count
    with pytest.raises(Exception, match="DuckDB commit"):
        store.commit(bad, unique=True)
    assert sum(store.commit(good, unique=True).values()) == 30
