"""What a killed ``feed --workers`` worker leaves on disk: the Parquet sink's session row comes before
its events, and rows accepted more than ``flush_s`` before a kill are in files."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tickpath.clock import VirtualClock, run_virtual
from tickpath.errors import ConfigError
from tickpath.events import Event, SessionInfo, Trade
from tickpath.feed import Feed
from tickpath.sim import SimConfig, Simulator
from tickpath.sinks.parquet import ParquetSink
from tickpath.sinks.registry import open_sink

from .helpers import feed_config

WALL0 = 1_700_000_000_000_000_000


def trades(n: int, *, session: str = "s1", start: int = 0) -> list[Event]:
    return [
        Trade(
            session=session,
            venue="spot",
            symbol="BTCUSDT",
            seq=start + i + 1,
            event_time_ms=1,
            transaction_time_ms=1,
            receipt_ns=WALL0 + i,
            trade_id=start + i,
            price="100.0",
            qty="0.1",
            side="buy",
        )
        for i in range(n)
    ]


def session_info(session: str = "s1", *, ended: bool = False) -> SessionInfo:
    return SessionInfo(session=session, venue="spot", started_ns=WALL0, ended_ns=WALL0 + 5 if ended else None)


async def test_first_session_row_is_on_disk_before_any_event_file(tmp_path: Path) -> None:
    """The start row is written by write_session itself; the stop row after the events of its flush,
    so a kill at any moment leaves a prefix of: start row, events, stop row."""
    sink = ParquetSink(tmp_path, flush_s=None)
    await sink.start()
    await sink.write_session(session_info())
    rows = pq.read_table(tmp_path / "feed_sessions").to_pylist()
    assert [(r["session"], r["ended_ns"]) for r in rows] == [("s1", None)]  # before any flush
    await sink.write(trades(10))
    await sink.write_session(session_info(ended=True))
    assert len(list((tmp_path / "feed_sessions").glob("*.parquet"))) == 1  # the stop row waits for its events
    await sink.close()
    kinds = ["session" if f.parent.name == "feed_sessions" else "events" for f in sink.files]
    assert kinds == ["session", "events", "session"]
    assert pq.read_table(tmp_path / "venue=spot").num_rows == 10


# A process that accepts a batch of 10 trades every 0.3 s (virtual time) into a ParquetSink with
# flush_s=1, prints each batch's accept time, and 0.2 s after its 10th batch freezes (the loop
# blocks, so nothing more can be written) until it is SIGKILLed. Virtual time makes what is on disk
# exact; no batch and no flush fall on the same instant (flushes at 1.0 and 2.2 s, frozen at 2.9 s).
CHILD = r"""
import sys, time
from tickpath.clock import VirtualClock, run_virtual
from tickpath.events import SessionInfo, Trade
from tickpath.sinks.parquet import ParquetSink

clock = VirtualClock()
root = sys.argv[1]

async def main():
    sink = ParquetSink(root, flush_s=1.0, clock=clock)
    await sink.start()
    await sink.write_session(SessionInfo(session="k1", venue="spot", started_ns=clock.wall_ns()))
    for i in range(10):
        batch = [
            Trade(session="k1", venue="spot", symbol="BTCUSDT", seq=10 * i + j + 1, event_time_ms=1,
                  transaction_time_ms=1, receipt_ns=clock.wall_ns(), trade_id=10 * i + j, price="1",
                  qty="1", side="buy")
            for j in range(10)
        ]
        await sink.write(batch)
        print(i, clock.monotonic_ns(), flush=True)
        await clock.sleep_until_ns(clock.monotonic_ns() + (300_000_000 if i < 9 else 200_000_000))
    print("ready", clock.monotonic_ns(), flush=True)
    time.sleep(600)

run_virtual(main, clock)
"""


def test_sigkilled_process_keeps_rows_accepted_over_flush_s_before_the_kill(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    accepted: dict[int, int] = {}  # batch -> accept time (virtual ns)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            word, ns = line.split()
            if word == "ready":
                killed_at = int(ns)
                break
            accepted[int(word)] = int(ns)
        else:
            raise AssertionError(f"the child ended early (exit {proc.wait()})")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    files = sorted((tmp_path / "venue=spot").rglob("*.parquet"))
    on_disk = {tid // 10 for f in files for tid in pq.read_table(f, columns=["trade_id"])["trade_id"].to_pylist()}
    old_enough = {i for i, t in accepted.items() if killed_at - t > 1_000_000_000}
    assert old_enough and old_enough <= on_disk, (sorted(old_enough), sorted(on_disk))
    assert on_disk == set(range(8))  # flushed at 1.0 s (batches 0-3) and 2.2 s (4-7); 8 and 9 buffered
    assert len(files) == 2  # one file a second, not one per batch
    assert [r["session"] for r in pq.read_table(tmp_path / "feed_sessions").to_pylist()] == ["k1"]


def test_flush_s_is_a_sink_url_option_and_bad_values_are_config_errors(tmp_path: Path) -> None:
    sink = open_sink(f"parquet:{tmp_path}?flush_s=5&batch_rows=100")
    assert isinstance(sink, ParquetSink) and sink.root == tmp_path
    assert (sink.flush_s, sink.batch_rows, sink.flushes_itself) == (5.0, 100, True)
    off = open_sink(f"parquet:{tmp_path}?flush_s=off")
    assert isinstance(off, ParquetSink) and off.flush_s is None and not off.flushes_itself
    assert open_sink(f"parquet:{tmp_path}").flush_s == 1.0  # type: ignore[attr-defined]
    for bad in ("flush_s=soon", "flush_s=-1", "flush_s=inf", "rows=5"):
        with pytest.raises(ConfigError, match="parquet"):
            open_sink(f"parquet:{tmp_path}?{bad}")


def test_a_feed_flushes_its_parquet_sink_every_second_of_its_own_clock(tmp_path: Path) -> None:
    """In virtual time the run takes well under a wall second; the files still come once a virtual
    second, because the sink keeps time on the feed's clock, not the machine's."""
    clock = VirtualClock()
    lake = tmp_path / "lake"

    async def main() -> ParquetSink:
        async with Simulator(SimConfig(venues=("spot",), symbols=("BTCUSDT",), rate=50.0), clock=clock) as sim:
            feed = Feed(
                feed_config(sim.endpoint("spot"), "spot", ("BTCUSDT",), sinks=(f"parquet:{lake}",), duration_s=8.0),
                clock=clock,
            )
            await feed.run()
            sink = feed.sinks[0]
            assert isinstance(sink, ParquetSink)
            return sink

    sink = run_virtual(main, clock)
    trade_files = [f for f in sink.files if "channel=trades" in str(f)]
    assert 6 <= len(trade_files) <= 10, len(trade_files)  # ~one a second over 8 s (was one, at close)
    on_disk = sum(pq.read_metadata(f).num_rows for f in sink.files if f.parent.name != "feed_sessions")
    assert on_disk == sink.stats.written == sink.stats.accepted > 0
