"""DuckDB's own plan (one ordered l2 pass shared by sequence and integrity, streams keyed by a hash
once no two share one) returns exactly the rows of the portable per-check SQL, on clean data and on
every kind of defect; with colliding keys the runner keys on the strings instead."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from tests.dq.market import WINDOW, Defects, make_store
from tickpath.dq import sql
from tickpath.dq.checks import CHECKS
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, check_rows, run_dq
from tickpath.dq.sql import L2_PASS_TABLE, STREAM_EXTENT, Window, body, compose, stream_keys_unique

W = Window(*WINDOW)
SHARED = ("sequence", "integrity")
ALL = tuple(CHECKS)


def _portable(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[Any, ...]]:
    """The check's self-contained SQL as BigQuery gets it (before transpiling), run on DuckDB."""
    cur = con.execute(compose(body(CHECKS[name].template, W, [100], dialect="bigquery"), W, "duckdb"))
    return sorted(cur.fetchall(), key=repr)


def _planned(con: duckdb.DuckDBPyConnection, keyed: bool) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted((tuple(r.values()) for r in rows), key=repr)
        for name, rows in check_rows(DuckDBEngine(connection=con), W, ALL, [100], keyed=keyed)
    }


def _streams(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return DuckDBEngine(connection=con).query(compose(body(STREAM_EXTENT, W, dialect="duckdb"), W, "duckdb"))


def _seed_l2_defects(con: duckdb.DuckDBPyConnection) -> None:
    """Defects no Defects switch makes: bad levels, a crossed snapshot, time going backwards, a
    duplicate seq, a delta without event time, empty and NULL level lists."""
    delta = "SELECT seq FROM l2 WHERE kind = 'delta' AND symbol = 'BTCUSDT' ORDER BY seq LIMIT 1 OFFSET {}"
    at = [con.execute(delta.format(k)).fetchone()[0] for k in (10, 20, 30, 40, 50, 60, 70)]  # type: ignore[index]
    con.execute(
        f"UPDATE l2 SET bids = [{{'price': '-1', 'qty': '2'}}, {{'price': 'x', 'qty': '1'}}] "
        f"WHERE symbol = 'BTCUSDT' AND seq = {at[0]}"
    )
    con.execute(
        f"UPDATE l2 SET asks = [{{'price': '101', 'qty': '-0.5'}}, NULL] WHERE symbol = 'BTCUSDT' AND seq = {at[1]}"
    )
    con.execute(f"UPDATE l2 SET event_time_ms = event_time_ms - 5000 WHERE symbol = 'BTCUSDT' AND seq = {at[2]}")
    con.execute(f"UPDATE l2 SET receipt_ns = receipt_ns - 9000000000 WHERE symbol = 'BTCUSDT' AND seq = {at[3]}")
    con.execute(f"UPDATE l2 SET event_time_ms = NULL WHERE symbol = 'BTCUSDT' AND seq = {at[4]}")
    con.execute(f"UPDATE l2 SET bids = [], asks = NULL WHERE symbol = 'BTCUSDT' AND seq = {at[5]}")
    con.execute(f"INSERT INTO l2 SELECT * FROM l2 WHERE symbol = 'BTCUSDT' AND seq = {at[6]}")
    con.execute(
        "UPDATE l2 SET bids = [{'price': '101', 'qty': '1'}, {'price': '99', 'qty': '0'}] "
        "WHERE kind = 'snapshot' AND symbol = 'ETHBTC' AND seq > 1"
    )
    # After a reset and its snapshot, the next delta is compared with the delta before the reset.
    for symbol, column, back in (("BTCUSDT", "event_time_ms", 1), ("ETHBTC", "receipt_ns", 1_000)):
        (reset,) = con.execute(f"SELECT min(seq) FROM l2 WHERE kind = 'reset' AND symbol = '{symbol}'").fetchone()  # type: ignore[misc]
        (before,) = con.execute(
            f"SELECT max(seq) FROM l2 WHERE kind = 'delta' AND symbol = '{symbol}' "  # type: ignore[misc]
            f"AND seq < {reset}"
        ).fetchone()
        (after,) = con.execute(
            f"SELECT min(seq) FROM l2 WHERE kind = 'delta' AND symbol = '{symbol}' "  # type: ignore[misc]
            f"AND seq > {reset}"
        ).fetchone()
        con.execute(
            f"UPDATE l2 SET {column} = (SELECT {column} - {back} FROM l2 WHERE symbol = '{symbol}' "
            f"AND seq = {before}) WHERE symbol = '{symbol}' AND seq = {after}"
        )
    # A stream whose first row in the window is a delta: nothing before it to compare with.
    con.execute("DELETE FROM l2 WHERE symbol = 'ETHBTC' AND seq = 1")
    # Times going back in trades and tickers (their windows are lean on DuckDB: joined back by row id).
    nth = "(SELECT seq FROM {t} WHERE symbol = '{s}' ORDER BY seq LIMIT 1 OFFSET {k})"
    con.execute(
        f"UPDATE trades SET event_time_ms = event_time_ms - 5000 WHERE symbol = 'BTCUSDT' "
        f"AND seq = {nth.format(t='trades', s='BTCUSDT', k=15)}"
    )
    con.execute(
        f"UPDATE tickers SET receipt_ns = receipt_ns - 9000000000 WHERE symbol = 'ETHBTC' "
        f"AND seq = {nth.format(t='tickers', s='ETHBTC', k=25)}"
    )


@pytest.mark.parametrize(
    "defects",
    [
        Defects(),
        Defects(gap_at_s=10, crossed_at_s=20, duplicate_trade_at_s=45, reset_at_s=55),
        Defects(top_n=10, gap_at_s=30),
        Defects(lost_trade_row_at_s=30),
        None,
    ],
    ids=["clean", "mixed", "top-n-gap", "lost-row", "seeded-l2"],
)
def test_duckdb_plan_returns_the_portable_rows(defects: Defects | None) -> None:
    """Every check's rows from DuckDB's plan (shared l2 pass; hashed or string stream keys) equal
    those of the per-check SQL."""
    con = make_store(":memory:", defects=defects or Defects(reset_at_s=30))
    if defects is None:
        _seed_l2_defects(con)
    assert stream_keys_unique(_streams(con))
    portable = {name: _portable(con, name) for name in ALL}  # the store does not change: run each once
    by_key = {keyed: _planned(con, keyed) for keyed in (True, False)}
    for keyed, rows in by_key.items():
        for name in ALL:
            assert rows[name] == portable[name], (name, keyed)
    planned = by_key[True]
    if defects is None:  # the seeded rows were really found, so the comparison had something to compare
        issues = {r[0] for r in planned["integrity"]} | {r[0] for r in planned["sequence"]}
        assert {"non_positive", "crossed", "time_backwards", "seq_duplicate", "reset"} <= issues
        backwards = {(r[3], r[5]) for r in planned["integrity"] if r[0] == "time_backwards" and r[4] == "l2"}
        assert len(backwards) >= 4 and {"BTCUSDT", "ETHBTC"} <= {symbol for symbol, _ in backwards}
        others = {(r[4], r[3]) for r in planned["integrity"] if r[0] == "time_backwards" and r[4] != "l2"}
        assert {("trades", "BTCUSDT"), ("ticker", "ETHBTC")} <= others


def test_shared_pass_is_dropped_afterwards() -> None:
    """The temp table of the shared pass does not outlive the run, even when iteration stops early."""
    con = make_store(":memory:")
    rows = check_rows(DuckDBEngine(connection=con), W, SHARED, [100])
    next(rows)
    assert con.execute(f"SELECT count(*) FROM {L2_PASS_TABLE}").fetchone() is not None
    rows.close()
    with pytest.raises(duckdb.CatalogException):
        con.execute(f"SELECT count(*) FROM {L2_PASS_TABLE}")


def test_colliding_stream_keys_fall_back_to_the_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a key that two streams share, the proof fails and dq keys on the strings: its report
    equals the one keyed by the real hash; keying on the colliding key would have merged the streams."""
    con = make_store(":memory:", defects=Defects(gap_at_s=10, lost_trade_row_at_s=30, reset_at_s=50))
    config = DqConfig(since_ns=W.since_ns, until_ns=W.until_ns)
    expected = run_dq(config, DuckDBEngine(connection=con)).to_dict()
    monkeypatch.setattr(sql, "STREAM_KEY", "hash(session)")  # BTCUSDT and ETHBTC share one session
    streams = _streams(con)
    assert len({r["sk"] for r in streams}) == 1 and len({r["symbol"] for r in streams}) == 2
    assert not stream_keys_unique(streams)
    got = run_dq(config, DuckDBEngine(connection=con)).to_dict()
    assert got["checks"] == expected["checks"] and got["rows_in_window"] == expected["rows_in_window"]
    assert _planned(con, True)["sequence"] != _portable(con, "sequence")  # what the proof prevents


def test_stream_keys_unique_needs_one_stream_per_key() -> None:
    """The proof holds for distinct keys (a stream listed once per channel) and fails on a shared key."""
    a = {"session": "s", "venue": "spot", "symbol": "A", "sk": 1}
    b = {"session": "s", "venue": "spot", "symbol": "B", "sk": 2}
    assert stream_keys_unique([a, b, dict(a)])
    assert not stream_keys_unique([a, {**b, "sk": 1}])
