"""dq's checks of the low-rate channels on a real DuckDB store: candles (OHLC sanity, closed-candle
continuity) and mark price freshness pass on good data and fail on each kind of broken data; a store
without those rows reports exactly the core checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from tickpath.dq.channels import channel_results
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, run_dq
from tickpath.dq.sql import Window, to_duckdb
from tickpath.events import Candle, Event, MarkPrice, SessionInfo, Trade
from tickpath.sinks.duckdb import DuckDBSink

T0 = 1_700_000_000_000  # ms
NS = 1_000_000


def candle(
    seq: int, open_ms: int, *, closed: bool, o: str = "10", h: str = "12", lo: str = "9", c: str = "11"
) -> Candle:
    return Candle(
        session="s", venue="spot", symbol="BTCUSDT", seq=seq, event_time_ms=open_ms + 999, transaction_time_ms=None,
        receipt_ns=(open_ms + 999) * NS, interval="1s", open_time_ms=open_ms, close_time_ms=open_ms + 999,
        first_trade_id=None, last_trade_id=None, open=o, high=h, low=lo, close=c, volume="1", quote_volume="10",
        trades=1, taker_buy_volume="0", taker_buy_quote_volume="0", closed=closed,
    )  # fmt: skip


def mark(seq: int, t_ms: int, price: str = "100") -> MarkPrice:
    return MarkPrice(
        session="s", venue="futures", symbol="BTCUSDT", seq=seq, event_time_ms=t_ms, transaction_time_ms=None,
        receipt_ns=t_ms * NS, mark_price=price, index_price="100", settle_price="100", funding_rate="0.0001",
        next_funding_time_ms=T0 + 8 * 3_600_000,
    )  # fmt: skip


def good_candles() -> list[Event]:
    out: list[Event] = []
    for i in range(10):
        out.append(candle(2 * i + 1, T0 + i * 1000, closed=False))
        out.append(candle(2 * i + 2, T0 + i * 1000, closed=True))
    return out


def good_marks() -> list[Event]:
    return [mark(i + 1, T0 + i * 1000) for i in range(10)]


async def store(path: Path, events: list[Event]) -> None:
    sink = DuckDBSink(path)
    await sink.start()
    for venue in ("spot", "futures"):
        await sink.write_session(SessionInfo(session="s", venue=venue, started_ns=T0 * NS, ended_ns=(T0 + 10_000) * NS))  # type: ignore[arg-type]
    await sink.write(events)
    await sink.close()


WINDOW = Window((T0 - 1000) * NS, (T0 + 10_000) * NS)


def results(path: Path, max_gap_s: float = 10.0, window: Window = WINDOW) -> dict[str, object]:
    engine = DuckDBEngine(path)
    try:
        return {r.name: r for r in channel_results(engine.query, window, max_gap_s=max_gap_s)}
    finally:
        engine.close()


async def test_good_candles_and_marks_pass(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    await store(db, good_candles() + good_marks())
    got = results(db)
    assert set(got) == {"candles", "mark_price"}
    assert all(r.ok for r in got.values()), [r.findings for r in got.values()]  # type: ignore[attr-defined]
    assert "10 closed candles" in got["candles"].summary  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("broken", "issue"),
    [
        (lambda evs: [e for e in evs if not (e.closed and e.open_time_ms == T0 + 4000)], "gap"),
        (lambda evs: [*evs, candle(99, T0 + 3000, closed=True, c="11.5")], "closed_twice"),
        (lambda evs: [*evs[:-1], candle(20, T0 + 9000, closed=True, h="10.5")], "ohlc"),  # close above high
        (lambda evs: [*evs[:-1], candle(20, T0 + 9000, closed=True, lo="10.5")], "ohlc"),  # open below low
    ],
)
async def test_broken_candles_fail(tmp_path: Path, broken: object, issue: str) -> None:
    db = tmp_path / "t.duckdb"
    await store(db, broken(good_candles()))  # type: ignore[operator]
    r = results(db)["candles"]
    assert not r.ok and {f["issue"] for f in r.findings} == {issue}  # type: ignore[attr-defined]


async def test_stale_and_bad_mark_prices_fail(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    marks = [m for m in good_marks() if not 2 <= m.seq <= 7]  # t+1 s .. t+6 s missing: 6 s gap < 10 s
    marks += [mark(11, T0 + 9500, price="0")]
    await store(db, marks)
    r = results(db)["mark_price"]
    assert {f["issue"] for f in r.findings} == {"price"}  # type: ignore[attr-defined]
    db2 = tmp_path / "u.duckdb"
    await store(db2, [m for m in good_marks() if m.seq < 3])  # silent from t+2 s to the session's end
    assert results(db2)["mark_price"].ok  # type: ignore[attr-defined]  # 9 s: within the default 10 s
    r2 = results(db2, max_gap_s=5.0)["mark_price"]
    assert not r2.ok and r2.findings[0]["issue"] == "stale" and r2.findings[0]["silence_s"] > 7  # type: ignore[attr-defined]


async def test_run_dq_adds_channel_checks_only_with_their_rows(tmp_path: Path) -> None:
    trade = Trade(
        session="s", venue="spot", symbol="BTCUSDT", seq=1, event_time_ms=T0, transaction_time_ms=T0,
        receipt_ns=T0 * NS, trade_id=1, price="1", qty="1", side="buy",
    )  # fmt: skip
    cfg = DqConfig(since_ns=WINDOW.since_ns, until_ns=WINDOW.until_ns)
    db = tmp_path / "t.duckdb"
    await store(db, [trade])
    engine = DuckDBEngine(db)
    core = [r.name for r in run_dq(cfg, engine).results]
    engine.close()
    assert "candles" not in core and "mark_price" not in core
    db2 = tmp_path / "u.duckdb"
    await store(db2, [trade, *good_candles()])
    engine = DuckDBEngine(db2)
    names = [r.name for r in run_dq(cfg, engine).results]
    engine.close()
    assert names == [*core, "candles"]


# -- the same checks on BigQuery -------------------------------------------------------------------

DATASET = "tick-proj.market"
_TABLES = ("candles", "mark_prices", "feed_sessions")


class BigQueryOnDuckDB:
    """Runs the BigQuery SQL on DuckDB after transpiling it back, against copies of the store's
    tables that carry the ``event_date`` partition column (as the BigQuery tables do)."""

    def __init__(self, path: Path, *, bus_sessions: bool = False) -> None:
        self.con = duckdb.connect(str(path))
        self.con.execute("ATTACH ':memory:' AS \"tick-proj\"")
        self.con.execute('CREATE SCHEMA "tick-proj".market')
        for t in ("candles", "mark_prices"):
            self.con.execute(
                f'CREATE TABLE "tick-proj".market.{t} AS SELECT *, '
                f"CAST(to_timestamp(receipt_ns / 1e9) AS DATE) AS event_date FROM {t}"
            )
        # A bus-filled sessions table keeps a session's start row (no end) beside its stop row.
        start_rows = "UNION ALL SELECT * REPLACE (NULL AS ended_ns) FROM feed_sessions" if bus_sessions else ""
        self.con.execute(f'CREATE TABLE "tick-proj".market.feed_sessions AS SELECT * FROM feed_sessions {start_rows}')
        self.sql: list[str] = []

    def query(self, sql: str) -> list[dict[str, Any]]:
        self.sql.append(sql)
        cur = self.con.execute(to_duckdb(sql))
        cols = [d[0] for d in cur.description or []]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _stores() -> dict[str, list[Event]]:
    marks = [m for m in good_marks() if not 2 <= m.seq <= 7] + [mark(11, T0 + 9500, price="0")]
    return {
        "good": good_candles() + good_marks(),
        "gap": [e for e in good_candles() if not (e.closed and e.open_time_ms == T0 + 4000)],  # type: ignore[attr-defined]
        "closed_twice": [*good_candles(), candle(99, T0 + 3000, closed=True, c="11.5")],
        "ohlc": [*good_candles()[:-1], candle(20, T0 + 9000, closed=True, h="10.5")],
        "marks": marks,
        "silent_tail": [m for m in good_marks() if m.seq < 3],
    }


@pytest.mark.parametrize("case", list(_stores()))
async def test_bigquery_sql_judges_exactly_as_duckdb(tmp_path: Path, case: str) -> None:
    """The channel checks' BigQuery SQL, transpiled back, judges every store as the DuckDB SQL does
    (also past the session's end, where a bus-filled sessions table must give the stop row's end),
    and every read of an event table filters its partitions."""
    db = tmp_path / "t.duckdb"
    await store(db, _stores()[case])
    windows = (WINDOW, Window(WINDOW.since_ns, (T0 + 20_000) * NS))  # the second runs past the end
    engine = DuckDBEngine(db)  # DuckDB's judgement of each window, once for both sessions tables
    try:
        local = [{r.name: r for r in channel_results(engine.query, w, max_gap_s=5.0)} for w in windows]
    finally:
        engine.close()
    parsed: set[str] = set()  # the SQL depends on the window only: each text's partitions checked once
    for bus_sessions in (False, True):
        bq = BigQueryOnDuckDB(db, bus_sessions=bus_sessions)
        for window, want in zip(windows, local, strict=True):
            bq.sql.clear()
            remote = channel_results(bq.query, window, max_gap_s=5.0, dialect="bigquery", dataset=DATASET)
            assert {r.name: repr(r) for r in remote} == {k: repr(v) for k, v in want.items()}
            for sql in set(bq.sql) - parsed:
                _assert_reads_filter_partitions(sql)
            parsed.update(bq.sql)
        bq.con.close()
    assert parsed
    if case == "marks":
        assert {f["issue"] for f in local[1]["mark_price"].findings} == {"price", "stale"}  # type: ignore[attr-defined]


def _assert_reads_filter_partitions(sql: str) -> None:
    """Every read of a channel table is of the dataset, and of an event table filters event_date."""
    tables = [t for t in sqlglot.parse_one(sql, read="bigquery").find_all(exp.Table) if t.name in _TABLES]
    assert tables, sql
    for t in tables:
        assert (t.catalog, t.db) == ("tick-proj", "market"), sql
        if t.name != "feed_sessions":
            where = t.find_ancestor(exp.Select).args.get("where")  # type: ignore[union-attr]
            assert where is not None and "event_date" in {c.name for c in where.find_all(exp.Column)}, sql
