"""The DuckDB, Parquet and JSON-lines sinks and the sink URL registry."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tickpath import tables
from tickpath.errors import ConfigError, SinkError
from tickpath.events import BookDelta, BookReset, BookSnapshot, Event, SessionInfo, Ticker, Trade, decode_event
from tickpath.sinks.duckdb import DuckDBSink
from tickpath.sinks.jsonl import JsonLinesSink
from tickpath.sinks.parquet import ParquetSink
from tickpath.sinks.registry import open_sink
from tickpath.tables import event_row

DAY_NS = 86_400 * 1_000_000_000


def _events(n: int, *, receipt_ns: int = 1_700_000_000_000_000_000) -> list[Event]:
    common = dict(
        session="s1", venue="futures", symbol="BTCUSDT", event_time_ms=1, transaction_time_ms=2, receipt_ns=receipt_ns
    )
    out: list[Event] = [
        BookSnapshot(**common, seq=1, last_update_id=10, bids=[("100.10", "1.5")], asks=[("100.20", "0.00100000")])
    ]
    for i in range(n):
        out.append(
            Trade(
                **common,
                seq=i + 1,
                trade_id=100 + i,
                price="100.15000000",
                qty="0.001",
                side="buy" if i % 2 else "sell",
            )
        )
        out.append(
            BookDelta(
                **common,
                seq=i + 2,
                first_update_id=11 + i,
                final_update_id=11 + i,
                prev_final_update_id=10 + i,
                bids=[("100.10", str(i))],
                asks=[],
            )
        )
    out.append(Ticker(**common, seq=1, update_id=7, bid_price="1", bid_qty="2", ask_price="3", ask_qty="4"))
    out.append(BookReset(**common, seq=n + 2, reason="gap", last_good_update_id=10 + n))
    return out


async def test_duckdb_sink_writes_every_event_exactly_by_table(tmp_path: Path) -> None:
    """Every accepted event lands once in its channel's table, decimal strings untouched."""
    path = tmp_path / "sub" / "t.duckdb"
    sink = DuckDBSink(path, batch_rows=7)
    await sink.start()
    events = _events(20)
    await sink.write(events[:10])
    await sink.write(events[10:])
    await sink.write_session(
        SessionInfo(
            session="s1",
            venue="futures",
            started_ns=1,
            ended_ns=2,
            symbols=["BTCUSDT"],
            channels=["l2"],
            streams=["btcusdt@depth"],
            clock_offset_ns=5,
            clock_offset_bound_ns=3,
        )
    )
    await sink.close()
    assert sink.stats.accepted == sink.stats.written == len(events)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM trades").fetchone() == (20,)
    assert con.execute("SELECT count(*) FROM l2").fetchone() == (22,)
    assert con.execute("SELECT count(*) FROM tickers").fetchone() == (1,)
    assert con.execute("SELECT price FROM trades ORDER BY seq LIMIT 1").fetchone() == ("100.15000000",)
    row = con.execute("SELECT kind, asks[1].qty FROM l2 WHERE kind='snapshot'").fetchone()
    assert row == ("snapshot", "0.00100000")
    assert con.execute("SELECT reason, last_good_update_id FROM l2 WHERE kind='reset'").fetchone() == ("gap", 30)
    assert con.execute("SELECT clock_offset_ns FROM feed_sessions").fetchone() == (5,)
    con.close()


async def test_duckdb_keeps_the_latest_session_row_per_session_and_venue(tmp_path: Path) -> None:
    """A feed's row at start (no end) is replaced by its row at stop, across flushes and within one;
    another venue's row of the same session stays."""
    path = tmp_path / "t.duckdb"
    sink = DuckDBSink(path)
    await sink.start()

    def row(venue: str, ended: int | None, offset: int) -> dict[str, object]:
        return {
            "session": "s1",
            "venue": venue,
            "started_ns": 1,
            "ended_ns": ended,
            "symbols": ["BTCUSDT"],
            "channels": ["l2"],
            "streams": ["btcusdt@depth"],
            "depth": None,
            "clock_offset_ns": offset,
            "clock_offset_bound_ns": 3,
        }

    await sink.write_session(SessionInfo(**row("futures", None, 5)))
    await sink.write_session(SessionInfo(**row("spot", None, 6)))
    await sink.flush()
    assert sink._con is not None  # the sink holds its file (ATTACHed): read through its connection
    assert sink._con.execute("SELECT venue, ended_ns FROM feed_sessions ORDER BY venue").fetchall() == [
        ("futures", None),
        ("spot", None),
    ]
    await sink.write_session(SessionInfo(**row("futures", 9, 5)))
    await sink.write_session(SessionInfo(**row("futures", 10, 7)))  # two rows in one flush: the later one wins
    await sink.flush()
    await sink.write_session(SessionInfo(**row("futures", None, 8)))  # an open row never replaces a stopped one
    await sink.close()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT venue, ended_ns, clock_offset_ns FROM feed_sessions ORDER BY venue").fetchall() == [
        ("futures", 10, 7),
        ("spot", None, 6),
    ]
    con.close()
    assert tables.latest_sessions([row("spot", 3, 1), row("spot", None, 2)]).to_pylist()[0]["ended_ns"] == 3


async def test_duckdb_rows_match_the_shared_row_mapping(tmp_path: Path) -> None:
    """The columnar Arrow path yields the same rows as ``tables.event_row``."""
    path = tmp_path / "t.duckdb"
    sink = DuckDBSink(path)
    await sink.start()
    events = _events(3)
    await sink.write(events)
    await sink.close()
    con = duckdb.connect(str(path), read_only=True)
    cur = con.execute("SELECT * FROM l2 ORDER BY seq")
    cols = [d[0] for d in cur.description]
    got = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    want = sorted((event_row(e) for e in events if e.channel == "l2"), key=lambda r: r["seq"])
    assert got == want
    con.close()


async def test_duckdb_sink_unwritable_path_is_a_sink_error(tmp_path: Path) -> None:
    """A path that cannot be created is a clear SinkError, not a duckdb traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot open DuckDB"):
        await DuckDBSink(blocker / "t.duckdb").start()


async def test_parquet_sink_partitions_by_venue_channel_date(tmp_path: Path) -> None:
    """Files land under venue=/channel=/date= and together hold every event once."""
    sink = ParquetSink(tmp_path)
    await sink.start()
    day1 = _events(5)
    day2 = _events(3, receipt_ns=1_700_000_000_000_000_000 + DAY_NS)
    await sink.write(day1)
    await sink.write(day2)
    await sink.close()
    dirs = sorted({str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet")})
    assert "venue=futures/channel=l2/date=2023-11-14" in dirs
    assert "venue=futures/channel=trades/date=2023-11-15" in dirs
    trades = pq.read_table(tmp_path / "venue=futures" / "channel=trades").num_rows
    assert trades == 8
    assert not list(tmp_path.rglob("*.tmp"))
    assert sink.stats.written == len(day1) + len(day2)


async def test_jsonl_sink_lines_decode_back_to_the_events() -> None:
    """Each event becomes one JSON line that decodes to the same event."""
    buf = io.BytesIO()
    sink = JsonLinesSink("-", stream=buf)
    await sink.start()
    events = _events(4)
    await sink.write(events)
    await sink.close()
    lines = buf.getvalue().splitlines()
    assert [decode_event(line) for line in lines] == events


def test_registry_maps_urls_to_sinks(tmp_path: Path) -> None:
    """duckdb/parquet/jsonl URLs open the right sink with the right target; unknown schemes fail."""
    d = open_sink(f"duckdb:{tmp_path}/x.duckdb")
    assert isinstance(d, DuckDBSink) and d.path == tmp_path / "x.duckdb"
    assert isinstance(open_sink("duckdb"), DuckDBSink)
    assert str(open_sink("duckdb").path) == "data/ticks.duckdb"  # type: ignore[attr-defined]
    p = open_sink(f"parquet:{tmp_path}/pq")
    assert isinstance(p, ParquetSink) and p.root == tmp_path / "pq"
    j = open_sink("jsonl:-")
    assert isinstance(j, JsonLinesSink) and j.target == "-"
    with pytest.raises(ConfigError, match="unknown sink"):
        open_sink("kafka://x")
    with pytest.raises(ConfigError, match="needs a directory"):
        open_sink("parquet:")
