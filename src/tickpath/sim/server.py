"""The simulator: one aiohttp listener per zone and venue, all fed by one market per venue.

::

    async with Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT",))) as sim:
        ep = sim.endpoint("futures")              # ws_url / rest_url of zone "local"
        ...                                       # connect to ep.ws_url + "/ws/btcusdt@depth@100ms"
        book = sim.ground_truth("futures", "BTCUSDT", update_id)
        sim.faults.gap("futures", "BTCUSDT")
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from tickpath.clock import DEFAULT_CLOCK, Clock, VirtualClock
from tickpath.errors import ConfigError
from tickpath.logs import log_event
from tickpath.metrics import MetricsServer
from tickpath.sim import tls as tls_mod
from tickpath.sim.chaos import ChaosConfig, ChaosDriver
from tickpath.sim.config import LatencyProfile, SimConfig, ZoneConfig
from tickpath.sim.context import CTX, Limits, ListenerContext
from tickpath.sim.faults import FaultPlan, Faults, FaultState, run_plan
from tickpath.sim.hub import Hub
from tickpath.sim.market import BookSnapshot, SymbolMarket, spec_for
from tickpath.sim.metrics import SimCollector
from tickpath.sim.prerender import Playback
from tickpath.sim.replay import ReplaySource
from tickpath.sim.rest import WeightLedger, add_routes
from tickpath.sim.ws import WsConnection, handle_ws
from tickpath.venues.binance.endpoints import Venue, endpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """Where one zone serves one venue. ``ws_url``/``rest_url`` are bases without a path."""

    venue: str
    zone: str
    host: str
    port: int
    ws_url: str
    rest_url: str
    tls: bool
    cafile: str | None
    latency: LatencyProfile
    replay_path: str | None = None  # for a replayed venue: the recorded path+query

    def raw_url(self, stream: str) -> str:
        return f"{self.ws_url}/ws/{stream}"

    def combined_url(self, streams: list[str] | tuple[str, ...]) -> str:
        return f"{self.ws_url}/stream?streams={'/'.join(streams)}"

    def depth_url(self, symbol: str, limit: int | None = None) -> str:
        path = endpoints(self.venue).depth_path
        return f"{self.rest_url}{path}?symbol={symbol}" + (f"&limit={limit}" if limit is not None else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "zone": self.zone,
            "ws_url": self.ws_url,
            "rest_url": self.rest_url,
            "port": self.port,
            "tls": self.tls,
            "cafile": self.cafile,
            "latency": {
                "delay_ms": self.latency.delay_ms,
                "jitter_ms": self.latency.jitter_ms,
                "spike_prob": self.latency.spike_prob,
                "spike_ms": self.latency.spike_ms,
            },
            **({"replay_path": self.replay_path} if self.replay_path else {}),
        }


class Simulator:
    """Binance-compatible market-data simulator; an async context manager."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock: Clock = DEFAULT_CLOCK,
        fault_plan: FaultPlan | None = None,
        chaos: ChaosConfig | None = None,
    ) -> None:
        self.config = config
        self.chaos_config = chaos
        self.chaos: ChaosDriver | None = None  # seeded random faults (sim/chaos.py), when configured
        self.clock = clock
        self.fault_plan = fault_plan
        self.hubs: dict[str, Hub] = {}
        self.replays: dict[str, ReplaySource] = {}
        self.playbacks: dict[str, Playback] = {}  # --prerender: venue -> its rendered timeline's playback
        self._fault_state = FaultState()
        self._conns: dict[tuple[str, str], set[WsConnection]] = {}
        self.faults = Faults(self.hubs, self._conns, self._fault_state)
        self._runners: list[web.AppRunner] = []
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.failure: BaseException | None = None  # the first background task that crashed
        self._failed = asyncio.Event()
        self.tls: tls_mod.TlsMaterial | None = None
        self.metrics: MetricsServer | None = None
        self._started = False

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        self._load_replays()
        shift_ns = await self._build_markets()  # a pre-rendered venue's clock runs from its render's start
        if cfg.tls:
            self.tls = tls_mod.generate(cfg.host)
        ssl_ctx = self.tls.server_context() if self.tls else None
        ledgers = {
            v: WeightLedger(cfg.weight_budget or endpoints(v).weight_budget_per_minute, cfg.ban_after_429, cfg.ban_s)
            for v in cfg.venue_list
        }
        self.weights: dict[Venue, WeightLedger] = ledgers  # REST weight per venue (its 429/418 counters)
        try:
            await self._open_listeners(ssl_ctx, ledgers, shift_ns)
        except BaseException:
            await self.stop()
            raise
        self._start_tasks()
        self._started = True
        log_event(
            log,
            logging.INFO,
            "sim_started",
            venues=",".join(cfg.venue_list),
            zones=",".join(z.name for z in cfg.zones),
            listeners=len(self._endpoints),
        )

    def _load_replays(self) -> None:
        cfg = self.config
        for rc in cfg.replay:
            src = ReplaySource(rc)
            if src.venue not in cfg.venues:
                raise ConfigError(f"capture {rc.ws_path} is {src.venue} data but venues are {cfg.venues}")
            if src.venue in self.replays:
                raise ConfigError(f"two captures for venue {src.venue}; replay one per venue")
            self.replays[src.venue] = src

    async def _build_markets(self) -> dict[str, int]:
        """A live hub per venue not replayed, or its pre-rendered playback; returns each playback's
        clock shift."""
        cfg = self.config
        shift_ns: dict[str, int] = {}
        if cfg.prerender_s is not None and (
            self.chaos_config is not None or not (self.fault_plan or FaultPlan()).empty
        ):
            raise ConfigError("faults and chaos act on the live market: they cannot be used with --prerender")
        for venue in cfg.venue_list:
            if venue in self.replays:
                continue
            if cfg.prerender_s is None:
                self.hubs[venue] = self._make_hub(venue, self.clock)
            else:
                shift_ns[venue] = await self._prerender(venue, cfg.prerender_s)
        return shift_ns

    async def _open_listeners(
        self, ssl_ctx: ssl.SSLContext | None, ledgers: dict[Venue, WeightLedger], shift_ns: dict[str, int]
    ) -> None:
        """One listener per zone and venue, each with its context and its published endpoint."""
        cfg = self.config
        offset_ns = int(cfg.clock_offset_ms * 1_000_000)
        index = 0
        for zone in cfg.zones:
            for venue in cfg.venue_list:
                ep = endpoints(venue)
                ctx = ListenerContext(
                    config=cfg,
                    ep=ep,
                    zone=zone,
                    clock=self.clock,
                    limits=Limits.of(ep, cfg),
                    hub=self.hubs.get(venue),
                    replay=self.replays.get(venue),
                    weights=ledgers[venue],
                    faults=self._fault_state,
                    offset_ns=offset_ns + shift_ns.get(venue, 0),
                    playback=self.playbacks.get(venue),
                )
                self._conns[(venue, zone.name)] = ctx.connections
                if ctx.playback is not None:
                    ctx.playback.contexts.append(ctx)
                port = await self._listen(ctx, ssl_ctx, cfg.port + index if cfg.port else 0)
                index += 1
                self._endpoints[(venue, zone.name)] = self._endpoint(venue, zone, port, ssl_ctx is not None)

    def _endpoint(self, venue: Venue, zone: ZoneConfig, port: int, tls: bool) -> Endpoint:
        host, replay = self.config.host, self.replays.get(venue)
        scheme_ws, scheme_http = ("wss", "https") if tls else ("ws", "http")
        return Endpoint(
            venue=venue,
            zone=zone.name,
            host=host,
            port=port,
            ws_url=f"{scheme_ws}://{host}:{port}",
            rest_url=f"{scheme_http}://{host}:{port}",
            tls=tls,
            cafile=str(self.tls.cafile) if self.tls else None,
            latency=zone.latency,
            replay_path=replay.recorded_path if replay else None,
        )

    def _start_tasks(self) -> None:
        """The markets (or playbacks), the fault schedule and chaos, each watched for a crash."""
        loop = asyncio.get_running_loop()
        for name, hub in self.hubs.items():
            playback = self.playbacks.get(name)
            self._tasks.append(loop.create_task(playback.run() if playback is not None else hub.run()))
        targets = [(v, s) for v, h in self.hubs.items() for s in h.markets]
        if self.fault_plan is not None and not self.fault_plan.empty:
            self._tasks.append(loop.create_task(run_plan(self.fault_plan, self.faults, targets)))
        if self.chaos_config is not None:
            self.chaos = ChaosDriver(self.faults, targets, self.chaos_config)
            self._tasks.append(loop.create_task(self.chaos.run()))
        for t in self._tasks:
            t.add_done_callback(self._report_crash)

    def _make_hub(self, venue: Venue, clock: Clock, history: int | None = None) -> Hub:
        """The live market of ``venue`` on ``clock`` (``history``: update ids kept per symbol)."""
        cfg = self.config
        if cfg.universe is not None:  # the whole exchange's symbols instead of cfg.symbols
            from tickpath.sim.universe import universe_hub

            return universe_hub(venue, cfg, clock, **({"history": history} if history else {}))
        ep = endpoints(venue)  # each venue serves the symbols in its format (BTCUSD_PERP: COIN-M only)
        mine = [s for s in cfg.symbols if ep.valid_symbol(s)]
        if not mine:
            raise ConfigError(f"no symbol for {venue} in {','.join(cfg.symbols)}: add one like {ep.symbol_examples}")
        markets = {
            s: SymbolMarket(
                venue, spec_for(venue, s), cfg.seed, levels=cfg.book_levels, history=history or cfg.history_updates
            )
            for s in mine
        }
        return Hub(venue, markets, clock, rate=cfg.rate, clock_offset_ms=cfg.clock_offset_ms)

    async def _prerender(self, venue: Venue, seconds: float) -> int:
        """Render ``seconds`` of ``venue``'s market up front (tickpath.sim.prerender) and set up its
        playback; returns how far the venue's clock must be set back to agree with the frames."""
        from tickpath.sim.prerender import Playback, render

        wall0 = self.clock.wall_ns()
        vclock = VirtualClock(wall_offset_ns=wall0)
        hub = self._make_hub(venue, vclock, history=1 << 40)  # every update id stays (snapshots at any point)
        timeline = await asyncio.to_thread(render, hub, vclock, seconds)
        self.hubs[venue] = hub
        cfg = self.config
        playback = Playback(
            hub, timeline, cfg.prerender_speed, wait=cfg.prerender_wait, warmup_s=cfg.prerender_warmup_s
        )
        playback.started_at = asyncio.get_running_loop().time()
        self.playbacks[venue] = playback
        log_event(
            log,
            logging.INFO,
            "sim_prerendered",
            venue=venue,
            seconds=seconds,
            frames=len(timeline.frames),
            cpu_s=round(timeline.render_cpu_s, 2),
        )
        return wall0 - self.clock.wall_ns()

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        """A background task that dies is a bug: say so loudly, and let :meth:`wait_failed` return."""
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("sim background task %s crashed: %r", task.get_coro(), exc, exc_info=exc)
            if self.failure is None:
                self.failure = exc
            self._failed.set()

    async def wait_failed(self) -> BaseException:
        """Return when a background task (a market, the fault plan) has crashed: the simulator then
        serves silent streams, which ``tickpath sim`` turns into an exit rather than a quiet hang."""
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    async def _listen(self, ctx: ListenerContext, ssl_ctx: ssl.SSLContext | None, port: int) -> int:
        app = web.Application()
        app[CTX] = ctx
        app.router.add_get("/ws", handle_ws)
        app.router.add_get("/ws/{tail:.*}", handle_ws)
        app.router.add_get("/stream", handle_ws)
        add_routes(app, ctx)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.config.host, port, ssl_context=ssl_ctx, reuse_address=False)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {self.config.host} is already in use; pick another --port or 0 for free ports"
                ) from exc
            raise ConfigError(f"cannot listen on {self.config.host}:{port}: {exc.strerror}") from exc
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def serve_metrics(self, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
        """Serve Prometheus ``/metrics`` of this simulator until :meth:`stop` (port 0 = any free)."""
        server = MetricsServer(SimCollector(self), host, port)
        await server.start()
        self.metrics = server
        return server

    async def stop(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for conns in self._conns.values():
            for c in list(conns):
                c.abort()
        for r in self._runners:
            with contextlib.suppress(Exception):
                await r.cleanup()
        self._runners.clear()
        if self.tls is not None:
            shutil.rmtree(self.tls.directory, ignore_errors=True)
        self._started = False

    # ---- API --------------------------------------------------------------------------------------
    def endpoint(self, venue: str, zone: str | None = None) -> Endpoint:
        """The listener of ``venue`` in ``zone`` (default: the first zone)."""
        z = zone or self.config.zones[0].name
        try:
            return self._endpoints[(venue, z)]
        except KeyError:
            self.config.zone(z)
            endpoints(venue)
            raise ConfigError(
                f"venue {venue!r} is not served by this simulator (venues: {', '.join(self.config.venue_list)})"
            ) from None

    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints.values())

    def _market(self, venue: str, symbol: str) -> SymbolMarket:
        hub = self.hubs.get(venue)
        if hub is None:
            raise ConfigError(f"venue {venue!r} has no simulated market (not served, or replayed)")
        m = hub.markets.get(symbol)
        if m is None:
            raise ConfigError(f"symbol {symbol!r} is not simulated on {venue}; symbols: {', '.join(hub.markets)}")
        return m

    def ground_truth(self, venue: str, symbol: str, update_id: int | None = None) -> BookSnapshot:
        """The exact full book of ``symbol`` after ``update_id`` (default: the latest)."""
        m = self._market(venue, symbol)
        return m.snapshot(None, update_id) if update_id is not None else m.snapshot(None, m.last_uid)

    def last_update_id(self, venue: str, symbol: str) -> int:
        return self._market(venue, symbol).last_uid

    def step(self, venue: str, symbol: str, n: int = 1) -> int:
        """Advance the market by ``n`` update ids now (useful with ``rate=0``); returns the last id."""
        hub = self.hubs[venue]
        self._market(venue, symbol)
        uid = 0
        for _ in range(n):
            uid = hub.step(symbol)
        hub.flush()
        return uid

    def connections(self, venue: str | None = None, zone: str | None = None) -> int:
        """Open WebSocket connections (optionally of one venue/zone)."""
        return sum(len(c) for (v, z), c in self._conns.items() if venue in (None, v) and zone in (None, z))

    def stats(self) -> dict[str, Any]:
        return {
            "venues": {v: {"events": h.events, "frames_sent": h.frames_sent} for v, h in self.hubs.items()},
            "replay_frames_sent": {v: r.frames_sent for v, r in self.replays.items()},
            "connections": self.connections(),
            **({"chaos": dict(self.chaos.counts)} if self.chaos is not None else {}),
        }

    def exchange_ms(self) -> int:
        return (self.clock.wall_ns() + int(self.config.clock_offset_ms * 1_000_000)) // 1_000_000

    @property
    def venues(self) -> tuple[Venue, ...]:
        return self.config.venue_list
