"""A subscribed stream with no message in the window (issue #18.2): its freshness row spans the
session as freshness judges it (start to close record, to the last row of a session known to be
over, or to the window's end for one that may still run), never a whole window around a dead feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from tests.dq.market import KILLED_AT_S, T0_MS, WINDOW, build_events, session_row, write_store
from tickpath.dq.checks import CheckResult
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, run_dq
from tickpath.events import BookDelta, BookReset, BookSnapshot

CUT_NS = (T0_MS + int(KILLED_AT_S * 1000)) * 1_000_000
STARTED_NS = (T0_MS - 1000) * 1_000_000


def _store_without_l2(path: Path, *, closed: bool) -> dict[str, int]:
    """Trades and tickers up to 40 s and no depth row at all (the feed died, or was stopped, before
    its first snapshot); the newest receipt per venue."""
    events = [e for e in build_events(70.0) if e.receipt_ns < CUT_NS]
    events = [e for e in events if not isinstance(e, BookSnapshot | BookDelta | BookReset)]
    rows = session_row()["rows"]
    if not closed:
        rows = [{**r, "ended_ns": None} for r in rows]
    con = duckdb.connect(str(path))
    write_store(con, events, rows)
    con.close()
    return {v: max(e.receipt_ns for e in events if e.venue == v) for v in ("futures", "spot")}


def _freshness(engine: DuckDBEngine) -> CheckResult:
    """The freshness check alone (each check's rows are its own query; only this one is read)."""
    report = run_dq(DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1], checks=("freshness",)), engine)
    return next(r for r in report.results if r.name == "freshness")


def _unseen(fresh: CheckResult) -> list[dict[str, Any]]:
    return [m for m in fresh.metrics if m["kind"] == "stream" and m["messages"] == 0]


def test_a_feed_killed_before_its_first_depth_event_is_judged_to_its_last_row(tmp_path: Path) -> None:
    """The store's writer is gone and the session has no close record: the l2 rows with no message
    run from the session's start to just past its last row, not from the window's start to its end."""
    db = tmp_path / "t.duckdb"
    last = _store_without_l2(db, closed=False)
    engine = DuckDBEngine(db)
    assert engine.writer_gone
    fresh = _freshness(engine)
    unseen = _unseen(fresh)
    assert {(m["venue"], m["symbol"], m["channel"]) for m in unseen} == {
        ("futures", "BTCUSDT", "l2"),
        ("spot", "ETHBTC", "l2"),
    }
    for m in unseen:
        end = last[m["venue"]] + 1  # ends are exclusive, as freshness's own
        assert m["from_ns"] == STARTED_NS and m["to_ns"] == end, m
        assert m["longest_s"] == round((end - STARTED_NS) / 1e9, 3)
    assert {n["issue"] for n in fresh.notes} == {"unclosed_session"}


def test_a_session_that_may_still_run_is_unseen_up_to_the_window_end(tmp_path: Path) -> None:
    """Through a connection a writer may hold, the same session may still be running: its unseen
    streams run to the window's end (from its start, not the window's)."""
    db = tmp_path / "t.duckdb"
    _store_without_l2(db, closed=False)
    engine = DuckDBEngine(connection=duckdb.connect(str(db), read_only=True))
    assert not engine.writer_gone
    unseen = _unseen(_freshness(engine))
    assert unseen and all(m["from_ns"] == STARTED_NS and m["to_ns"] == WINDOW[1] for m in unseen), unseen


def test_a_closed_session_is_unseen_up_to_its_close_record(tmp_path: Path) -> None:
    """A session with its close record ends there: that is where its unseen streams end."""
    db = tmp_path / "t.duckdb"
    _store_without_l2(db, closed=True)
    ended = {r["venue"]: r["ended_ns"] for r in session_row()["rows"]}
    unseen = _unseen(_freshness(DuckDBEngine(db)))
    assert unseen and all(m["to_ns"] == ended[m["venue"]] and m["from_ns"] == STARTED_NS for m in unseen), unseen
