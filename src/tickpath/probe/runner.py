"""``run_probe(config)``: runs the chosen methods in order and collects one :class:`ProbeResult`.

Methods run one after another, never concurrently, so one method's traffic does not inflate
another's figures. A method that fails records a clear error and the others still run; whatever
was measured before a failure is kept. The result's ``exit_code`` is non-zero when any method
reported an error, so the CLI can write partial results and still fail.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tickpath import __version__
from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import TickpathError
from tickpath.logs import log_event
from tickpath.probe import path as pathmod
from tickpath.probe.caveats import sample_warnings
from tickpath.probe.clock_offset import OffsetEstimate, estimate_offset, sample_server_time
from tickpath.probe.config import Endpoint, ProbeConfig
from tickpath.probe.connect import (
    ConnectionPool,
    rest_op,
    target_name,
    tcp_op,
    tls_op,
    ws_ping_op,
    ws_setup,
)
from tickpath.probe.dns import DnsResult, resolve
from tickpath.probe.hoststate import host_state
from tickpath.probe.schedule import MethodStats, OpenLoopSchedule, SampleOp
from tickpath.probe.stream import StreamResult, capture_stream, stream_result
from tickpath.stats import LatencyRecorder
from tickpath.tlsclient import client_context
from tickpath.venues.binance.endpoints import endpoints

SCHEMA = "tickpath.probe/1"
log = logging.getLogger("tickpath.probe")

# Share of the venue's per-connection incoming-message limit the ws pings may use.
_WS_LIMIT_SHARE = 0.5
# Share of the venue's REST request-weight budget the rest pings may use.
_REST_BUDGET_SHARE = 0.5

# progress(method, done, total); total 0 means "running, size unknown".
ProgressFn = Callable[[str, int, int], None]


@dataclass
class ProbeResult:
    """Everything one run measured; ``to_dict``/``to_json`` give the documented schema."""

    config: ProbeConfig
    started: float
    finished: float = 0.0
    host: dict[str, Any] = field(default_factory=dict)
    clock: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    dns: dict[str, DnsResult] = field(default_factory=dict)
    stats: dict[str, MethodStats] = field(default_factory=dict)
    offset: OffsetEstimate | None = None
    stream: StreamResult | None = None
    path: dict[str, Any] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    _dict: dict[str, Any] | None = field(default=None, repr=False)

    def add_error(self, method: str, exc: BaseException, target: str | None = None) -> None:
        code = exc.exit_code if isinstance(exc, TickpathError) else 4
        entry: dict[str, Any] = {
            "method": method,
            "error": type(exc).__name__,
            "message": str(exc) or type(exc).__name__,
            "exit_code": code,
        }
        if target is not None:
            entry["target"] = target
        self.errors.append(entry)
        self._dict = None
        log_event(log, logging.INFO, "probe_method_failed", method=method, error=type(exc).__name__)

    @property
    def exit_code(self) -> int:
        return int(self.errors[0]["exit_code"]) if self.errors else 0

    def recorders(self) -> dict[str, LatencyRecorder]:
        """The histograms worth a ``.hgrm`` file, by name: each method (``tcp``), each target when a
        method has several (``tcp.1.2.3.4:443``), the stream headline and each stream type's E
        latency (``stream.depth.E``, corrected when an offset is known). Every histogram is also in
        the JSON, encoded."""
        out: dict[str, LatencyRecorder] = {}
        for method, st in self.stats.items():
            out[method] = st.overall.latency
            if len(st.per_target) > 1:
                for name, ts in st.per_target.items():
                    out[f"{method}.{name}"] = ts.latency
        if self.stream is not None:
            out["stream"] = self.stream.headline(self.offset)
            for (label, fld), series in self.stream.series.items():
                if fld == "E":
                    raw, corrected = series.recorders(self.offset)
                    out[f"stream.{label}.E"] = corrected if corrected is not None else raw
        return out

    def to_dict(self) -> dict[str, Any]:
        """The result in schema ``tickpath.probe/1`` (computed once the run has finished, then kept)."""
        if self._dict is not None:
            return self._dict
        data = self._build()
        if self.finished:
            self._dict = data
        return data

    def _build(self) -> dict[str, Any]:
        methods: dict[str, Any] = {}
        for name, st in self.stats.items():
            methods[name] = st.to_dict()
        if "dns" in methods:
            methods["dns"]["hosts"] = {h: r.to_dict() for h, r in self.dns.items()}
        if self.stream is not None:
            headline, summary = self.stream.headline_summary(self.offset)
            methods["stream"] = {
                "summary": summary,
                "histogram": headline.encode(),
                "corrected": self.offset is not None,
                **self.stream.to_dict(self.offset),
            }
        if self.path is not None:
            methods["path"] = pathmod.favour(self.path, methods)
        for name, note in self.notes.items():
            methods.setdefault(name, {})["note"] = note
        clock = dict(self.clock)
        clock["offset"] = self.offset.to_dict() if self.offset else None
        clock["timebases"] = (
            "RTTs use the monotonic clock; one-way stream latency compares the wall clock with exchange event times"
        )
        c = self.config
        return {
            "schema": SCHEMA,
            "tool": {"name": "tickpath", "version": __version__},
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "host": self.host,
            "target": self.target,
            "clock": clock,
            "config": {
                "methods": list(c.methods),
                "rate": c.rate,
                "samples": c.sample_count,
                "warmup": c.warmup,
                "timeout_s": c.timeout,
                "stream_seconds": c.stream_seconds,
                "schedule": "open-loop: latency counts from each sample's intended time",
            },
            "methods": methods,
            "warnings": sample_warnings(methods),
            "errors": self.errors,
            "exit_code": self.exit_code,
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else ""


class _Runner:
    def __init__(self, config: ProbeConfig, clock: Clock, progress: ProgressFn | None) -> None:
        self.c = config
        self.clock = clock
        self.progress = progress
        self.rest = config.rest_endpoint()
        self.ws = config.ws_endpoint()
        self.ctx = client_context(config.ca_file, verify=config.verify_tls)
        self.result = ProbeResult(config, clock.wall_ns() / 1e9)

    def _schedule(self, rate: float | None = None) -> OpenLoopSchedule:
        return OpenLoopSchedule(
            self.clock,
            rate=rate or self.c.rate,
            count=self.c.count_at(rate or self.c.rate),
            warmup=self.c.warmup,
            timeout=self.c.timeout,
        )

    async def _sampled(self, method: str, targets: list[str], op: SampleOp, rate: float | None = None) -> MethodStats:
        stats = MethodStats.new(method, targets)
        self.result.stats[method] = stats
        total = self.c.count_at(rate or self.c.rate)

        def tick(done: int) -> None:
            if self.progress is not None:
                self.progress(method, done, total)

        await self._schedule(rate).run(stats, op, tick)
        for name, ts in stats.per_target.items():
            if ts.latency.count == 0 and ts.latency.losses:
                self.result.errors.append(
                    {
                        "method": method,
                        "target": name,
                        "error": "AllSamplesLost",
                        "message": f"every {method} sample to {name} failed: {ts.last_error}",
                        "exit_code": 4,
                    }
                )
        return stats

    async def run(self) -> ProbeResult:
        c, r = self.c, self.result
        state_task = asyncio.ensure_future(
            host_state(
                root=c.sys_root,
                imds=c.imds,
                imds_url=c.imds_url,
                imds_timeout=c.imds_timeout,
                chrony=c.chrony,
            )
        )
        current = "resolve"  # the step running when a signal arrives
        try:
            ips = await self._resolve()
            for method, step in (
                ("tcp", self._tcp),
                ("tls", self._tls),
                ("rest", self._rest),
                ("ws", self._ws),
                ("stream", self._stream),
                ("path", self._path),
            ):
                if method not in c.methods:
                    continue
                current = method
                if self.progress is not None:
                    self.progress(method, 0, 0)
                try:
                    await step(ips)
                except (TickpathError, OSError, TimeoutError) as exc:
                    r.add_error(method, exc)
            current = ""
        except asyncio.CancelledError:
            self._interrupted(current)
            raise
        finally:
            r.host, r.clock = await state_task
            r.finished = self.clock.wall_ns() / 1e9
        return r

    def _interrupted(self, method: str) -> None:
        """Mark the result as cut short by cancellation (SIGINT/SIGTERM in the CLI): the methods that
        finished stay as they are, the one running keeps the samples it completed (in-flight ones are
        neither latencies nor losses), and the error says which methods never ran. It goes first in
        ``errors`` so the result's exit code is 130."""
        r, methods = self.result, self.c.methods
        if method == "resolve":  # name resolution comes first, whether or not dns is a chosen method
            method = "dns"
            later = tuple(m for m in methods if m != "dns")
        else:
            later = methods[methods.index(method) + 1 :] if method in methods else ()
        where = f"during {method}" if method else "after the last method"
        note = None
        if method in r.stats:
            lat = r.stats[method].overall.latency
            where += f" after {lat.count} measured sample(s) and {lat.losses} loss(es)"
            note = "interrupted: figures cover only the samples completed before the signal"
        elif method == "stream" and r.stream is not None:
            where += f" after {r.stream.seconds:.1f} s and {r.stream.messages} message(s)"
            note = "interrupted: figures cover only the messages received before the signal"
        if note is not None:
            old = r.notes.get(method)
            r.notes[method] = f"{old}; {note}" if old else note
        message = f"interrupted {where}"
        if later:
            message += f"; not run: {', '.join(later)}"
        r.errors.insert(
            0,
            {
                "method": method or "probe",
                "error": "InterruptedRunError",
                "interrupted": True,
                "message": message,
                "exit_code": 130,
            },
        )
        log_event(log, logging.INFO, "probe_interrupted", method=method)

    async def _resolve(self) -> dict[str, list[str]]:
        """IPs per role (``rest``, ``ws``); DNS stats when ``dns`` is a chosen method."""
        c, r = self.c, self.result
        hosts = {"rest": self.rest.host, "ws": self.ws.host}
        r.target = {
            "venue": c.venue,
            "symbol": c.symbol,
            "rest_url": f"{self.rest.scheme}://{self.rest.host}:{self.rest.port}{self.rest.path}",
            "ws_url": f"{self.ws.scheme}://{self.ws.host}:{self.ws.port}{self.ws.path}",
            "ips": {},
            "edge": {},
        }
        samples = c.dns_samples if "dns" in c.methods else 1
        dns_stats = MethodStats.new("dns", sorted(set(hosts.values())))
        ips: dict[str, list[str]] = {"rest": [], "ws": []}
        for host in sorted(set(hosts.values())):
            try:
                res = await resolve(host, samples, reverse=c.max_ips if "dns" in c.methods else 0)
            except TickpathError as exc:
                dns_stats.loss(host, type(exc).__name__, str(exc))
                r.add_error("dns", exc, host)
                continue
            r.dns[host] = res
            for ns in res.samples_ns:
                dns_stats.record(host, ns, ns)
            chosen = list(res.ips[: c.max_ips])
            r.target["ips"][host] = chosen
            r.target["edge"][host] = res.edge
            for role, h in hosts.items():
                if h == host:
                    ips[role] = chosen
        if "dns" in c.methods:
            r.stats["dns"] = dns_stats
        return ips

    async def _tcp(self, ips: dict[str, list[str]]) -> None:
        targets: list[str] = []
        for role, ep in (("rest", self.rest), ("ws", self.ws)):
            for ip in ips[role]:
                for port in (ep.port, *self.c.tcp_ports):
                    t = target_name(ip, port)
                    if t not in targets:
                        targets.append(t)
        if not targets:
            raise _no_address("tcp")
        await self._sampled("tcp", targets, tcp_op(self.clock))

    async def _tls(self, ips: dict[str, list[str]]) -> None:
        by_name: dict[str, list[str]] = {}
        for role, ep in (("rest", self.rest), ("ws", self.ws)):
            if ep.tls:
                host_targets = by_name.setdefault(ep.host, [])
                for ip in ips[role]:
                    t = target_name(ip, ep.port)
                    if t not in host_targets:
                        host_targets.append(t)
        if not by_name:
            self.result.notes["tls"] = "skipped: neither endpoint uses TLS (http:// and ws:// URLs)"
            return
        if not any(by_name.values()):
            raise _no_address("tls")
        # Each target is greeted with the SNI of the host name it was resolved for.
        host = next(iter(by_name))
        targets = [t for ts in by_name.values() for t in ts]
        names = {t: h for h, ts in by_name.items() for t in ts}

        async def op(i: int, target: str) -> int:
            return await tls_op(self.clock, names.get(target, host), self.ctx)(i, target)

        await self._sampled("tls", targets, op)

    async def _rest(self, ips: dict[str, list[str]]) -> None:
        if not ips["rest"]:
            raise _no_address("rest")
        pool = ConnectionPool(self.clock, self.rest, self.ctx)
        try:
            for ip, exc in (await pool.open_all(ips["rest"], self.c.timeout)).items():
                self.result.add_error("rest", exc, ip)
            try:
                await self._offset(pool, [ip for ip in ips["rest"] if pool.is_open(ip)])
            except TickpathError as exc:
                self.result.add_error("rest", exc)  # the ping round trips are still measured
            # Stay well inside the venue's request-weight budget: a probe must not earn a 429/418 ban.
            ep = endpoints(self.c.venue)
            cap = ep.weight_budget_per_minute * _REST_BUDGET_SHARE / 60.0 / max(1, ep.ping_weight)
            rate = min(self.c.rate, cap)
            if rate < self.c.rate:
                self.result.notes["rest"] = (
                    f"rate capped at {rate:g}/s: half of {self.c.venue}'s "
                    f"{ep.weight_budget_per_minute} request weight per minute"
                )
            await self._sampled("rest", ips["rest"], rest_op(pool, self.c.defaults().ping_path), rate)
        finally:
            pool.close()

    async def _offset(self, pool: ConnectionPool, ips: list[str]) -> None:
        if self.result.offset is not None or not ips:
            return
        samples = await sample_server_time(self.clock, pool, ips[0], self.c.defaults().time_path, self.c.offset_samples)
        self.result.offset = estimate_offset(samples)

    async def _ws(self, ips: dict[str, list[str]]) -> None:
        if not ips["ws"]:
            raise _no_address("ws")
        # A bare /ws connection carries no market data, so pongs do not queue behind it.
        per_ip_rate = self.c.rate / len(ips["ws"])
        limit = endpoints(self.c.venue).max_incoming_messages_per_s
        slots = min(64, max(1, math.ceil(per_ip_rate / (limit * _WS_LIMIT_SHARE))))
        pool = ConnectionPool(self.clock, self.ws, self.ctx, ws_setup(self.ws, "/ws"), slots=slots)
        self.result.notes["ws"] = (
            f"{slots} connection(s) per IP, pings rotated over them to stay under the "
            f"venue's {limit} messages/s per connection"
        )
        try:
            for ip, exc in (await pool.open_all(ips["ws"], self.c.timeout)).items():
                self.result.add_error("ws", exc, ip)
            if not pool.conns:
                return  # every IP refused: the errors above say why; no samples to take
            await self._sampled("ws", ips["ws"], ws_ping_op(pool, len(ips["ws"])))
        finally:
            pool.close()

    async def _stream(self, ips: dict[str, list[str]]) -> None:
        if not ips["ws"]:
            raise _no_address("stream")
        if self.result.offset is None and ips["rest"]:
            pool = ConnectionPool(self.clock, self.rest, self.ctx)
            try:
                await self._offset(pool, ips["rest"][:1])
            except TickpathError as exc:
                self.result.add_error("stream", exc, "clock-offset")  # raw figures are still worth having
            finally:
                pool.close()
        pool = ConnectionPool(self.clock, self.ws, self.ctx)
        # Attached before the capture starts: an interrupt keeps what arrived.
        self.result.stream = stream_result(ips["ws"][0], self.c.stream_names())
        await capture_stream(self.clock, pool, self.result.stream, self.c.stream_seconds)
        if not self.result.stream.series and not self.result.stream.error:
            self.result.errors.append(
                {
                    "method": "stream",
                    "error": "ExchangeError",
                    "exit_code": 5,
                    "message": f"no market data with event times arrived in {self.c.stream_seconds:g} s "
                    f"({self.result.stream.messages} messages); is {self.c.symbol} traded on {self.c.venue}?",
                }
            )
        if self.result.stream.error:
            self.result.errors.append(
                {
                    "method": "stream",
                    "error": "ConnectionClosedError",
                    "message": self.result.stream.error,
                    "exit_code": 4,
                }
            )

    async def _path(self, ips: dict[str, list[str]]) -> None:
        roles: dict[str, list[str]] = {}  # every address, WS ones first (the first is `destination`)
        for role in ("ws", "rest"):
            for ip in ips[role]:
                roles.setdefault(ip, []).append(role)
        if not roles:
            raise _no_address("path")
        c = self.c
        self.result.path = await pathmod.trace_all(
            roles, max_hops=c.path_max_hops, queries=c.path_queries, timeout=c.path_timeout
        )


def _no_address(method: str) -> TickpathError:
    from tickpath.errors import ResolutionError

    return ResolutionError(f"{method}: no address to probe (DNS gave none; see the dns error)")


async def run_probe(
    config: ProbeConfig, *, clock: Clock = DEFAULT_CLOCK, progress: ProgressFn | None = None
) -> ProbeResult:
    """Run every method in ``config.methods`` and return what was measured (never raises for a
    failing method: see ``result.errors`` and ``result.exit_code``)."""
    return await _Runner(config, clock, progress).run()


class ProbeRun(_Runner):
    """One probe run whose result stays reachable if the run is cancelled: ``await run.run()``, and
    after an interrupt ``run.result`` holds what was measured, marked as interrupted (the CLI writes
    it to every requested output before exiting 130)."""

    def __init__(
        self, config: ProbeConfig, *, clock: Clock = DEFAULT_CLOCK, progress: ProgressFn | None = None
    ) -> None:
        super().__init__(config, clock, progress)


__all__ = ["SCHEMA", "Endpoint", "ProbeResult", "ProbeRun", "run_probe"]
