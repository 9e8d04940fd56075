"""The storage schema: every event maps to a row of its table, and DuckDB accepts the DDL and rows."""

from __future__ import annotations

import duckdb

from tickpath.events import BookDelta, BookReset, BookSnapshot, Ticker, Trade
from tickpath.tables import EVENT_TABLES, SCHEMAS, duckdb_ddl, event_row, table_for, to_arrow

COMMON = dict(session="s", venue="futures", symbol="BTCUSDT", event_time_ms=1, transaction_time_ms=2, receipt_ns=3)


def test_every_event_kind_lands_in_duckdb() -> None:
    """Rows of all five event kinds insert through Arrow into tables created from the DDL."""
    events = [
        Trade(**COMMON, seq=1, trade_id=9, price="1.0", qty="2", side="buy"),
        Ticker(**COMMON, seq=1, update_id=5, bid_price="1", bid_qty="1", ask_price="2", ask_qty="3"),
        BookSnapshot(**COMMON, seq=1, last_update_id=10, bids=[("1", "2")], asks=[("3", "4")]),
        BookDelta(
            **COMMON, seq=2, first_update_id=11, final_update_id=12, prev_final_update_id=10, bids=[("1", "0")], asks=[]
        ),
        BookReset(**COMMON, seq=3, reason="gap", last_good_update_id=12),
    ]
    con = duckdb.connect()
    for t in (*EVENT_TABLES, "feed_sessions"):
        con.execute(duckdb_ddl(t))
    by_table: dict[str, list[dict[str, object]]] = {}
    for e in events:
        by_table.setdefault(table_for(e), []).append(event_row(e))
    for table, rows in by_table.items():
        arrow = to_arrow(table, rows)  # noqa: F841 - referenced by name in the SQL below
        con.execute(f"INSERT INTO {table} SELECT * FROM arrow")
    kinds = con.execute("SELECT kind, bids[1].qty FROM l2 ORDER BY seq").fetchall()
    assert kinds == [("snapshot", "2"), ("delta", "0"), ("reset", None)]
    assert con.execute("SELECT price FROM trades").fetchone() == ("1.0",)
    assert set(SCHEMAS) == {*EVENT_TABLES, "feed_sessions"}
