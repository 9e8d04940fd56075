"""The BigQuery SQL: generated from the same check definitions, valid BigQuery, partition-pruned,
and computing exactly what the DuckDB SQL computes."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from tests.dq.market import WINDOW, Defects, make_store
from tickpath.dq.bigquery import BigQueryEngine, parse_dataset
from tickpath.dq.checks import CHECKS
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, render_sql, run_dq
from tickpath.dq.sql import TABLE_NAMES, Window, to_duckdb
from tickpath.errors import ConfigError, TickpathError

DATASET = "tick-proj.market"
CONFIG = DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1])


def test_every_check_parses_as_bigquery_and_prunes_partitions() -> None:
    """Each generated query parses in BigQuery's dialect and every table read filters event_date."""
    sqls = render_sql(CONFIG, "bigquery", DATASET)
    assert set(sqls) == set(CHECKS)
    for name, sql in sqls.items():
        tree = sqlglot.parse_one(sql, read="bigquery")
        tables = [t for t in tree.find_all(exp.Table) if t.name in TABLE_NAMES]
        assert tables, name
        for t in tables:
            assert (t.catalog, t.db) == ("tick-proj", "market"), (name, t.sql("bigquery"))
            select = t.find_ancestor(exp.Select)
            assert select is not None
            where = select.args.get("where")
            assert where is not None, f"{name}: {t.name} read without a WHERE"
            cols = {c.name for c in where.find_all(exp.Column)}
            assert cols & {"receipt_ns", "started_ns"}, f"{name}: {t.name} read without the time window"
            assert "event_date" in cols, f"{name}: {t.name} has no partition filter"


def test_partition_dates_cover_the_window_with_a_day_of_slack() -> None:
    """The event_date range spans the window's UTC dates plus one day either side."""
    w = Window(1_700_000_000 * 10**9, 1_700_090_000 * 10**9)  # 2023-11-14 22:13 .. 2023-11-15 23:13
    first, last = w.dates()
    assert (first.isoformat(), last.isoformat()) == ("2023-11-13", "2023-11-16")
    sql = render_sql(DqConfig(since_ns=w.since_ns, until_ns=w.until_ns, checks=("integrity",)), "bigquery", DATASET)[
        "integrity"
    ]
    assert "'2023-11-13'" in sql and "'2023-11-16'" in sql


class TranspiledBack:
    """Runs BigQuery SQL on DuckDB after transpiling it back, against tables that carry event_date."""

    name = "bigquery-as-duckdb"
    dialect = "bigquery"
    dataset = DATASET
    writer_gone = False

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute("ATTACH ':memory:' AS \"tick-proj\"")
        con.execute('CREATE SCHEMA "tick-proj".market')
        for t in ("trades", "tickers", "l2", "candles", "mark_prices"):
            con.execute(
                f'CREATE TABLE "tick-proj".market.{t} AS SELECT *, CAST(to_timestamp('
                f"COALESCE(event_time_ms / 1000, receipt_ns / 1e9)) AS DATE) AS event_date FROM {t}"
            )
        con.execute(
            'CREATE TABLE "tick-proj".market.feed_sessions AS SELECT *, '
            "CAST(to_timestamp(started_ns / 1e9) AS DATE) AS event_date FROM feed_sessions"
        )
        self.queries: list[str] = []

    def query(self, sql: str) -> list[dict[str, Any]]:
        back = to_duckdb(sql)
        self.queries.append(back)
        cur = self.con.execute(back)
        cols = [d[0] for d in cur.description or []]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _comparable(report: Any) -> Any:
    d = report.to_dict()
    d.pop("engine"), d.pop("elapsed_s")
    return d


def test_bigquery_sql_agrees_with_duckdb_on_a_fixture() -> None:
    """The BigQuery SQL, transpiled back to DuckDB, yields the same report as the DuckDB SQL."""
    con = make_store(
        ":memory:", defects=Defects(gap_at_s=10, crossed_at_s=20, stall_at_s=30, duplicate_trade_at_s=45, reset_at_s=55)
    )
    local = run_dq(CONFIG, DuckDBEngine(connection=con))
    back_engine = TranspiledBack(con)
    remote = run_dq(CONFIG, back_engine)  # type: ignore[arg-type]
    # extent + sessions + one per check + one probe per low-rate channel table (none has rows here)
    assert len(back_engine.queries) == len(CHECKS) + 4
    assert not local.ok and {r.name for r in local.results if not r.ok} == {"sequence", "integrity", "freshness"}
    assert _comparable(remote) == _comparable(local)


def test_dataset_must_be_project_dot_dataset() -> None:
    """--bigquery takes PROJECT.DATASET; anything else is a ConfigError with an example."""
    assert parse_dataset("tick-proj.market") == ("tick-proj", "market")
    for bad in ("market", "a.b", "Tick-Proj.market", "tick-proj.mar-ket"):
        with pytest.raises(ConfigError, match=r"PROJECT\.DATASET"):
            parse_dataset(bad)


class _Row(dict):  # type: ignore[type-arg]
    pass


class _Job:
    def __init__(self, rows: list[dict[str, Any]], error: Exception | None) -> None:
        self.rows, self.error, self.total_bytes_processed = rows, error, 1234

    def result(self) -> list[_Row]:
        if self.error:
            raise self.error
        return [_Row(r) for r in self.rows]


class _Client:
    def __init__(self, rows: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.rows, self.error, self.calls = rows, error, []  # type: ignore[var-annotated]

    def query(self, sql: str, job_config: Any = None, location: Any = None) -> _Job:
        self.calls.append((sql, job_config))
        return _Job(self.rows, self.error)


def test_bigquery_engine_runs_jobs_with_a_byte_cap() -> None:
    """Each query is one job with maximum_bytes_billed set; rows come back as dicts; bytes are summed."""
    client = _Client([{"channel": "l2", "n": 3}])
    engine = BigQueryEngine(DATASET, client=client, max_bytes_billed=10**9)
    assert engine.query("SELECT 1") == [{"channel": "l2", "n": 3}]
    assert client.calls[0][1].maximum_bytes_billed == 10**9
    assert engine.bytes_processed == 1234


def test_bigquery_errors_are_translated() -> None:
    """A rejected query and a missing table become tickpath errors, not google tracebacks."""
    from google.api_core import exceptions as gexc

    with pytest.raises(TickpathError, match="rejected the query"):
        BigQueryEngine(DATASET, client=_Client([], gexc.BadRequest("bytes billed limit exceeded"))).query("x")
    with pytest.raises(ConfigError, match="gcp setup"):
        BigQueryEngine(DATASET, client=_Client([], gexc.NotFound("Table l2 not found"))).query("x")


def test_a_bus_filled_sessions_table_with_start_and_stop_rows_reads_as_the_stopped_row() -> None:
    """BigQuery's feed_sessions gets a run's start row and its stop row (the Pub/Sub sink sends both);
    dq reads the stopped one, on both dialects: the same report as a store holding only that row, even
    when the start row carries another clock offset or none."""
    from tests.dq.market import build_events, session_row, write_store
    from tickpath.dq.sql import SESSIONS, body, compose

    defects = Defects(clock_offset_ms=40, recorded_offset=True)
    events = build_events(70.0, defects)
    stopped = session_row(defects)["rows"]
    started = [{**r, "ended_ns": None, "clock_offset_ns": None, "clock_offset_bound_ns": None} for r in stopped]
    merged, both = duckdb.connect(":memory:"), duckdb.connect(":memory:")
    write_store(merged, events, stopped)
    write_store(both, events, [*stopped, *started])  # stop row first: arrival order must not matter
    want = _comparable(run_dq(CONFIG, DuckDBEngine(connection=merged)))
    local = run_dq(CONFIG, DuckDBEngine(connection=both))
    assert _comparable(local) == want
    back = TranspiledBack(both)
    assert _comparable(run_dq(CONFIG, back)) == want  # type: ignore[arg-type]
    latency = next(r for r in local.results if r.name == "latency")
    assert latency.ok, latency.summary  # corrected by the stop row's offset, not judged raw

    # A run that ended before the window does not come back through its open start row.
    after = Window(max(r["ended_ns"] for r in stopped) + 1, max(r["ended_ns"] for r in stopped) + 10**12)
    for engine in (DuckDBEngine(connection=both), back):
        assert (
            engine.query(
                compose(
                    body(SESSIONS, after, dialect=engine.dialect),
                    after,
                    engine.dialect,  # type: ignore[arg-type]
                    engine.dataset,
                )
            )
            == []
        )
    with_open_only = duckdb.connect(":memory:")
    write_store(with_open_only, events, started)
    only_open = compose(body(SESSIONS, after, dialect="duckdb"), after, "duckdb")
    rows = DuckDBEngine(connection=with_open_only).query(only_open)
    assert {r["venue"] for r in rows} == {r["venue"] for r in started}  # still running, as far as it says


def test_bigquery_sql_agrees_on_dead_frozen_streams_and_unclosed_sessions(tmp_path: Any) -> None:
    """Dead trades, a frozen ticker, and a killed session followed by a new one: the BigQuery SQL,
    transpiled back, judges them exactly as DuckDB does (and DuckDB finds each)."""
    from tests.dq.market import killed_store

    con = make_store(":memory:", defects=Defects(dead_channel="trades", dead_at_s=5, frozen_at_s=3, frozen_s=70))
    local = run_dq(CONFIG, DuckDBEngine(connection=con))
    fresh = next(r for r in local.results if r.name == "freshness")
    assert {f["issue"] for f in fresh.findings} == {"dead_stream", "frozen_stream"}
    assert _comparable(run_dq(CONFIG, TranspiledBack(con))) == _comparable(local)  # type: ignore[arg-type]

    db = str(tmp_path / "killed.duckdb")
    killed_store(db, restarted=True)
    killed = duckdb.connect(db)
    local = run_dq(CONFIG, DuckDBEngine(connection=killed))
    assert next(r for r in local.results if r.name == "freshness").notes
    assert _comparable(run_dq(CONFIG, TranspiledBack(killed))) == _comparable(local)  # type: ignore[arg-type]
