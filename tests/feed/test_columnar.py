"""The columnar path: with the native core and sinks that take Arrow tables, the feed stores exactly
what the object path stores, and chooses the path by itself."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tickpath.feed.engine import FeedEngine
from tickpath.feed.pipeline import Pipeline
from tickpath.sinks.duckdb import DuckDBSink
from tickpath.sinks.jsonl import JsonLinesSink
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order

COLUMNS = "symbol, seq, kind, first_update_id, final_update_id, prev_final_update_id, depth, bids, asks, reason"


class _Conn:
    conn_id = "c"


async def _store(shared: Path, db: Path, *, columnar: bool, depth: int | None) -> FeedEngine:
    cap = read_ws_capture(shared / "usdm_futures.ws.txt")
    records = read_http_capture(shared / "usdm_futures.http.txt")
    symbols = tuple(sorted({r.params["symbol"] for r in records}))
    pipeline = Pipeline([DuckDBSink(db)], batch_size=100)
    await pipeline.start()
    engine = FeedEngine("futures", symbols, pipeline, session="s", depth=depth, columnar=pipeline if columnar else None)
    for item in replay_order(cap.frames, records):
        if isinstance(item, HttpRecord):
            engine.on_snapshot(item.params["symbol"], item.body.encode(), int(item.receipt * 1e9))
            continue
        wait = engine.on_frame(item.text, int(item.receipt * 1e9), 0, _Conn())
        if wait is not None:
            await wait
    engine.reset_symbols(["SUSHIUSDT"], "connection_lost")
    await pipeline.close()
    return engine


def _rows(db: Path, table: str, columns: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT {columns} FROM {table} ORDER BY symbol, seq").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("depth", [None, 5])
async def test_columnar_store_equals_object_store(shared_captures: Path, tmp_path: Path, depth: int | None) -> None:
    columnar = await _store(shared_captures, tmp_path / "c.duckdb", columnar=True, depth=depth)
    objects = await _store(shared_captures, tmp_path / "o.duckdb", columnar=False, depth=depth)
    assert columnar.columnar and not objects.columnar
    for table, columns in (
        ("l2", COLUMNS),
        ("trades", "symbol, seq, trade_id, first_trade_id, last_trade_id, price, qty, side, receipt_ns"),
        ("tickers", "symbol, seq, update_id, bid_price, bid_qty, ask_price, ask_qty, event_time_ms"),
    ):
        got, want = _rows(tmp_path / "c.duckdb", table, columns), _rows(tmp_path / "o.duckdb", table, columns)
        assert got == want and len(got) > 50, table
    kinds = {r[2] for r in _rows(tmp_path / "c.duckdb", "l2", COLUMNS)}
    assert kinds == {"snapshot", "delta", "reset"}
    assert columnar.stats.frames == objects.stats.frames and columnar.book_totals() == objects.book_totals()


def test_the_path_follows_the_sinks_and_tickpath_pure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = Pipeline([DuckDBSink(tmp_path / "a.duckdb")])
    mixed = Pipeline([DuckDBSink(tmp_path / "b.duckdb"), JsonLinesSink(tmp_path / "x.jsonl")])
    assert tables.columnar and not mixed.columnar
    assert FeedEngine("futures", ("BTCUSDT",), tables, session="s", columnar=tables).columnar
    monkeypatch.setenv("TICKPATH_PURE", "1")
    assert not FeedEngine("futures", ("BTCUSDT",), tables, session="s", columnar=tables).columnar
