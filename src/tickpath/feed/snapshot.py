"""What a running feed publishes about itself: one frozen :class:`FeedSnapshot`, taken on demand.

The status line, ``/metrics`` and the exit summary read only this (``Feed.snapshot()``); none of
them reaches into the feed's parts. The parts (engine, pipeline, connections, snapshot fetcher) are
read by the small functions below and nowhere else, so a change inside one of them changes one
function here. A snapshot costs well under a millisecond (its latency histogram is a copy), so the
status line takes one a second and ``/metrics`` one per scrape.

:class:`FeedSummary` is the ``--json`` form of the final snapshot, with the keys it has always had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tickpath.probe.clock_offset import OffsetEstimate
from tickpath.sinks.base import SinkStats
from tickpath.stats import LatencyRecorder
from tickpath.stats.recorder import LatencySummary

if TYPE_CHECKING:
    from tickpath.feed.connection import FeedConnection
    from tickpath.feed.engine import FeedEngine
    from tickpath.feed.pipeline import Pipeline
    from tickpath.feed.rollover import ShardRunner
    from tickpath.feed.snapshots import SnapshotFetcher


@dataclass(frozen=True)
class FrameCounts:
    """WebSocket frames the engine took, by kind, and what it rejected or ignored."""

    total: int = 0
    depth: int = 0
    trades: int = 0
    tickers: int = 0
    klines: int = 0
    control: int = 0
    malformed: Mapping[str, int] = field(default_factory=dict)  # by reason
    malformed_total: int = 0
    duplicates: int = 0  # trades/tickers seen twice (rollover overlap, venue duplicates)


@dataclass(frozen=True)
class BookCounts:
    """The order books, summed over symbols."""

    symbols: int = 0
    synced: int = 0  # in sync now
    never_synced: tuple[str, ...] = ()
    resyncs: int = 0
    gaps: int = 0
    crossed: int = 0
    duplicates: int = 0
    refetches: int = 0


@dataclass(frozen=True)
class ConnectionCounts:
    """The WebSocket connections over all shards."""

    planned: int = 0  # one per shard
    connects: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    stale_closes: int = 0
    ws_errors: int = 0  # ended by a WebSocket error rather than a close frame
    rollovers: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class FetchCounts:
    """REST depth snapshots."""

    fetched: int = 0
    rate_limited: int = 0
    errors: int = 0
    weight_waits: int = 0


@dataclass(frozen=True)
class PipelineCounts:
    """Events handed to the sinks, and how often the feed waited for them."""

    emitted: int = 0
    batches: int = 0
    backpressure_waits: int = 0
    by_channel: Mapping[str, int] = field(default_factory=dict)
    queue_depths: Mapping[str, int] = field(default_factory=dict)  # batches per sink, open batch as "batch"

    @property
    def queued_batches(self) -> int:
        return sum(n for q, n in self.queue_depths.items() if q != "batch")


@dataclass(frozen=True)
class LatencyFigures:
    """Frame receipt to enqueue (monotonic clock) and receipt minus event time (wall clock + offset)."""

    enqueue: LatencySummary
    event: LatencySummary
    event_histogram: LatencyRecorder  # a copy, for /metrics buckets


@dataclass(frozen=True)
class FeedSnapshot:
    """Everything a feed says about itself at one moment; ``started`` is False until it receives."""

    session: str
    venue: str
    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    started_ns: int
    ended_ns: int  # 0 while running
    started: bool
    frames: FrameCounts
    books: BookCounts
    connections: ConnectionCounts
    fetches: FetchCounts | None  # None before the fetcher exists
    pipeline: PipelineCounts
    sinks: Mapping[str, SinkStats]
    undelivered: tuple[str, ...]
    clock_offset: OffsetEstimate | None
    latency_sample_every: int
    latency: LatencyFigures | None
    metrics_port: int | None
    record_files: tuple[str, ...]
    engine_report: Mapping[str, Any]  # the engine's own summary, for --json only

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.sinks.values())


def frame_counts(engine: FeedEngine | None) -> FrameCounts:
    if engine is None:
        return FrameCounts()
    s = engine.stats
    return FrameCounts(
        total=s.frames,
        depth=s.depth,
        trades=s.trades,
        tickers=s.tickers,
        klines=s.klines,
        control=s.control,
        malformed=dict(s.malformed),
        malformed_total=s.malformed_total,
        duplicates=s.duplicates,
    )


def book_counts(engine: FeedEngine | None, symbols: int, report: Mapping[str, Any]) -> BookCounts:
    if engine is None:
        return BookCounts(symbols=symbols)
    totals = engine.book_totals()
    return BookCounts(
        symbols=symbols,
        synced=sum(1 for b in engine.books.values() if b.synced),
        never_synced=tuple(report.get("never_synced") or ()),
        resyncs=totals.get("resyncs", 0),
        gaps=totals.get("gaps", 0),
        crossed=totals.get("crossed", 0),
        duplicates=totals.get("duplicates", 0),
        refetches=totals.get("refetches", 0),
    )


def connection_counts(planned: int, runners: Sequence[ShardRunner]) -> ConnectionCounts:
    conns: list[FeedConnection] = [c for r in runners for c in r.connections]
    return ConnectionCounts(
        planned=planned,
        connects=sum(c.connects for c in conns),
        connect_failures=sum(c.connect_failures for c in conns),
        reconnects=sum(c.reconnects for c in conns),
        stale_closes=sum(c.stale_closes for c in conns),
        ws_errors=sum(c.ws_errors for c in conns),
        rollovers=sum(r.rollovers for r in runners),
        last_error=next((c.last_error for c in conns if c.last_error), ""),
    )


def fetch_counts(fetcher: SnapshotFetcher | None) -> FetchCounts | None:
    if fetcher is None:
        return None
    st = fetcher.stats
    return FetchCounts(st.fetched, st.rate_limited, st.errors, st.weight_waits)


def pipeline_counts(pipeline: Pipeline) -> PipelineCounts:
    st = pipeline.stats
    return PipelineCounts(
        emitted=st.emitted,
        batches=st.batches,
        backpressure_waits=st.backpressure_waits,
        by_channel=dict(st.by_channel),
        queue_depths=pipeline.queue_depths(),
    )


def latency_figures(engine: FeedEngine | None) -> LatencyFigures | None:
    """The engine's latency so far (its buffered samples are moved into the histograms first)."""
    if engine is None:
        return None
    engine.drain_latency()
    copy = LatencyRecorder(engine.event_latency.name)
    copy.merge(engine.event_latency)
    return LatencyFigures(engine.enqueue_latency.summary(), engine.event_latency.summary(), copy)


@dataclass
class FeedSummary:
    """What one feed run did, as the ``--json`` output (``to_dict()``); built from the final snapshot."""

    session: str
    venue: str
    symbols: list[str]
    streams: list[str]
    started_ns: int
    ended_ns: int
    connections: int
    events: dict[str, int]
    emitted: int
    sinks: dict[str, dict[str, int]]
    resyncs: int
    gaps: int
    reconnects: int
    rollovers: int
    stale_closes: int
    malformed: int
    duplicates: int
    snapshots: dict[str, int]
    backpressure_waits: int
    clock_offset: dict[str, Any] | None
    latency: dict[str, Any]
    engine: dict[str, Any] = field(default_factory=dict)
    metrics_port: int | None = None
    record_files: list[str] = field(default_factory=list)
    connects: int = 0  # successful WebSocket connections, over all shards
    connect_failures: int = 0
    last_error: str = ""
    undelivered: list[str] = field(default_factory=list)  # what sinks keep undelivered at exit, and where

    @property
    def dropped(self) -> int:
        return sum(s.get("dropped", 0) for s in self.sinks.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dropped"] = self.dropped
        return d

    @classmethod
    def from_snapshot(cls, snap: FeedSnapshot) -> FeedSummary:
        conns, books, f = snap.connections, snap.books, snap.fetches
        return cls(
            session=snap.session,
            venue=snap.venue,
            symbols=list(snap.symbols),
            streams=list(snap.streams),
            started_ns=snap.started_ns,
            ended_ns=snap.ended_ns,
            connections=conns.planned,
            events=dict(snap.pipeline.by_channel),
            emitted=snap.pipeline.emitted,
            sinks={name: st.as_dict() for name, st in snap.sinks.items()},
            resyncs=books.resyncs,
            gaps=books.gaps,
            reconnects=conns.reconnects,
            rollovers=conns.rollovers,
            stale_closes=conns.stale_closes,
            malformed=snap.frames.malformed_total,
            duplicates=snap.frames.duplicates + books.duplicates,
            snapshots={
                "fetched": f.fetched,
                "rate_limited": f.rate_limited,
                "errors": f.errors,
                "weight_waits": f.weight_waits,
                "refetches": books.refetches,
            }
            if f is not None
            else {},
            backpressure_waits=snap.pipeline.backpressure_waits,
            clock_offset=snap.clock_offset.to_dict() if snap.clock_offset is not None else None,
            latency=_latency_dict(snap),
            engine=dict(snap.engine_report),
            metrics_port=snap.metrics_port,
            record_files=list(snap.record_files),
            connects=conns.connects,
            connect_failures=conns.connect_failures,
            last_error=conns.last_error,
            undelivered=list(snap.undelivered),
        )


def _latency_dict(snap: FeedSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sample_every": snap.latency_sample_every,
        "clock": "monotonic (enqueue), wall + clock offset (event)",
    }
    if snap.latency is not None:
        out["receipt_to_enqueue"] = snap.latency.enqueue.to_dict("us")
        out["receipt_minus_event"] = snap.latency.event.to_dict("ms")
    return out
