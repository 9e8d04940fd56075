"""What a killed ``feed --workers`` worker leaves on disk: the Parquet sink's session row comes before
its events, and rows accepted more than ``flush_s`` before a kill are in files."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tickpath.events import Event, SessionInfo, Trade
from tickpath.sinks.parquet import ParquetSink

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
    sink = ParquetSink(tmp_path)
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
