"""Frames that arrive together go to the native core in one call, with the outcome of single calls.

The engine's ``on_frames`` (the columnar path: ``NativeProcessor.feed_batch``) must store what
``on_frame`` stores frame by frame, count the same and ask for the same snapshots; the connection
hands it the frames already waiting behind the first, in order, and counts every one.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import duckdb

from tickpath.feed.connection import FeedConnection
from tickpath.feed.engine import FeedEngine
from tickpath.feed.pipeline import Pipeline
from tickpath.sinks.duckdb import DuckDBSink
from tickpath.transports import MemoryWsPeer, MemoryWsTransport
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order


class _Conn:
    conn_id = "c"


class _Requests:
    """The snapshot requests the engine makes, in order (the real requester fetches them)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def request(self, symbol: str) -> bool:
        self.asked.append(symbol)
        return True


async def _store(shared: Path, db: Path, *, batched: bool) -> tuple[FeedEngine, list[str]]:
    cap = read_ws_capture(shared / "usdm_futures.ws.txt")
    records = read_http_capture(shared / "usdm_futures.http.txt")
    symbols = tuple(sorted({r.params["symbol"] for r in records}))
    pipeline = Pipeline([DuckDBSink(db)], batch_size=100)
    await pipeline.start()
    asked = _Requests()
    engine = FeedEngine("futures", symbols, pipeline, session="s", columnar=pipeline, snapshots=asked)
    rng = random.Random(4242)
    group: list[str] = []
    receipt = 0

    async def flush() -> None:
        if group:
            wait = engine.on_frames(list(group), receipt, 0, _Conn())
            group.clear()
            if wait is not None:
                await wait

    for item in replay_order(cap.frames, records):
        if isinstance(item, HttpRecord):
            await flush() if batched else None
            engine.on_snapshot(item.params["symbol"], item.body.encode(), int(item.receipt * 1e9))
            continue
        if not batched:
            wait = engine.on_frame(item.text, int(item.receipt * 1e9), 0, _Conn())
            if wait is not None:
                await wait
            continue
        if not group:
            receipt = int(item.receipt * 1e9)
        group.append(item.text)
        if rng.random() < 0.08:
            await flush()
    await flush()
    await pipeline.close()
    return engine, asked.asked


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT * EXCLUDE (receipt_ns) FROM {table} ORDER BY symbol, seq").fetchall()
    finally:
        con.close()


async def test_batched_frames_store_what_single_frames_store(shared_captures: Path, tmp_path: Path) -> None:
    """The capture in seeded random groups: the same rows (receipt times aside), counts and requests."""
    batched, asked_b = await _store(shared_captures, tmp_path / "b.duckdb", batched=True)
    single, asked_s = await _store(shared_captures, tmp_path / "s.duckdb", batched=False)
    assert batched.columnar
    for table in ("l2", "trades", "tickers"):
        got, want = _rows(tmp_path / "b.duckdb", table), _rows(tmp_path / "s.duckdb", table)
        assert got == want and len(got) > 50, table
    assert batched.stats == single.stats and batched.book_totals() == single.book_totals()
    assert asked_b == asked_s and asked_b


async def test_connection_hands_over_the_frames_waiting_behind_the_first() -> None:
    """40 frames queued before the reader runs: one call takes the rest with the first, in order."""
    sent = [f'{{"n":{i}}}' for i in range(40)]
    calls: list[list[str]] = []

    async def serve(peer: MemoryWsPeer) -> None:
        for text in sent:
            await peer.send(text)
        await asyncio.sleep(3600)

    transport = MemoryWsTransport(serve)
    conn = FeedConnection(
        "c",
        "ws://memory",
        ["x@depth"],
        lambda text, wall, mono, c: calls.append([text]),
        transport=transport,
        on_frames=lambda texts, wall, mono, c: calls.append(list(texts)),
    )
    task = asyncio.create_task(conn.run())
    for _ in range(100):
        await asyncio.sleep(0)
        if sum(map(len, calls)) == len(sent):
            break
    await conn.stop()
    await task
    assert [t for call in calls for t in call] == sent
    assert conn.frames == len(sent) and max(map(len, calls)) > 1
