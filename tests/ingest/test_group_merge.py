"""``tickpath ingest --merge``: a group's member files become one store with each event key once."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.ingest.support import make_events
from tickpath.cli.main import main
from tickpath.ingest.store import DuckDBStore
from tickpath.sinks.duckdb import arrow_tables


def _member(path: Path, events: list) -> None:  # type: ignore[type-arg]
    store = DuckDBStore(path)
    store.commit(arrow_tables(events))
    store.close()


def test_merge_keeps_each_event_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = make_events(300)
    a, b, out = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "all.duckdb"
    _member(a, events[:200])
    _member(b, events[150:])  # 50 events committed by both (a lost ack redelivered to the other member)
    code = main(["ingest", "--merge", str(a), "--merge", str(b), "--to", f"duckdb:{out}", "--json"])
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert sum(res["duplicates"].values()) == 50
    con = duckdb.connect(str(out), read_only=True)
    tables = ("trades", "tickers", "l2")
    have = [
        t
        for t in tables
        if con.execute(f"SELECT count(*) FROM information_schema.tables WHERE table_name='{t}'").fetchone()[0]
    ]
    keys = [r for t in have for r in con.execute(f"SELECT session, venue, symbol, seq, '{t}' FROM {t}").fetchall()]
    con.close()
    assert len(keys) == len(set(keys)) == len(events)


def test_merge_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--merge", str(tmp_path / "nope.duckdb"), "--to", f"duckdb:{tmp_path / 'o.duckdb'}"]) == 2
    assert main(["ingest", "--to", f"duckdb:{tmp_path / 'o.duckdb'}"]) == 2
    err = capsys.readouterr().err
    assert "no such ingest output" in err and "--from" in err and "Traceback" not in err
