"""The Parquet sink takes the native core's Arrow tables as they are (the columnar path): the files
hold exactly the rows the same events written one by one would, partitioned the same way."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest

from tests.dq.market import build_events
from tests.feed.helpers import all_synced, assert_books_match_truth, feed_config, run_until
from tests.support.gate import ThreadGate
from tests.virtual_time import virtual_time
from tickpath.clock import ManualClock, VirtualClock
from tickpath.errors import SinkError
from tickpath.events import Event
from tickpath.feed import Feed
from tickpath.sim import SimConfig, Simulator
from tickpath.sinks.base import TableBatch
from tickpath.sinks.duckdb import arrow_tables
from tickpath.sinks.parquet import ParquetSink
from tickpath.venues.binance.processor import native_available

DAY_NS = 86_400 * 1_000_000_000


def _mixed() -> list[Event]:
    """A market with a second session and rows on the next UTC day, so a batch spans partitions."""
    events = build_events(20.0)
    out = []
    for i, e in enumerate(events):
        if i % 3 == 0:
            e = msgspec.structs.replace(e, session="other")
        if i % 5 == 0:
            e = msgspec.structs.replace(e, receipt_ns=e.receipt_ns + DAY_NS)
        out.append(e)
    return out


def _files(root: Path) -> dict[str, list[dict[str, object]]]:
    """Rows per partition directory (relative), sorted, from every data file under ``root``."""
    out: dict[str, list[dict[str, object]]] = {}
    for f in sorted(root.rglob("*.parquet")):
        if f.parent.name == "feed_sessions":
            continue
        rows = pq.read_table(f).to_pylist()
        out.setdefault(str(f.parent.relative_to(root)), []).extend(rows)
    return {
        k: sorted(v, key=lambda r: (str(r["session"]), str(r["symbol"]), str(r["seq"]).zfill(20)))
        for k, v in out.items()
    }


async def test_tables_and_events_write_the_same_rows_to_the_same_partitions(tmp_path: Path) -> None:
    events = _mixed()
    by_events = ParquetSink(tmp_path / "events", flush_s=None)
    by_tables = ParquetSink(tmp_path / "tables", flush_s=None)
    for sink in (by_events, by_tables):
        await sink.start()
    for i in range(0, len(events), 500):
        chunk = events[i : i + 500]
        await by_events.write(chunk)
        await by_tables.write_tables(TableBatch(arrow_tables(chunk), len(chunk)))
    assert by_tables.buffered == len(events)
    for sink in (by_events, by_tables):
        await sink.close()
    got, want = _files(tmp_path / "tables"), _files(tmp_path / "events")
    assert len(want) > 3  # several venues, days and tables: the split was exercised
    assert got == want
    assert by_tables.stats.written == by_tables.stats.accepted == len(events) and by_tables.buffered == 0


@virtual_time
async def test_a_feed_into_parquet_takes_the_columnar_path(tmp_path: Path, virtual_clock: VirtualClock) -> None:
    """With the native core, a parquet: feed hands the core's tables to the sink: every emitted event
    is a row on disk, and the books are the simulator's."""
    if not native_available():
        pytest.skip("native core not built (make native)")
    symbols = ("BTCUSDT", "ETHUSDT")
    cfg = SimConfig(venues=("futures",), symbols=symbols, seed=3, rate=200.0, book_levels=40)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        fc = feed_config(sim.endpoint("futures"), "futures", symbols, sinks=(f"parquet:{tmp_path}",))
        feed = Feed(fc, clock=virtual_clock)
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 100)
        assert feed.pipeline.columnar and feed.engine is not None and feed.engine.columnar
        assert_books_match_truth(feed, sim)
    files = [f for f in tmp_path.rglob("*.parquet") if f.parent.name != "feed_sessions" and f.name[0] != "_"]
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    assert rows == summary.emitted > 500 and summary.gaps == 0


async def test_close_during_a_timed_flush_waits_for_it_and_counts_its_rows(tmp_path: Path) -> None:
    """close() while the flush timer's write runs in its thread: the write is finished and accounted,
    not cancelled under way (the thread would go on writing rows the sink no longer counts)."""
    clock = ManualClock(autojump=False)
    sink = ParquetSink(tmp_path, flush_s=1.0, clock=clock)
    gate = ThreadGate(sink, "_write_batches")
    await sink.start()
    events = build_events(2.0)[:300]
    await sink.write(events)
    clock.advance(2_000_000_000)  # the oldest row is due: the timer's flush starts its write
    await gate.started()
    closing = asyncio.create_task(sink.close())
    await asyncio.sleep(0.05)
    gate.release()
    await asyncio.wait_for(closing, 10)
    assert sink.stats.written == sink.stats.accepted == len(events) and sink.buffered == 0
    assert sum(len(rows) for rows in _files(tmp_path).values()) == len(events)


async def test_a_flush_cancelled_twice_mid_write_still_finishes_and_counts_it(tmp_path: Path) -> None:
    """Any cancel of a flush (not only close's of the timer), even repeated, while its thread writes:
    the write finishes under the lock and is counted, and close writes those rows no second time."""
    sink = ParquetSink(tmp_path, flush_s=None)
    gate = ThreadGate(sink, "_write_batches")
    await sink.start()
    events = build_events(2.0)[:300]
    await sink.write(events)
    flushing = asyncio.create_task(sink.flush())
    await gate.started()
    for _ in range(2):
        flushing.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
    assert not flushing.done() and sink._lock.locked()
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert sink.stats.written == len(events) and sink.buffered == 0
    await sink.close()
    assert sum(len(rows) for rows in _files(tmp_path).values()) == len(events)


async def test_close_writes_everything_even_when_the_flush_timer_had_died(tmp_path: Path) -> None:
    """The timer died of a bug in a write: its rows went back to the buffers, and close still writes
    them, then reports the timer's failure (it re-raised the bug and wrote nothing)."""
    clock = ManualClock(autojump=False)
    sink = ParquetSink(tmp_path, flush_s=1.0, clock=clock)
    write, broken = sink._write_batches, [True]

    def flaky(*args: Any) -> None:
        if broken[0]:
            raise RuntimeError("a bug")
        write(*args)

    sink._write_batches = flaky  # type: ignore[method-assign]
    await sink.start()
    events = build_events(2.0)[:300]
    await sink.write(events)
    clock.advance(1_000_000_000)
    timer = sink._timer
    assert timer is not None
    for _ in range(500):
        if timer.done():
            break
        await asyncio.sleep(0.01)
    assert isinstance(timer.exception(), RuntimeError) and sink.buffered == len(events)
    broken[0] = False
    with pytest.raises(SinkError, match=r"timer .* had failed: RuntimeError: a bug"):
        await sink.close()
    assert sink.stats.written == len(events) and sink.buffered == 0
    assert sum(len(rows) for rows in _files(tmp_path).values()) == len(events)


@pytest.mark.parametrize("columnar", [False, True], ids=["events", "tables"])
async def test_a_flush_failing_partway_leaves_no_file_and_its_retry_writes_each_row_once(
    tmp_path: Path, columnar: bool
) -> None:
    """The day after's partition cannot be created (a file stands where its directory goes: a real
    OSError): the files of the same flush already written must not stay, or the retry would put
    their rows on disk twice."""
    events = build_events(4.0)
    half = len(events) // 2
    events = events[:half] + [msgspec.structs.replace(e, receipt_ns=e.receipt_ns + DAY_NS) for e in events[half:]]
    sink = ParquetSink(tmp_path, flush_s=None)
    await sink.start()
    if columnar:
        await sink.write_tables(TableBatch(arrow_tables(events), len(events)))
    else:
        await sink.write(events)
    day2 = {f"date={_date_of(e.receipt_ns)}" for e in events[half:]}
    (blocker,) = day2
    for venue in {e.venue for e in events}:
        for table in {"l2", "trades", "tickers"}:
            d = tmp_path / f"venue={venue}" / f"channel={table}"
            d.mkdir(parents=True, exist_ok=True)
            (d / blocker).write_text("not a directory")
    with pytest.raises(SinkError):
        await sink.flush()
    assert not list(tmp_path.rglob("*.parquet*")) and not sink.files  # nothing of the failed flush stays
    assert sink.buffered == len(events) and sink.stats.written == 0
    for f in tmp_path.rglob(blocker):
        f.unlink()
    await sink.close()
    assert sum(len(rows) for rows in _files(tmp_path).values()) == len(events) == sink.stats.written


def _date_of(receipt_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(receipt_ns // 1_000_000_000))
