"""Running a feed: wiring connections, snapshots, engine, pipeline, metrics and shutdown together.

``await run(config)`` runs until ``duration_s`` passes or the task is cancelled (the CLI cancels it on
SIGINT/SIGTERM through :func:`tickpath.runtime.run`); either way every sink is flushed and closed in
``finally``, so what was accepted is on disk, and a :class:`FeedSummary` says what happened.

Order at start: open sinks, measure the clock offset against the venue's time endpoint, then open
the WebSocket connections; snapshots are requested as each book's first events are buffered (the
order Binance's sync guide prescribes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.events import SessionInfo
from tickpath.feed.config import FeedConfig
from tickpath.feed.connection import Backoff, FeedConnection
from tickpath.feed.engine import FeedEngine
from tickpath.feed.metrics import MetricsServer
from tickpath.feed.pipeline import Pipeline
from tickpath.feed.record import FeedRecorder
from tickpath.feed.rollover import ShardRunner
from tickpath.feed.shards import Shard, plan_shards
from tickpath.feed.snapshots import SnapshotFetcher, measure_clock_offset
from tickpath.feed.symbols import check_symbols
from tickpath.logs import log_event
from tickpath.probe.clock_offset import OffsetEstimate
from tickpath.sinks.base import Sink
from tickpath.sinks.registry import open_sink
from tickpath.tlsclient import client_context
from tickpath.venues.binance.endpoints import endpoints, venue_of_host
from tickpath.venues.binance.rest import RestClient, RestResponse, tls_connector

log = logging.getLogger(__name__)


@dataclass
class FeedSummary:
    """What one feed run did; ``to_dict()`` is the ``--json`` output."""

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


def capture_url(venue: str, base_url: str, streams: list[str]) -> str:
    """The URL written at the top of a capture file.

    The real URL when its host names a Binance venue; otherwise (a simulator on loopback) the venue's
    production host with the same path, because the capture format identifies the venue by host
    name (that is how ``tickpath sim`` knows what it replays).
    """
    host = urlsplit(base_url).hostname or ""
    base = base_url if venue_of_host(host) == venue else endpoints(venue).ws_base  # type: ignore[arg-type]
    return f"{base.rstrip('/')}/stream?streams=" + "/".join(streams)


class Feed:
    """One feed run for one venue. ``await feed.run()``; inspect ``engine``/``pipeline`` meanwhile."""

    def __init__(
        self,
        config: FeedConfig,
        *,
        clock: Clock = DEFAULT_CLOCK,
        sinks: list[Sink] | None = None,
        session: str | None = None,
        latency_sample_every: int = 1,
    ) -> None:
        self.config = config
        self.clock = clock
        self.session = session or secrets.token_hex(4)
        self.sinks = sinks if sinks is not None else [open_sink(u) for u in config.sinks]
        self.pipeline = Pipeline(
            self.sinks,
            batch_size=config.batch_size,
            flush_interval_s=config.flush_interval_s,
            queue_batches=config.queue_batches,
            clock=clock,
        )
        self.latency_sample_every = latency_sample_every
        self.engine: FeedEngine | None = None
        self.fetcher: SnapshotFetcher | None = None
        self.runners: list[ShardRunner] = []
        self.shards: list[Shard] = plan_shards(config.streams_by_symbol(), config.effective_streams_per_connection)
        self.offset: OffsetEstimate | None = None
        self.metrics: MetricsServer | None = None
        self.recorder: FeedRecorder | None = None
        self.started = asyncio.Event()  # set when connections are being opened
        self._stop = asyncio.Event()
        self.started_ns = 0
        self.ended_ns = 0

    def stop(self) -> None:
        """Ask :meth:`run` to finish (flushing every sink) and return its summary."""
        self._stop.set()

    def connections(self) -> list[FeedConnection]:
        return [c for r in self.runners for c in r.connections]

    @property
    def streams(self) -> list[str]:
        return [s for sh in self.shards for s in sh.streams]

    def _on_lost(self, shard: Shard, _conn: FeedConnection) -> None:
        assert self.engine is not None
        wait = self.engine.reset_symbols(shard.symbols, "reconnect")
        if wait is not None:
            asyncio.ensure_future(wait)  # noqa: RUF006 - the pipeline's hand-off future owns itself

    def _on_opened(self, conn: FeedConnection) -> None:
        if self.recorder is not None:
            self.recorder.opened(
                conn.conn_id, capture_url(self.config.venue, conn.base_url, conn.streams), self.clock.wall_ns()
            )

    async def _on_snapshot(self, symbol: str, resp: RestResponse) -> None:
        assert self.engine is not None
        wait = self.engine.on_snapshot(symbol, resp.body, resp.receipt_wall_ns)
        if wait is not None:
            await wait

    async def _housekeeping(self) -> None:
        period = 1_000_000_000
        while True:
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + period)
            if self.engine is not None:
                self.engine.drain_latency()
            if self.recorder is not None:
                self.recorder.flush()

    async def run(self) -> FeedSummary:
        cfg = self.config
        ep = endpoints(cfg.venue)
        self.started_ns = self.clock.wall_ns()
        tasks: list[asyncio.Task[Any]] = []
        rest: RestClient | None = None
        http: aiohttp.ClientSession | None = None
        tls = client_context(cfg.ca_file) if cfg.ca_file is not None else None
        if cfg.check_symbols:  # before any sink is opened: a typo must not leave an empty store behind
            async with RestClient(cfg.venue, cfg.rest_base, clock=self.clock, ssl_context=tls) as probe:
                await check_symbols(probe, cfg.symbols)
        await self.pipeline.start()
        try:
            if cfg.record_dir is not None:
                self.recorder = FeedRecorder(cfg.record_dir, cfg.venue)
            rest = RestClient(
                cfg.venue,
                cfg.rest_base,
                clock=self.clock,
                ssl_context=tls,
                on_response=self.recorder.http if self.recorder is not None else None,
            )
            if cfg.clock_samples > 0:
                self.offset = await measure_clock_offset(rest, samples=cfg.clock_samples)
                if self.offset is not None:
                    log_event(
                        log,
                        logging.INFO,
                        "clock_offset",
                        offset_us=self.offset.offset_ns / 1e3,
                        bound_us=self.offset.bound_ns / 1e3,
                    )
            self.fetcher = SnapshotFetcher(
                rest, self._on_snapshot, limit=cfg.effective_snapshot_limit, clock=self.clock
            )
            self.engine = FeedEngine(
                cfg.venue,
                cfg.symbols,
                self.pipeline,
                session=self.session,
                depth=cfg.depth,
                clock=self.clock,
                snapshots=self.fetcher,
                recorder=self.recorder,
                latency_sample_every=self.latency_sample_every,
                clock_offset_ns=self.offset.offset_ns if self.offset is not None else 0,
            )
            if cfg.metrics_port is not None:
                self.metrics = MetricsServer(self, cfg.metrics_host, cfg.metrics_port)
                await self.metrics.start()
                log_event(log, logging.INFO, "metrics_listening", host=cfg.metrics_host, port=self.metrics.port)
            http = aiohttp.ClientSession(connector=tls_connector(tls))
            backoff = Backoff(cfg.reconnect_base_s, cfg.reconnect_max_s)
            for shard in self.shards:
                runner = ShardRunner(
                    shard,
                    cfg.ws_base,
                    self.engine.on_frame,
                    rollover_after_s=cfg.effective_rollover_after_s,
                    overlap_s=cfg.rollover_overlap_s,
                    stale_after_s=cfg.stale_after_s,
                    backoff=backoff,
                    clock=self.clock,
                    session=http,
                    subscribe=cfg.subscribe,
                    max_messages_per_s=ep.max_incoming_messages_per_s,
                    on_lost=self._on_lost,
                    on_opened=self._on_opened,
                )
                self.runners.append(runner)
            tasks.append(asyncio.create_task(self.fetcher.run(), name="snapshots"))
            tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            tasks.extend(asyncio.create_task(r.run(), name=f"shard-{r.shard.index}") for r in self.runners)
            if cfg.status:
                from tickpath.feed.status import run_status

                tasks.append(asyncio.create_task(run_status(self), name="status"))
            # The session row goes out now (ended_ns unset) and again at shutdown: a long-running feed's
            # store tells dq its subscriptions and clock offset while it runs, not only after it stops.
            await self.pipeline.write_session(self.session_info())
            self.started.set()
            log_event(
                log,
                logging.INFO,
                "feed_started",
                venue=cfg.venue,
                session=self.session,
                symbols=len(cfg.symbols),
                connections=len(self.shards),
            )
            if cfg.duration_s is not None:
                deadline = self.clock.monotonic_ns() + int(cfg.duration_s * 1e9)
                timer = asyncio.create_task(self.clock.sleep_until_ns(deadline))
                stopper = asyncio.create_task(self._stop.wait())
                try:
                    await asyncio.wait({timer, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    timer.cancel()
                    stopper.cancel()
            else:
                await self._stop.wait()
        finally:
            # Shut down in order: stop reading, then hand everything accepted to the sinks and close them.
            # Each step is shielded from a second cancellation so a repeated signal cannot skip the flush.
            await asyncio.shield(self._shutdown(tasks, rest, http))
        return self.summary()

    async def _shutdown(
        self, tasks: list[asyncio.Task[Any]], rest: RestClient | None, http: aiohttp.ClientSession | None
    ) -> None:
        for r in self.runners:
            with contextlib.suppress(Exception):
                await r.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.ended_ns = self.clock.wall_ns()
        with contextlib.suppress(Exception):
            await self.pipeline.write_session(self.session_info())
        await self.pipeline.close()
        if self.engine is not None:
            self.engine.drain_latency()
        if rest is not None:
            await rest.close()
        if http is not None:
            await http.close()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.recorder is not None:
            self.recorder.close()
        log_event(log, logging.INFO, "feed_stopped", session=self.session, events=self.pipeline.stats.emitted)

    def session_info(self) -> SessionInfo:
        """The ``feed_sessions`` row of this run."""
        cfg = self.config
        return SessionInfo(
            session=self.session,
            venue=cfg.venue,
            started_ns=self.started_ns,
            ended_ns=self.ended_ns or None,
            symbols=list(cfg.symbols),
            channels=list(cfg.channels),
            streams=self.streams,
            depth=cfg.depth,
            clock_offset_ns=self.offset.offset_ns if self.offset is not None else None,
            clock_offset_bound_ns=self.offset.bound_ns if self.offset is not None else None,
        )

    def summary(self) -> FeedSummary:
        eng = self.engine
        books = eng.book_totals() if eng is not None else {}
        conns = self.connections()
        fs = self.fetcher.stats if self.fetcher is not None else None
        latency: dict[str, Any] = {
            "sample_every": self.latency_sample_every,
            "clock": "monotonic (enqueue), wall + clock offset (event)",
        }
        if eng is not None:
            latency["receipt_to_enqueue"] = eng.enqueue_latency.summary().to_dict("us")
            latency["receipt_minus_event"] = eng.event_latency.summary().to_dict("ms")
        return FeedSummary(
            session=self.session,
            venue=self.config.venue,
            symbols=list(self.config.symbols),
            streams=self.streams,
            started_ns=self.started_ns,
            ended_ns=self.ended_ns,
            connections=len(self.shards),
            events=dict(self.pipeline.stats.by_channel),
            emitted=self.pipeline.stats.emitted,
            sinks={name: st.as_dict() for name, st in self.pipeline.sink_stats().items()},
            resyncs=books.get("resyncs", 0),
            gaps=books.get("gaps", 0),
            reconnects=sum(c.reconnects for c in conns),
            rollovers=sum(r.rollovers for r in self.runners),
            stale_closes=sum(c.stale_closes for c in conns),
            malformed=eng.stats.malformed_total if eng is not None else 0,
            duplicates=(eng.stats.duplicates if eng is not None else 0) + books.get("duplicates", 0),
            snapshots={
                "fetched": fs.fetched,
                "rate_limited": fs.rate_limited,
                "errors": fs.errors,
                "weight_waits": fs.weight_waits,
                "refetches": books.get("refetches", 0),
            }
            if fs
            else {},
            backpressure_waits=self.pipeline.stats.backpressure_waits,
            clock_offset=self.offset.to_dict() if self.offset is not None else None,
            latency=latency,
            engine=eng.summary() if eng is not None else {},
            metrics_port=self.metrics.port if self.metrics is not None else None,
            record_files=[str(p) for p in self.recorder.files] if self.recorder is not None else [],
            connects=sum(c.connects for c in conns),
            connect_failures=sum(c.connect_failures for c in conns),
            last_error=next((c.last_error for c in conns if c.last_error), ""),
            undelivered=self.pipeline.undelivered(),
        )


async def run(config: FeedConfig, *, clock: Clock = DEFAULT_CLOCK, sinks: list[Sink] | None = None) -> FeedSummary:
    """Run the feed described by ``config`` until its duration ends or the task is cancelled."""
    return await Feed(config, clock=clock, sinks=sinks).run()
