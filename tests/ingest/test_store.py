"""Ingest stores: commits are idempotent, de-duplicating on the event key, in DuckDB and Parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.ingest.support import make_events
from tickpath.errors import ConfigError
from tickpath.ingest.store import DuckDBStore, ParquetStore, Store, open_store
from tickpath.sinks.duckdb import arrow_tables


def _batches(events: list) -> dict[str, pa.Table]:  # type: ignore[type-arg]
    return arrow_tables(events)


@pytest.fixture(params=["duckdb", "parquet"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "duckdb":
        return DuckDBStore(tmp_path / "t.duckdb")
    return ParquetStore(tmp_path / "pq")


def test_commit_inserts_every_row_once(store: Store) -> None:
    """A fresh batch lands completely, split into its tables."""
    events = make_events(90)
    inserted = store.commit(_batches(events))
    assert inserted == {"trades": 30, "tickers": 30, "l2": 30}
    assert sum(store.count(t) for t in ("trades", "tickers", "l2")) == 90


def test_recommitting_a_batch_is_a_no_op(store: Store) -> None:
    """A re-delivered batch (crash between commit and ack) inserts nothing."""
    events = make_events(60)
    store.commit(_batches(events))
    assert sum(store.commit(_batches(events)).values()) == 0
    assert store.count("trades") == sum(e.channel == "trades" for e in events)


def test_overlapping_batches_insert_only_new_keys(store: Store) -> None:
    """A batch half old, half new inserts the new half; repeats inside one batch count once."""
    events = make_events(120)
    store.commit(_batches(events[:60]))
    again = events[30:120] + events[100:120]
    assert sum(store.commit(_batches(again)).values()) == 60
    assert sum(store.count(t) for t in ("trades", "tickers", "l2")) == 120


def test_same_seq_in_another_session_is_a_different_event(store: Store) -> None:
    """The key includes the session: two feed runs both starting at seq 1 are both kept."""
    store.commit(_batches(make_events(30, session="a")))
    assert sum(store.commit(_batches(make_events(30, session="b"))).values()) == 30


def test_store_survives_reopen(tmp_path: Path) -> None:
    """De-duplication holds across process restarts (it reads what is committed on disk)."""
    events = make_events(30)
    s1 = DuckDBStore(tmp_path / "t.duckdb")
    s1.commit(_batches(events))
    s1.close()
    s2 = DuckDBStore(tmp_path / "t.duckdb")
    assert sum(s2.commit(_batches(events)).values()) == 0


@pytest.mark.parametrize(
    "target, kind", [("duckdb:x.duckdb", DuckDBStore), ("parquet:out", ParquetStore), ("plain.duckdb", DuckDBStore)]
)
def test_open_store_parses_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, kind: type) -> None:
    """duckdb:PATH and parquet:DIR select the store."""
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_store(target), kind)


@pytest.mark.parametrize("target", ["bigquery:x", "duckdb:", "somewhere"])
def test_open_store_rejects_unknown_targets(target: str) -> None:
    """Anything else is a ConfigError naming the accepted forms."""
    with pytest.raises(ConfigError, match="duckdb:PATH"):
        open_store(target)
