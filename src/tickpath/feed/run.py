"""Running a feed: wiring connections, snapshots, engine, pipeline, metrics and shutdown together.

``await run(config)`` runs until ``duration_s`` passes or the task is cancelled (the CLI cancels it on
SIGINT/SIGTERM through :func:`tickpath.runtime.run`); either way every sink is flushed and closed in
``finally``, so what was accepted is on disk, and a :class:`FeedSummary` says what happened.
While it runs, :meth:`Feed.snapshot` is the one view of it that the status line, ``/metrics`` and
the summary read (:mod:`tickpath.feed.snapshot`).

Order at start: open sinks, measure the clock offset against the venue's time endpoint, then open
the WebSocket connections; snapshots are requested as each book's first events are buffered (the
order Binance's sync guide prescribes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.events import SessionInfo
from tickpath.feed.config import FeedConfig
from tickpath.feed.connection import Backoff, FeedConnection
from tickpath.feed.engine import FeedEngine
from tickpath.feed.listings import ListingChange, ListingWatcher, resolve_selection
from tickpath.feed.looplag import LoopLagMonitor
from tickpath.feed.memtrim import MemoryTrimmer
from tickpath.feed.metrics import MetricsServer
from tickpath.feed.open_interest import OpenInterestPoller
from tickpath.feed.pipeline import Pipeline
from tickpath.feed.progress import SyncProgress, run_progress
from tickpath.feed.record import FeedRecorder
from tickpath.feed.rollover import ShardRunner
from tickpath.feed.shards import Shard, plan_shards
from tickpath.feed.snapshot import (
    FeedSnapshot,
    FeedSummary,
    book_counts,
    connection_counts,
    fetch_counts,
    frame_counts,
    latency_figures,
    pipeline_counts,
)
from tickpath.feed.snapshots import SnapshotFetcher, WeightPacer, measure_clock_offset
from tickpath.feed.symbols import check_symbols
from tickpath.logs import log_event
from tickpath.probe.clock_offset import OffsetEstimate
from tickpath.sinks.base import Sink
from tickpath.sinks.registry import open_sink
from tickpath.tlsclient import client_context
from tickpath.venues.binance.channels import all_market_streams
from tickpath.venues.binance.endpoints import endpoints, venue_of_host
from tickpath.venues.binance.rest import ExchangeInfoApi, RestClient, RestResponse, tls_connector

log = logging.getLogger(__name__)
MAX_URL_CHARS = 8000  # aiohttp's and nginx's default request-line limit is 8 kB


def capture_url(venue: str, base_url: str, streams: list[str]) -> str:
    """The URL written at the top of a capture file.

    The real URL when its host names a Binance venue; otherwise (a simulator on loopback) the venue's
    production host with the same path, because the capture format identifies the venue by host
    name (that is how ``tickpath sim`` knows what it replays).
    """
    host = urlsplit(base_url).hostname or ""
    base = base_url if venue_of_host(host) == venue else endpoints(venue).ws_base  # type: ignore[arg-type]
    return f"{base.rstrip('/')}/stream?streams=" + "/".join(streams)


def plan_connections(config: FeedConfig) -> list[Shard]:
    """The connections of ``config``'s symbols; the all-market streams ride on the first symbol's, or
    get a connection of their own when this process owns them and has no symbol yet (a --workers
    share of ``--symbols all`` that the hash gave nothing, waiting for listings)."""
    shards = plan_shards(config.streams_by_symbol(), config.effective_streams_per_connection)
    every = all_market_streams(config.channels)
    if every and not config.symbols and (config.shard is None or config.shard.owns_all_market):
        shards.append(Shard(len(shards), (), tuple(every)))
    return shards


def _open_sink(url: str, clock: Clock) -> Sink:
    """The sink ``url`` names, on the feed's clock where it keeps time itself (Parquet's flush_s,
    DuckDB's commit_s)."""
    own_time = url.strip().lower().startswith(("parquet:", "duckdb"))
    return open_sink(url, clock=clock) if own_time else open_sink(url)


class Feed:
    """One feed run for one venue. ``await feed.run()``; :meth:`snapshot` says how it goes meanwhile.

    ``engine`` and ``pipeline`` stay public for tests and benchmarks that check the books
    themselves; the rest of the run's parts are private to it.
    """

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
        self.sinks = sinks if sinks is not None else [_open_sink(u, clock) for u in config.sinks]
        self.pipeline = Pipeline(
            self.sinks,
            batch_size=config.batch_size,
            flush_interval_s=config.flush_interval_s,
            queue_batches=config.queue_batches,
            clock=clock,
        )
        self.latency_sample_every = latency_sample_every
        self.engine: FeedEngine | None = None
        self.open_interest: OpenInterestPoller | None = None  # with --channels openInterest
        self._fetcher: SnapshotFetcher | None = None
        self._runners: list[ShardRunner] = []
        # A --symbols selection is planned once exchangeInfo has resolved it (in run()).
        self._shards: list[Shard] = plan_connections(config) if config.selection is None else []
        self._tasks: list[asyncio.Task[Any]] = []
        self._listed: dict[str, str] = {}  # symbol -> status at start (a selection's listing)
        self._watcher: ListingWatcher | None = None
        self._weight_limit: int | None = None  # REQUEST_WEIGHT a minute as exchangeInfo states it
        self._progress = SyncProgress(clock=clock)
        self._http: aiohttp.ClientSession | None = None
        self._rest: RestClient | None = None
        self._backoff = Backoff(config.reconnect_base_s, config.reconnect_max_s)
        self._offset: OffsetEstimate | None = None
        self._metrics: MetricsServer | None = None
        self.loop_lag = LoopLagMonitor(clock)  # event-loop lag (feed/looplag.py): status, --json, /metrics
        self.memory = MemoryTrimmer(config.trim_memory_s, clock)
        self._recorder: FeedRecorder | None = None
        self.started = asyncio.Event()  # set when connections are being opened
        self._stop = asyncio.Event()
        self.started_ns = 0
        self.ended_ns = 0

    def stop(self) -> None:
        """Ask :meth:`run` to finish (flushing every sink) and return its summary."""
        self._stop.set()

    @property
    def streams(self) -> list[str]:
        return [s for sh in self._shards for s in sh.streams]

    def _on_lost(self, shard: Shard, _conn: FeedConnection) -> None:
        assert self.engine is not None
        wait = self.engine.reset_symbols(shard.symbols, "reconnect")
        if wait is not None:
            asyncio.ensure_future(wait)  # noqa: RUF006 - the pipeline's hand-off future owns itself

    def _on_opened(self, conn: FeedConnection) -> None:
        if self._recorder is not None:
            self._recorder.opened(
                conn.conn_id, capture_url(self.config.venue, conn.base_url, conn.streams), self.clock.wall_ns()
            )

    async def _on_snapshot(self, symbol: str, resp: RestResponse) -> None:
        assert self.engine is not None
        wait = self.engine.on_snapshot(symbol, resp.body, resp.receipt_wall_ns)
        if wait is not None:
            await wait

    def _open_interest(self, rest: RestClient) -> OpenInterestPoller:
        assert self.engine is not None and self._fetcher is not None
        self.open_interest = OpenInterestPoller(
            rest,
            lambda: self.config.symbols,  # live: _on_listing replaces the config as listings come and go
            self.engine.processor.channels,
            self.pipeline.emit,
            pacer=self._fetcher.pacer,
            clock=self.clock,
        )
        return self.open_interest

    async def _housekeeping(self) -> None:
        period = 1_000_000_000
        while True:
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + period)
            if self.engine is not None:
                self.engine.drain_latency()
            if self._recorder is not None:
                self._recorder.flush()

    async def _resolve(self, probe: RestClient) -> FeedConfig:
        """``--symbols all``/filters: the symbols exchangeInfo lists now, and their connections."""
        assert self.config.selection is not None
        api = ExchangeInfoApi(probe)
        symbols, statuses = await resolve_selection(api, self.config.selection)
        self._weight_limit = api.weight_limit
        self.config = dataclasses.replace(self.config, symbols=tuple(symbols))
        self._listed = {s: statuses[s] for s in self.config.symbols}  # only a shard's own
        self._shards = plan_connections(self.config)
        log_event(log, logging.INFO, "symbols_selected", symbols=len(symbols), listed=len(statuses))
        return self.config

    def _runner(self, shard: Shard) -> ShardRunner:
        cfg = self.config
        assert self.engine is not None
        return ShardRunner(
            shard,
            cfg.ws_base,
            self.engine.on_frame,
            rollover_after_s=cfg.effective_rollover_after_s,
            overlap_s=cfg.rollover_overlap_s,
            stale_after_s=cfg.stale_after_s,
            backoff=self._backoff,
            clock=self.clock,
            session=self._http,
            # hundreds of streams do not fit in a URL (servers refuse request lines past ~8 kB): SUBSCRIBE
            subscribe=cfg.subscribe or len(capture_url(cfg.venue, cfg.ws_base, list(shard.streams))) > MAX_URL_CHARS,
            max_messages_per_s=endpoints(cfg.venue).max_incoming_messages_per_s,
            on_lost=self._on_lost,
            on_opened=self._on_opened,
            on_frames=self.engine.on_frames,
        )

    def _on_listing(self, change: ListingChange) -> None:
        """New symbols get connections of their own (and sync as their first frames arrive); removed
        ones have their books closed with a reset, and a connection left with no symbol is stopped."""
        cfg = self.config
        gone = {s for s, _ in change.removed if s in cfg.symbols}  # another worker's are its to close
        keep = tuple(s for s in cfg.symbols if s not in gone)
        self.config = dataclasses.replace(cfg, symbols=keep + tuple(s for s in change.added if s not in keep))
        if gone and self.engine is not None:
            self._close_symbols(gone)
        if change.added and self.engine is not None:
            first = len(self._shards)
            owned = set(self.config.symbols)  # a --shard/--workers share keeps only its own listings
            added = {s: cfg.streams_for(s) for s in change.added if s in owned}
            plan = plan_shards(added, cfg.effective_streams_per_connection)
            for i, sh in enumerate(plan):
                shard = Shard(first + i, sh.symbols, sh.streams)
                self._shards.append(shard)
                runner = self._runner(shard)
                self._runners.append(runner)
                self._tasks.append(asyncio.create_task(runner.run(), name=f"shard-{shard.index}"))

    def _close_symbols(self, gone: set[str]) -> None:
        """Reset the books of delisted symbols and take their streams out of their shards, so a
        reconnect does not subscribe them again; a shard left with no symbol is stopped."""
        assert self.engine is not None
        wait = self.engine.reset_symbols(sorted(gone), "delisted")
        if wait is not None:
            asyncio.ensure_future(wait)  # noqa: RUF006 - the pipeline's hand-off future owns itself
        every = set(all_market_streams(self.config.channels))
        for r in self._runners:
            if not gone.intersection(r.shard.symbols):
                continue
            syms = tuple(s for s in r.shard.symbols if s not in gone)
            kept = tuple(n for n in r.shard.streams if n in every)  # all-market ones stay with it
            r.shard = Shard(r.shard.index, syms, tuple(n for s in syms for n in self.config.streams_for(s)) + kept)
            self._shards[r.shard.index] = r.shard
            for conn in r.connections:  # a connection reconnects by itself, with its own list
                conn.streams = list(r.shard.streams)
            if not r.shard.streams:
                self._tasks.append(asyncio.create_task(r.stop(), name=f"close-shard-{r.shard.index}"))

    def _sync_counts(self) -> tuple[int, int]:
        symbols = self.config.symbols
        synced = self.engine.ever_synced if self.engine is not None else set()
        return sum(1 for s in symbols if s in synced), len(symbols)

    async def run(self) -> FeedSummary:
        tls = client_context(self.config.ca_file) if self.config.ca_file is not None else None
        self.started_ns = self.clock.wall_ns()
        cfg = await self._check_symbols(tls)  # before any sink is opened
        await self.pipeline.start()
        try:
            rest = await self._open_rest(cfg, tls)
            self._build_engine(cfg, rest)
            await self._start_tasks(cfg, rest, tls)
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
                connections=len(self._shards),
            )
            await self._until_done(cfg)
        finally:
            # Shut down in order: stop reading, then hand everything accepted to the sinks and close them.
            # Each step is shielded from a second cancellation so a repeated signal cannot skip the flush.
            await asyncio.shield(self._shutdown(self._tasks, self._rest, self._http))
        return self.summary()

    async def _check_symbols(self, tls: ssl.SSLContext | None) -> FeedConfig:
        """A selection resolved from exchangeInfo, or the explicit symbols checked against it: before
        any sink is opened, so a typo does not leave an empty store behind."""
        cfg = self.config
        if cfg.selection is not None:
            async with RestClient(cfg.venue, cfg.rest_base, clock=self.clock, ssl_context=tls) as probe:
                return await self._resolve(probe)
        if cfg.check_symbols:
            async with RestClient(cfg.venue, cfg.rest_base, clock=self.clock, ssl_context=tls) as probe:
                api = ExchangeInfoApi(probe)
                await check_symbols(probe, cfg.symbols, api)
                self._weight_limit = api.weight_limit
        return cfg

    async def _open_rest(self, cfg: FeedConfig, tls: ssl.SSLContext | None) -> RestClient:
        """The run's REST client (recording its answers with --record), and the clock offset it measures."""
        if cfg.record_dir is not None:
            self._recorder = FeedRecorder(cfg.record_dir, cfg.venue)
        rest = self._rest = RestClient(
            cfg.venue,
            cfg.rest_base,
            clock=self.clock,
            ssl_context=tls,
            on_response=self._recorder.http if self._recorder is not None else None,
        )
        if cfg.clock_samples > 0:
            self._offset = await measure_clock_offset(rest, samples=cfg.clock_samples)
            if self._offset is not None:
                log_event(
                    log,
                    logging.INFO,
                    "clock_offset",
                    offset_us=self._offset.offset_ns / 1e3,
                    bound_us=self._offset.bound_ns / 1e3,
                )
        return rest

    def _build_engine(self, cfg: FeedConfig, rest: RestClient) -> None:
        # the venue's stated weight limit when exchangeInfo was read (a proxy or the simulator may
        # allow less than Binance documents), else the documented one
        pacer = WeightPacer(self._weight_limit, clock=self.clock) if self._weight_limit else None
        self._fetcher = SnapshotFetcher(
            rest, self._on_snapshot, limit=cfg.effective_snapshot_limit, clock=self.clock, pacer=pacer
        )
        self.engine = FeedEngine(
            cfg.venue,
            None if self._dynamic else cfg.symbols,  # unrestricted: books appear as listed symbols' frames do
            self.pipeline,
            session=self.session,
            depth=cfg.depth,
            clock=self.clock,
            snapshots=self._fetcher,
            recorder=self._recorder,
            latency_sample_every=self.latency_sample_every,
            clock_offset_ns=self._offset.offset_ns if self._offset is not None else 0,
            # Every sink takes Arrow tables (DuckDB): the native core's columnar path.
            columnar=self.pipeline if self.pipeline.columnar else None,
        )

    @property
    def _dynamic(self) -> bool:
        return self.config.selection is not None and self.config.selection.dynamic

    async def _start_tasks(self, cfg: FeedConfig, rest: RestClient, tls: ssl.SSLContext | None) -> None:
        """/metrics, the connections and every background task of the run (into ``self._tasks``)."""
        assert self._fetcher is not None
        tasks = self._tasks
        if cfg.metrics_port is not None:
            self._metrics = MetricsServer(self.snapshot, cfg.metrics_host, cfg.metrics_port, self.loop_lag)
            await self._metrics.start()
            log_event(log, logging.INFO, "metrics_listening", host=cfg.metrics_host, port=self._metrics.port)
        self._http = aiohttp.ClientSession(connector=tls_connector(tls))
        self._runners.extend(self._runner(shard) for shard in self._shards)
        tasks.append(asyncio.create_task(self._fetcher.run(), name="snapshots"))
        if "openInterest" in cfg.channels:  # REST only: polled within the snapshots' weight budget
            tasks.append(asyncio.create_task(self._open_interest(rest).run(), name="open-interest"))
        tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        tasks.append(asyncio.create_task(self.loop_lag.run(), name="loop-lag"))
        if cfg.trim_memory_s > 0:
            tasks.append(asyncio.create_task(self.memory.run(), name="memory-trim"))
        tasks.extend(asyncio.create_task(r.run(), name=f"shard-{r.shard.index}") for r in self._runners)
        tasks.append(asyncio.create_task(run_progress(self._progress, self._sync_counts), name="progress"))
        if self._dynamic:
            assert cfg.selection is not None
            self._watcher = ListingWatcher(
                ExchangeInfoApi(rest),
                cfg.selection,
                self._listed,
                self._on_listing,
                interval_s=cfg.listing_poll_s,
                pacer=self._fetcher.pacer,
                clock=self.clock,
            )
            tasks.append(asyncio.create_task(self._watcher.run(), name="listings"))
        if cfg.status:
            from tickpath.feed.status import run_status

            tasks.append(asyncio.create_task(run_status(self.snapshot, extra=self._progress.line), name="status"))

    async def _until_done(self, cfg: FeedConfig) -> None:
        """Until ``duration_s`` passes or :meth:`stop` is called (or the task is cancelled)."""
        if cfg.duration_s is None:
            await self._stop.wait()
            return
        deadline = self.clock.monotonic_ns() + int(cfg.duration_s * 1e9)
        timer = asyncio.create_task(self.clock.sleep_until_ns(deadline))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({timer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            stopper.cancel()

    async def _shutdown(
        self, tasks: list[asyncio.Task[Any]], rest: RestClient | None, http: aiohttp.ClientSession | None
    ) -> None:
        self._progress.update(*self._sync_counts())  # the last reading of the run, before shutting down
        for r in self._runners:
            with contextlib.suppress(Exception):
                await r.stop()
        for t in list(tasks):
            t.cancel()
        for t in list(tasks):
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
        if self._metrics is not None:
            await self._metrics.stop()
        if self._recorder is not None:
            self._recorder.close()
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
            clock_offset_ns=self._offset.offset_ns if self._offset is not None else None,
            clock_offset_bound_ns=self._offset.bound_ns if self._offset is not None else None,
        )

    def snapshot(self) -> FeedSnapshot:
        """Everything this run says about itself now (status line, /metrics and summary read this)."""
        eng = self.engine
        report = eng.summary() if eng is not None else {}
        if not self.ended_ns:  # frozen at the end: the summary says how the run went, not its shutdown
            self._progress.update(*self._sync_counts())
        report["startup"] = self._progress.last.as_dict()
        report["event_loop_lag"] = self.loop_lag.summary()
        report["memory"] = self.memory.summary()
        if self._listed and "never_synced" in report:  # a delisted symbol is closed, not failed
            live = set(self.config.symbols)
            report["never_synced"] = [x for x in report["never_synced"] if x in live]
        if self._watcher is not None:
            report["listings"] = self._watcher.stats.as_dict()
        return FeedSnapshot(
            session=self.session,
            venue=self.config.venue,
            symbols=tuple(self.config.symbols),
            streams=tuple(self.streams),
            started_ns=self.started_ns,
            ended_ns=self.ended_ns,
            started=eng is not None,
            frames=frame_counts(eng),
            books=book_counts(eng, len(self.config.symbols), report),
            connections=connection_counts(len(self._shards), self._runners),
            fetches=fetch_counts(self._fetcher),
            pipeline=pipeline_counts(self.pipeline),
            sinks=self.pipeline.sink_stats(),
            undelivered=tuple(self.pipeline.undelivered()),
            clock_offset=self._offset,
            latency_sample_every=self.latency_sample_every,
            latency=latency_figures(eng),
            metrics_port=self._metrics.port if self._metrics is not None else None,
            record_files=tuple(str(p) for p in self._recorder.files) if self._recorder is not None else (),
            engine_report=report,
        )

    def summary(self) -> FeedSummary:
        """The ``--json`` summary of this run so far (of the whole run once :meth:`run` returned)."""
        return FeedSummary.from_snapshot(self.snapshot())


async def run(config: FeedConfig, *, clock: Clock = DEFAULT_CLOCK, sinks: list[Sink] | None = None) -> FeedSummary:
    """Run the feed described by ``config`` until its duration ends or the task is cancelled."""
    return await Feed(config, clock=clock, sinks=sinks).run()
