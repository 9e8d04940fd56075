"""The feed's one published view (FeedSnapshot): frozen, and all that status, /metrics and the
summary read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.ingest.support import make_events
from tickpath.feed import Feed, FeedConfig, FeedSnapshot, FeedSummary
from tickpath.feed.metrics import FeedCollector
from tickpath.feed.snapshot import (
    BookCounts,
    ConnectionCounts,
    FetchCounts,
    FrameCounts,
    LatencyFigures,
    PipelineCounts,
)
from tickpath.feed.status import status_text
from tickpath.probe.clock_offset import OffsetEstimate
from tickpath.sinks.base import SinkStats
from tickpath.sinks.nats import NatsSinkStats
from tickpath.stats import LatencyRecorder

# The --json summary's keys, as tools and the demo read them: a snapshot must not change them.
SUMMARY_KEYS = {
    "session", "venue", "symbols", "streams", "started_ns", "ended_ns", "connections", "events", "emitted",
    "sinks", "resyncs", "gaps", "reconnects", "rollovers", "stale_closes", "malformed", "duplicates",
    "snapshots", "backpressure_waits", "clock_offset", "latency", "engine", "metrics_port", "record_files",
    "connects", "connect_failures", "last_error", "undelivered", "dropped",
}  # fmt: skip


def _snapshot(**over: Any) -> FeedSnapshot:
    """A snapshot with distinct numbers in every field a reader uses, built without any feed."""
    event = LatencyRecorder("receipt_minus_event")
    for v in (2_000_000, 3_000_000, 40_000_000):
        event.record(v)
    enqueue = LatencyRecorder("receipt_to_enqueue")
    enqueue.record(12_345)
    base: dict[str, Any] = dict(
        session="s1",
        venue="futures",
        symbols=("BTCUSDT", "ETHUSDT"),
        streams=("btcusdt@depth@100ms", "ethusdt@depth@100ms"),
        started_ns=1_000_000_000,
        ended_ns=11_000_000_000,
        started=True,
        frames=FrameCounts(total=30, depth=17, trades=5, tickers=4, malformed={"schema": 2}, malformed_total=2),
        books=BookCounts(symbols=2, synced=1, never_synced=("ETHUSDT",), resyncs=3, gaps=4, duplicates=1),
        connections=ConnectionCounts(planned=1, connects=2, reconnects=1, rollovers=6, last_error="boom"),
        fetches=FetchCounts(fetched=8, rate_limited=1, errors=9),
        pipeline=PipelineCounts(
            emitted=25, backpressure_waits=7, by_channel={"l2": 20, "trades": 5}, queue_depths={"0:nats": 5, "batch": 3}
        ),
        sinks={"nats": NatsSinkStats(accepted=25, written=20, dropped=2, spool_pending=3)},
        undelivered=(),
        clock_offset=OffsetEstimate(37_000, 400, 800, 3, 10),
        latency_sample_every=1,
        latency=LatencyFigures(enqueue.summary(), event.summary(), event),
        metrics_port=None,
        record_files=(),
        engine_report={"never_synced": ["ETHUSDT"]},
    )
    base.update(over)
    return FeedSnapshot(**base)


def test_the_status_line_is_drawn_from_a_snapshot_alone() -> None:
    """Every figure on the status line comes from the snapshot it is given."""
    line = status_text(_snapshot(), 10.0, 20.0).plain
    for part in ("futures", "books 1/2 synced", "events 25", "resyncs 3", "gaps 4", "reconnects 1", "malformed 2"):
        assert part in line
    assert "queued batches 5" in line and "backpressure 7" in line  # the open batch is not a queued one


def test_metrics_are_drawn_from_a_snapshot_alone() -> None:
    """The collector exports the snapshot's numbers (books, frames, sinks, histogram), and nothing
    before the feed has started receiving."""
    reg = CollectorRegistry(auto_describe=False)
    current = {"snap": _snapshot(started=False)}
    reg.register(FeedCollector(lambda: current["snap"]))
    assert generate_latest(reg).decode() == ""
    current["snap"] = _snapshot()
    text = generate_latest(reg).decode()
    assert 'tickpath_feed_frames_total{kind="depth",venue="futures"} 17.0' in text
    assert 'tickpath_feed_resyncs_total{venue="futures"} 3.0' in text
    assert 'tickpath_feed_duplicates_total{venue="futures"} 1.0' in text
    assert 'tickpath_feed_rollovers_total{venue="futures"} 6.0' in text
    assert 'tickpath_feed_snapshots_total{result="error",venue="futures"} 9.0' in text
    assert 'tickpath_feed_sink_pending{sink="nats",state="spool_pending"} 3.0' in text
    assert 'tickpath_feed_receipt_minus_event_seconds_bucket{le="0.0025",venue="futures"} 1.0' in text
    assert 'tickpath_feed_receipt_minus_event_seconds_count{venue="futures"} 3.0' in text


def test_the_summary_keeps_its_json_keys_and_reads_the_snapshot() -> None:
    """FeedSummary.from_snapshot gives the --json object with its usual keys and the snapshot's figures."""
    d = FeedSummary.from_snapshot(_snapshot()).to_dict()
    assert set(d) == SUMMARY_KEYS
    assert (d["emitted"], d["resyncs"], d["gaps"], d["malformed"], d["duplicates"], d["dropped"]) == (25, 3, 4, 2, 1, 2)
    assert d["sinks"]["nats"]["spool_pending"] == 3 and d["sinks"]["nats"]["accepted"] == 25
    assert d["snapshots"] == {"fetched": 8, "rate_limited": 1, "errors": 9, "weight_waits": 0, "refetches": 0}
    assert d["latency"]["receipt_minus_event"]["count"] == 3 and d["clock_offset"]["offset_us"] == 37.0
    assert d["connects"] == 2 and d["last_error"] == "boom" and d["engine"] == {"never_synced": ["ETHUSDT"]}
    json.dumps(d)  # JSON-ready as it is


def test_a_snapshot_is_frozen_and_does_not_follow_the_feed(tmp_path: Path) -> None:
    """A snapshot's fields cannot be set, and counting after it was taken leaves it as it was."""
    feed = Feed(FeedConfig(venue="futures", symbols=("BTCUSDT",), sinks=(f"jsonl:{tmp_path}/e.jsonl",)))
    before = feed.snapshot()
    assert not before.started and before.books.symbols == 1 and before.latency is None
    assert before.streams == ("btcusdt@depth@100ms", "btcusdt@aggTrade", "btcusdt@bookTicker")
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.ended_ns = 5  # type: ignore[misc]
    feed.pipeline.emit(list(make_events(4)))
    feed.sinks[0].stats.accepted += 4
    after = feed.snapshot()
    assert (before.pipeline.emitted, after.pipeline.emitted) == (0, 4)
    assert (before.sinks["jsonl"].accepted, after.sinks["jsonl"].accepted) == (0, 4)
    assert isinstance(after.sinks["jsonl"], SinkStats)
