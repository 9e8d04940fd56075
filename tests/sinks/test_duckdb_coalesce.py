"""The DuckDB sink's coalescing of Arrow tables: each table's whole batch_rows committed as soon as it
has them, the rest at the commit deadline, the bytes bound or close; rows exactly as sent, none held
past the bounds, and a failed insert a SinkError that keeps every row for the next commit."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from tests.support.gate import ThreadGate
from tickpath.clock import ManualClock
from tickpath.errors import SinkError
from tickpath.events import BookDelta, SessionInfo, Trade
from tickpath.sinks.base import TableBatch
from tickpath.sinks.coalesce import ROW_GROUP_ROWS, TableBuffer
from tickpath.sinks.duckdb import DuckDBSink, arrow_tables
from tickpath.tables import SCHEMAS, duckdb_ddl

C = {"session": "s", "venue": "futures", "symbol": "BTCUSDT", "event_time_ms": 1, "transaction_time_ms": 2}


def _batch(start: int, deltas: int, trades: int = 0) -> TableBatch:
    """``deltas`` l2 rows and ``trades`` trade rows numbered from ``start``, as the core hands them."""
    events: list[BookDelta | Trade] = [
        BookDelta(
            **C,
            seq=i,
            receipt_ns=i,
            first_update_id=i,
            final_update_id=i,
            prev_final_update_id=i - 1,
            bids=[("1.5", str(i))],
            asks=[("1.6", "0.001")],
        )
        for i in range(start, start + deltas)
    ]
    events += [Trade(**C, seq=i, receipt_ns=i, trade_id=i, price="2.0", qty="3", side="buy") for i in range(trades)]
    return TableBatch(arrow_tables(events), len(events))


def _count(path: Path, table: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        con.close()


async def test_whole_multiples_are_committed_as_they_fill_and_the_rest_at_close(tmp_path: Path) -> None:
    """With batch_rows=10, batches of 7 l2 rows commit 10, 20, ... as each multiple fills (never more
    than 9 held), and close commits the rest: every row once, in order, levels intact."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, batch_rows=10, commit_s=None)
    await sink.start()
    sent = 0
    for k in range(9):
        await sink.write_tables(_batch(1 + 7 * k, 7))
        sent += 7
        assert sink.stats.written == sent // 10 * 10  # whole multiples only
        assert sink.buffered == sent % 10 < sink.batch_rows  # the row bound
    await sink.close()
    assert sink.stats.accepted == sink.stats.written == 63 and sink.buffered == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT seq, bids[1].qty, asks[1].price FROM l2 ORDER BY rowid").fetchall()
    con.close()
    assert rows == [(i, str(i), "1.6") for i in range(1, 64)]


async def test_a_table_below_the_bound_waits_while_a_full_one_commits(tmp_path: Path) -> None:
    """The cut is per storage table: 12 l2 rows commit 10 of them; the 3 trades stay held until close."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, batch_rows=10, commit_s=None)
    await sink.start()
    await sink.write_tables(_batch(1, 12, trades=3))
    assert sink.stats.written == 10 and sink.buffered == 5
    await sink.close()
    assert (_count(db, "l2"), _count(db, "trades"), sink.stats.written) == (12, 3, 15)


async def test_the_bytes_bound_commits_everything_held(tmp_path: Path) -> None:
    """Far below batch_rows but over batch_bytes, every write commits all it holds."""
    sink = DuckDBSink(tmp_path / "t.duckdb", batch_bytes=1, commit_s=None)
    await sink.start()
    await sink.write_tables(_batch(1, 5, trades=2))
    assert sink.stats.written == 7 and sink.buffered == 0
    await sink.close()


async def test_rows_are_committed_once_the_oldest_has_waited_commit_s_with_no_more_traffic(tmp_path: Path) -> None:
    """The sink's own timer (on the injected clock) commits a lone batch at commit_s, with no further write."""
    clock = ManualClock(autojump=False)
    sink = DuckDBSink(tmp_path / "t.duckdb", commit_s=1.0, clock=clock)
    assert sink.flushes_itself  # the pipeline leaves the timing to the sink
    await sink.start()
    real, calls = sink._insert, []

    def counted(*args: Any) -> None:
        calls.append(1)
        real(*args)

    sink._insert = counted  # type: ignore[method-assign]
    await sink.write_tables(_batch(1, 5))
    clock.advance(999_000_000)
    for _ in range(20):
        await asyncio.sleep(0)
    # not due yet: no commit started (written stays 0 for a while after one has, its insert in a thread)
    assert not sink._lock.locked() and not calls
    clock.advance(1_000_000)
    for _ in range(500):  # the insert runs in a worker thread
        if sink.stats.written:
            break
        await asyncio.sleep(0.01)
    assert sink.stats.written == 5 and sink.buffered == 0
    await sink.close()


async def test_a_failed_insert_is_a_sink_error_and_rolls_back_and_keeps_every_row(tmp_path: Path) -> None:
    """l2 missing mid-commit: SinkError, the transaction's trades are rolled back too, nothing counted
    written, all held; once the table is back, close commits each row exactly once."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, commit_s=None)
    await sink.start()
    assert sink._con is not None
    await sink.write_tables(_batch(1, 4, trades=2))
    sink._con.execute("DROP TABLE l2")
    with pytest.raises(SinkError, match="insert into"):
        await sink.flush()
    assert sink.stats.written == 0 and sink.buffered == 6 and sink.stats.errors == 1
    row = sink._con.execute("SELECT count(*) FROM trades").fetchone()
    assert row == (0,)  # rolled back with the failed l2 insert
    sink._con.execute(duckdb_ddl("l2"))
    await sink.write_tables(_batch(5, 1))
    await sink.close()
    assert (_count(db, "l2"), _count(db, "trades"), sink.stats.written) == (5, 2, 7)


def test_the_buffer_cuts_inside_a_chunk_and_keeps_the_remainder_and_its_time() -> None:
    """A cut at 10 over chunks of 4, 4, 4 takes two chunks and 2 rows of the third; the rest (2 rows)
    keeps the third chunk's acceptance time; chunks added after the cut stay held."""
    buf = TableBuffer()
    for t in (1, 2, 3):
        buf.add(_batch(4 * t, 4).tables, now_ns=t)
    taken = buf.take(10)
    assert taken.rows == 10 and taken.tables["l2"].column("seq").to_pylist() == list(range(4, 14))
    buf.add(_batch(100, 1).tables, now_ns=9)
    buf.drop(taken)
    assert buf.rows == 3 and buf.oldest_ns() == 3 and buf.table_rows("l2") == 3
    assert buf.take().tables["l2"].column("seq").to_pylist() == [14, 15, 100]


def _l2_rows(n: int) -> pa.Table:
    schema = SCHEMAS["l2"]
    cols = {f.name: pa.nulls(n, f.type) for f in schema}
    cols["seq"] = pa.array(range(n), pa.int64())
    cols["bids"] = pa.array([[{"price": f"{i}.5", "qty": "1.25"}] for i in range(n)], schema.field("bids").type)
    return pa.table(cols, schema=schema)


async def test_a_whole_row_group_goes_to_the_table_not_the_wal(tmp_path: Path) -> None:
    """Why the cut is at row groups: DuckDB writes a commit of ROW_GROUP_ROWS rows into a non-empty
    table of the sink's file straight to its blocks (the WAL stays small), while one vector fewer goes
    through the WAL; close leaves no WAL behind."""
    sizes = {}
    for n in (ROW_GROUP_ROWS - 2048, ROW_GROUP_ROWS):
        db = tmp_path / f"{n}.duckdb"
        sink = DuckDBSink(db, checkpoint_s=None, commit_s=None)
        await sink.start()
        assert sink._con is not None
        sink._con.execute("SET checkpoint_threshold = '1GB'")  # no automatic checkpoint empties the WAL
        await sink.write_tables(TableBatch({"l2": _l2_rows(10)}, 10))
        await sink.flush()  # the table is no longer empty (an empty one always takes the direct path)
        await sink.write_tables(TableBatch({"l2": _l2_rows(n)}, n))
        await sink.flush()
        wal = db.with_name(db.name + ".wal")
        sizes[n] = wal.stat().st_size if wal.exists() else 0
        assert sink.stats.written == n + 10
        await sink.close()
        assert not wal.exists() and _count(db, "l2") == n + 10
    assert sizes[ROW_GROUP_ROWS] * 4 < sizes[ROW_GROUP_ROWS - 2048], sizes


async def test_a_commit_cancelled_midway_is_counted_once_and_not_inserted_again(tmp_path: Path) -> None:
    """A thread cannot be stopped: a flush cancelled while its insert runs still accounts for the commit
    before letting go, so close neither re-inserts those rows nor finds the connection busy."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, commit_s=None)
    await sink.start()
    gate = ThreadGate(sink, "_insert")
    await sink.write_tables(_batch(1, 5))
    task = asyncio.create_task(sink.flush())
    await gate.started()
    task.cancel()
    await asyncio.sleep(0)
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.stats.written == 5 and sink.buffered == 0
    await sink.close()
    assert _count(db, "l2") == 5


async def test_events_not_yet_converted_are_committed_at_the_deadline_too(tmp_path: Path) -> None:
    """Events (the object path, below convert_rows) wait no longer than commit_s either."""
    clock = ManualClock(autojump=False)
    sink = DuckDBSink(tmp_path / "t.duckdb", commit_s=0.5, clock=clock)
    await sink.start()
    await sink.write([Trade(**C, seq=i, receipt_ns=i, trade_id=i, price="2.0", qty="3", side="buy") for i in range(3)])
    assert sink.buffered == 3 and sink.stats.written == 0
    clock.advance(500_000_000)
    for _ in range(500):
        if sink.stats.written:
            break
        await asyncio.sleep(0.01)
    assert sink.stats.written == 3 and sink.buffered == 0
    await sink.close()
    assert _count(tmp_path / "t.duckdb", "trades") == 3


async def test_a_failed_checkpoint_after_the_commit_neither_fails_the_flush_nor_reinserts(tmp_path: Path) -> None:
    """The checkpoint follows a commit: its failure is counted and logged, and the committed rows are
    released (before, they stayed held as a failed insert and close inserted them again: 10 of 5)."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, commit_s=None, checkpoint_s=0.0, row_group_rows=None)
    await sink.start()
    real, calls = sink._checkpoint, []

    def fails_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise duckdb.IOException("disk full during checkpoint")
        real()

    sink._checkpoint = fails_once  # type: ignore[method-assign]
    await sink.write_tables(_batch(0, 5))
    await sink.flush()
    assert (sink.stats.written, sink.buffered, sink.stats.errors, len(calls)) == (5, 0, 1, 1)
    await sink.close()
    assert _count(db, "l2") == 5 and sink.stats.written == 5


async def test_a_commit_cancelled_twice_midway_still_runs_to_its_end_under_the_lock(tmp_path: Path) -> None:
    """A second cancel() while the insert thread runs (shutdown escalating, a timeout) must not let
    go either: the lock stays held until the commit is counted, so close does not insert it again."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, commit_s=None)
    await sink.start()
    gate = ThreadGate(sink, "_insert")
    await sink.write_tables(_batch(1, 5))
    task = asyncio.create_task(sink.flush())
    await gate.started()
    for _ in range(2):
        task.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
    assert not task.done() and sink._lock.locked()  # the thread is still inserting
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.stats.written == 5 and sink.buffered == 0 and not sink._lock.locked()
    await sink.close()
    assert _count(db, "l2") == 5


async def _until(cond: Any, passes: int = 500) -> None:
    """Let the loop (and the sink's worker threads) run until ``cond()``, a bounded number of passes."""
    for _ in range(passes):
        if cond():
            return
        await asyncio.sleep(0.01)


async def test_a_failed_timed_commit_is_retried_one_period_later_not_at_once(tmp_path: Path) -> None:
    """A full disk: the timer's failed insert keeps the rows and tries again only commit_s later (it
    retried at once, forever: 3,610 attempts in 0.5 s); the rows are still committed once it heals."""
    clock = ManualClock(autojump=False)
    sink = DuckDBSink(tmp_path / "t.duckdb", commit_s=1.0, clock=clock)
    await sink.start()
    real, calls = sink._insert, []

    def disk_full(*args: Any) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise duckdb.IOException("disk full")
        real(*args)

    sink._insert = disk_full  # type: ignore[method-assign]
    await sink.write_tables(_batch(1, 5))
    clock.advance(1_000_000_000)
    await _until(lambda: sink.stats.errors == 1 and not sink._lock.locked())
    for _ in range(30):  # room for a spin to show
        await asyncio.sleep(0.01)
    assert len(calls) == 1 and sink.buffered == 5
    clock.advance(999_000_000)
    for _ in range(30):
        await asyncio.sleep(0.01)
    assert len(calls) == 1  # not due yet
    clock.advance(1_000_000)
    await _until(lambda: len(calls) == 2 and not sink._lock.locked())
    clock.advance(1_000_000_000)
    await _until(lambda: sink.stats.written == 5)
    assert (len(calls), sink.stats.errors, sink.buffered) == (3, 2, 0)
    await sink.close()


def _trades(n: int) -> list[Trade]:
    return [Trade(**C, seq=i, receipt_ns=i, trade_id=i, price="2.0", qty="3", side="buy") for i in range(n)]


async def test_an_unconvertible_event_does_not_keep_the_rows_held_from_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 rows held as tables and one event whose conversion fails: close commits the 1,000 (it
    committed nothing), the event is counted dropped, and a later flush does not try it again."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, commit_s=None)
    await sink.start()
    await sink.write_tables(_batch(1, 1000))
    calls = []

    def bad(events: Any) -> Any:
        calls.append(len(events))
        raise pa.ArrowInvalid("one bad event")

    monkeypatch.setattr("tickpath.sinks.duckdb.arrow_tables", bad)
    await sink.write(_trades(1))
    await sink.flush()
    await sink.close()
    assert calls == [1]
    assert (sink.stats.accepted, sink.stats.written, sink.stats.dropped, sink.buffered) == (1001, 1000, 1, 0)
    assert _count(db, "l2") == 1000


async def test_events_being_converted_still_count_towards_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events accepted at 0.5 s whose conversion is under way when the timer looks (1.0 s) are in
    neither _buf nor the held tables: the timer must still wake at 1.5 s for them, not at 2.0 s."""
    clock = ManualClock(autojump=False)
    sink = DuckDBSink(tmp_path / "t.duckdb", commit_s=1.0, convert_rows=3, clock=clock)
    await sink.start()
    for _ in range(5):
        await asyncio.sleep(0)  # the timer sleeps until 1.0 s (nothing held at 0)
    started, release = threading.Event(), threading.Event()

    def slow(events: Any) -> Any:
        started.set()
        release.wait(10)
        return arrow_tables(events)

    monkeypatch.setattr("tickpath.sinks.duckdb.arrow_tables", slow)
    clock.advance(500_000_000)
    writer = asyncio.create_task(sink.write(_trades(3)))
    await asyncio.to_thread(started.wait, 10)
    clock.advance(500_000_000)
    for _ in range(20):
        await asyncio.sleep(0)  # the timer wakes at 1.0 s and picks its next deadline
    release.set()
    await writer
    assert sink.stats.written == 0 and sink.buffered == 3
    clock.advance(500_000_000)
    await _until(lambda: sink.stats.written == 3)
    assert sink.stats.written == 3 and sink.buffered == 0
    await sink.close()


async def test_close_commits_and_closes_even_when_the_timer_had_died(tmp_path: Path) -> None:
    """The timer died of a bug (not a SinkError) mid-commit: close still commits the rows held and the
    session row kept, closes the file, and only then reports the timer's failure as a SinkError
    (it re-raised the bug and skipped all of that: rows lost, the file left open)."""
    db = tmp_path / "t.duckdb"
    clock = ManualClock(autojump=False)
    sink = DuckDBSink(db, commit_s=1.0, clock=clock)
    await sink.start()
    real, broken = sink._insert, [True]

    def flaky(*args: Any) -> None:
        if broken[0]:
            raise RuntimeError("a bug")
        real(*args)

    sink._insert = flaky  # type: ignore[method-assign]
    await sink.write_session(SessionInfo(session="s", venue="futures", started_ns=1, symbols=["BTCUSDT"]))
    await sink.write_tables(_batch(1, 5))
    clock.advance(1_000_000_000)
    timer = sink._timer
    assert timer is not None
    await _until(timer.done)
    assert isinstance(timer.exception(), RuntimeError)
    broken[0] = False
    with pytest.raises(SinkError, match=r"timer .* had failed: RuntimeError: a bug"):
        await sink.close()
    assert sink._con is None and sink.stats.written == 5 and sink.buffered == 0
    assert (_count(db, "l2"), _count(db, "feed_sessions")) == (5, 1)
