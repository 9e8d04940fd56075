"""The DuckDB sink's staged batching: events converted every convert_rows, inserted every batch_rows,
none lost on the way, and a batch with a bad event dropped loudly once without holding up the rest."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from tickpath.clock import ManualClock
from tickpath.events import BookDelta, Trade
from tickpath.sinks.duckdb import DuckDBSink

C = {"session": "s", "venue": "futures", "symbol": "BTCUSDT", "event_time_ms": 1, "transaction_time_ms": 2}


def _deltas(n: int, start: int = 1) -> list[BookDelta]:
    return [
        BookDelta(
            **C,
            seq=i,
            receipt_ns=10 + i,
            first_update_id=100 + i,
            final_update_id=100 + i,
            prev_final_update_id=99 + i,
            bids=[("1.5", str(i))],
            asks=[],
        )
        for i in range(start, start + n)
    ]


async def test_every_row_lands_across_small_convert_and_batch_sizes(tmp_path: Path) -> None:
    """With convert_rows=3 and batch_rows=7, 50 deltas and 5 trades written in odd chunks all land in order."""
    sink = DuckDBSink(tmp_path / "t.duckdb", convert_rows=3, batch_rows=7)
    await sink.start()
    events = _deltas(50)
    for i in range(0, 50, 4):
        await sink.write(events[i : i + 4])
    await sink.write(
        [Trade(**C, seq=i, receipt_ns=i, trade_id=i, price="1.0", qty="2", side="buy") for i in range(1, 6)]
    )
    await sink.close()
    assert sink.stats.accepted == sink.stats.written == 55 and sink.stats.dropped == 0
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    seqs = [r[0] for r in con.execute("SELECT seq FROM l2 ORDER BY seq").fetchall()]
    assert seqs == list(range(1, 51))
    assert con.execute("SELECT bids[1].qty FROM l2 WHERE seq = 42").fetchone() == ("42",)
    assert con.execute("SELECT count(*) FROM trades").fetchone() == (5,)


async def test_an_unconvertible_batch_is_dropped_loudly_once_and_the_rest_still_lands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A level that Arrow cannot take fails its whole conversion batch every time: it is dropped,
    counted and logged in one line, not retried (nor kept to poison every later commit and close)."""
    db = tmp_path / "t.duckdb"
    sink = DuckDBSink(db, convert_rows=3, batch_rows=100, commit_s=None)
    await sink.start()
    bad = BookDelta(
        **C,
        seq=4,
        receipt_ns=1,
        first_update_id=1,
        final_update_id=1,
        prev_final_update_id=0,
        bids=[(1.5, "x")],
        asks=[],
    )  # type: ignore[list-item]  # a float where a string belongs
    with caplog.at_level(logging.ERROR, logger="tickpath.sinks.duckdb"):
        await sink.write([*_deltas(3), bad])
        assert (sink.stats.dropped, sink.stats.errors, sink.buffered) == (4, 1, 0)
        await sink.write(_deltas(3, start=10))
        await sink.close()
    assert [r.getMessage().split()[0] for r in caplog.records] == ["duckdb_convert_failed"]
    assert (sink.stats.accepted, sink.stats.written, sink.stats.dropped) == (7, 3, 4)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT seq FROM l2 ORDER BY seq").fetchall() == [(10,), (11,), (12,)]
    con.close()


@pytest.mark.parametrize("checkpoint_s", [0.0, None])
async def test_checkpoints_put_flushed_rows_in_the_main_file(tmp_path: Path, checkpoint_s: float | None) -> None:
    """While the feed writes, another process can only copy the main file (dq's snapshot of a live store):
    with checkpoints the copy holds every flushed row; left to DuckDB (None) small flushes stay in the WAL."""
    import shutil

    sink = DuckDBSink(tmp_path / "t.duckdb", checkpoint_s=checkpoint_s)
    await sink.start()
    await sink.write(_deltas(20))
    await sink.flush()
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(tmp_path / "t.duckdb", copy)  # the main file only, as a reader beside the writer sees it
    con = duckdb.connect(str(copy), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if checkpoint_s is None:
        assert "l2" not in tables
    else:
        assert con.execute("SELECT count(*) FROM l2").fetchone() == (20,)
    con.close()
    await sink.close()


async def test_checkpoints_follow_the_injected_clock(tmp_path: Path) -> None:
    """checkpoint_s is measured on the sink's clock: no checkpoint before it has passed there, one at
    the first flush after (a copy of the main file holds the rows only then)."""
    import shutil

    clock = ManualClock(autojump=False)
    sink = DuckDBSink(tmp_path / "t.duckdb", checkpoint_s=5.0, commit_s=None, clock=clock)
    await sink.start()

    def copied_rows() -> int:
        copy = tmp_path / "copy.duckdb"
        shutil.copyfile(tmp_path / "t.duckdb", copy)  # the main file only, as a reader beside the writer sees it
        with duckdb.connect(str(copy), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM l2").fetchone()
        copy.unlink()
        return int(row[0]) if row else -1

    await sink.write(_deltas(20))
    await sink.flush()
    assert copied_rows() == 0  # committed, in the WAL: 0 s of the clock's 5 have passed
    clock.advance(6_000_000_000)
    await sink.write(_deltas(20, start=21))
    await sink.flush()
    assert copied_rows() == 40
    await sink.close()
