"""The sink contract (sinks/base.py) and the registry table: every scheme once, every sink whole."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import duckdb
import pytest

from tests.ingest.support import make_events
from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo
from tickpath.feed.pipeline import Pipeline
from tickpath.sinks.base import Sink, SinkStats
from tickpath.sinks.duckdb import DuckDBSink
from tickpath.sinks.jsonl import JsonLinesSink
from tickpath.sinks.nats import NatsSinkStats
from tickpath.sinks.parquet import ParquetSink
from tickpath.sinks.pubsub import PubSubSinkStats
from tickpath.sinks.registry import SCHEMES, SINKS, open_sink

SESSION = SessionInfo(session="sess1", venue="futures", started_ns=1, symbols=["BTCUSDT"], streams=["btcusdt@depth"])


def _url(scheme: str, tmp: Path) -> str:
    return {
        "duckdb": f"duckdb:{tmp}/t.duckdb",
        "parquet": f"parquet:{tmp}/lake",
        "jsonl": f"jsonl:{tmp}/e.jsonl",
        "nats": "nats://127.0.0.1:4222?stream=T",
        "pubsub": "pubsub://proj/prefix",
    }[scheme]


def test_the_table_lists_each_scheme_once_with_its_usage() -> None:
    """One row per scheme, no scheme twice, and each row's usage spells a URL of its own scheme."""
    schemes = [k.scheme for k in SINKS]
    assert len(schemes) == len(set(schemes)) and tuple(schemes) == SCHEMES
    assert set(SCHEMES) == {"duckdb", "parquet", "jsonl", "nats", "pubsub"}
    for kind in SINKS:
        assert kind.usage.partition(":")[0] == kind.scheme


def test_an_unknown_scheme_names_every_known_url_form() -> None:
    """The error for a scheme not in the table lists each row's usage, so it cannot fall behind the table."""
    with pytest.raises(ConfigError) as err:
        open_sink("kafka://broker:9092")
    for kind in SINKS:
        assert kind.usage in str(err.value)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_registered_sink_implements_the_contract(scheme: str, tmp_path: Path) -> None:
    """Each scheme opens a concrete Sink (no abstract method left) whose stats are a typed SinkStats,
    base counters first, with nothing held before it has accepted anything."""
    sink = open_sink(_url(scheme, tmp_path))
    assert isinstance(sink, Sink) and not inspect.isabstract(type(sink))
    assert sink.name == scheme and sink.buffered == 0
    assert isinstance(sink.stats, SinkStats) and dataclasses.is_dataclass(sink.stats)
    names = list(sink.stats.as_dict())
    assert names[:4] == ["accepted", "written", "dropped", "errors"]
    assert sink.stats.gauges() <= set(names)
    assert all(isinstance(v, int) for v in sink.stats.as_dict().values())


def test_levels_are_marked_as_gauges_and_pending_is_the_spool() -> None:
    """The bus sinks' levels (spool, in flight, outstanding) are gauges, their counts are not; only
    the NATS spool counts as pending (kept for a later run)."""
    assert NatsSinkStats.gauges() == {"spool_pending", "inflight"}
    assert PubSubSinkStats.gauges() == {"outstanding", "outstanding_max"}
    assert SinkStats.gauges() == frozenset()
    st = NatsSinkStats(accepted=5, spool_pending=3)
    assert st.pending == 3 and SinkStats(accepted=5).pending == 0 and PubSubSinkStats(outstanding=2).pending == 0


def test_a_stats_copy_does_not_follow_later_counting() -> None:
    """What a snapshot holds is frozen in time: counting on the sink's stats leaves the copy alone."""
    live = NatsSinkStats(accepted=1)
    copy = live.copy()
    live.accepted += 1
    live.spooled += 4
    assert (copy.accepted, copy.spooled, type(copy)) == (1, 0, NatsSinkStats)


@pytest.mark.parametrize("scheme", ["duckdb", "parquet", "jsonl"])
async def test_buffered_counts_what_was_accepted_and_not_yet_written(scheme: str, tmp_path: Path) -> None:
    """Below their batch thresholds the table sinks hold what they accepted until flush; JSON lines
    writes as it accepts. After flush nothing is held and everything is written."""
    sink = open_sink(_url(scheme, tmp_path))
    await sink.start()
    await sink.write(make_events(30))
    held = 0 if scheme == "jsonl" else 30
    assert sink.buffered == held and sink.stats.written == 30 - held
    await sink.flush()
    assert sink.buffered == 0 and sink.stats.written == sink.stats.accepted == 30
    await sink.close()


async def test_the_pipeline_gives_the_session_to_every_sink(tmp_path: Path) -> None:
    """write_session reaches each sink through the contract: DuckDB and Parquet store the row, JSON
    lines (events only) writes no line for it."""
    db, lake, lines = tmp_path / "t.duckdb", tmp_path / "lake", tmp_path / "e.jsonl"
    p = Pipeline([DuckDBSink(db), ParquetSink(lake), JsonLinesSink(lines)])
    await p.start()
    await p.write_session(SESSION)
    await p.close()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT session, streams FROM feed_sessions").fetchall() == [("sess1", ["btcusdt@depth"])]
    con.close()
    assert len(list((lake / "feed_sessions").glob("*.parquet"))) == 1
    assert lines.read_bytes() == b""


class _FailingSink(Sink):
    """Keeps ``keep`` events of each batch, then fails the write (what a full disk looks like)."""

    name = "failing"

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep
        self.held: list[Event] = []

    async def write(self, batch: list[Event]) -> None:  # type: ignore[override]
        self.stats.accepted += len(batch)
        self.held.extend(batch[: self.keep])
        raise SinkError("disk full")

    async def write_session(self, session: SessionInfo) -> None:
        pass

    @property
    def buffered(self) -> int:
        return len(self.held)

    async def flush(self) -> None:
        pass


async def test_a_failed_write_drops_only_what_the_sink_no_longer_holds() -> None:
    """The pipeline reads ``buffered`` from the contract: of a failed batch of 10 with 4 kept, 6 count
    as dropped, and the failure is counted once."""
    sink = _FailingSink(keep=4)
    p = Pipeline([sink], batch_size=10, flush_interval_s=10)
    await p.start()
    wait = p.emit(list(make_events(10)))
    if wait is not None:
        await wait
    await p.close()
    assert (sink.stats.accepted, sink.stats.dropped, sink.stats.errors) == (10, 6, 1)
    stats = p.sink_stats()
    assert list(stats) == ["failing"] and stats["failing"].dropped == 6
