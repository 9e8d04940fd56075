"""One function per demo step. Each calls the capability's library entry point, writes its artifacts
under the step's own directory, and returns a small JSON-ready result for the summary.

Everything a step starts (Terraform roots and probe agents, nats-server, the simulator's feed
connections) is stopped in its own ``finally``, with the teardown shielded from a second Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tickpath.demo.config import DemoConfig
from tickpath.demo.progress import Step
from tickpath.errors import ConfigError, InfraError, TickpathError
from tickpath.logs import log_event
from tickpath.sim import Simulator

if TYPE_CHECKING:
    from tickpath.feed import Feed

log = logging.getLogger("tickpath.demo")
T = TypeVar("T")

# Result documents of other capabilities that do not carry the report's "schema" field yet get a
# wrapper beside them with this version.
SCHEMA_VERSION = 1


async def shielded(aw: Awaitable[T]) -> T:
    """Await ``aw`` to the end even if this task is cancelled meanwhile, then re-raise the cancel.

    Teardown (Terraform destroy, stopping servers) must finish, and a Ctrl-C that arrives during
    it must still stop the demo afterwards rather than be swallowed.
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


async def settle(tasks: list[asyncio.Task[Any]], timeout_s: float = 30.0) -> list[str]:
    """Cancel ``tasks`` and wait until all are done, re-cancelling any that swallowed the cancel.

    Returns the names of tasks still running at ``timeout_s`` (logged; never waits forever).
    """
    deadline = time.monotonic() + timeout_s
    pending = [t for t in tasks if not t.done()]
    while pending and time.monotonic() < deadline:
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=1.0)
        pending = [t for t in pending if not t.done()]
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: an error during teardown must not be reported as "never retrieved"
    names = [t.get_name() for t in pending]
    if names:
        log_event(log, logging.ERROR, "demo_teardown_timeout", tasks=",".join(names))
    return names


def write_json(path: Path, doc: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def with_schema(doc: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``doc`` with the report's ``schema`` field (kept as is when the writer already set one)."""
    return {"schema": f"tickpath.{kind}/{SCHEMA_VERSION}", **doc}


# -- sweep ----------------------------------------------------------------------------------
@dataclass
class SweepStepResult:
    winner: str
    expected_fastest: str
    why: str
    ranking: list[dict[str, Any]]
    failed: list[str]
    results_dir: Path
    sweep_id: str
    elapsed_s: float

    @property
    def winner_is_fastest(self) -> bool:
        return self.winner == self.expected_fastest

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "expected_fastest": self.expected_fastest,
            "winner_is_fastest": self.winner_is_fastest,
            "why": self.why,
            "ranking": self.ranking,
            "failed": self.failed,
            "results_dir": str(self.results_dir),
            "sweep_id": self.sweep_id,
            "elapsed_s": round(self.elapsed_s, 2),
        }


def sweep_document(cfg: DemoConfig, sim: Simulator, base_dir: Path) -> dict[str, Any]:
    """The TOML-shaped sweep plan: provider ``local``, one candidate per simulator zone."""
    zones = []
    for z in cfg.zones:
        ep = sim.endpoint("futures", zone=z.name)
        zones.append({"id": z.name, "rest_url": ep.rest_url, "ws_url": ep.ws_url})
    probe_s = cfg.sweep_probe_s
    return {
        "sweep": {
            "name": "demo",
            "provider": "local",
            "keep": 1,
            "ttl_minutes": 15,
            # methods run one after another for probe_s each; agent start-up on a busy machine on top
            "result_timeout_s": len(cfg.sweep_methods) * probe_s + 90,
            "poll_interval_s": 0.25,
            "state_dir": ".state",
            "results_dir": ".",
        },
        "probe": {
            "venue": "futures",
            "symbol": cfg.symbols[0],
            "methods": list(cfg.sweep_methods),
            "duration_s": probe_s,
            "rate": 20,
        },
        "ranking": {"metric": cfg.sweep_metric, "max_loss_ratio": 0.2},
        "local": {"zones": zones},
    }


async def sweep_step(cfg: DemoConfig, sim: Simulator, out: Path, step: Step) -> SweepStepResult:
    """A real ``local`` sweep (Terraform + probe agents) across the simulator's zones."""
    from tickpath.sweep import cleanup_sweep, parse_config, run_sweep
    from tickpath.sweep.orchestrator import CandidateState

    out.mkdir(parents=True, exist_ok=True)
    plan = sweep_document(cfg, sim, out)
    scfg = parse_config(plan, base_dir=out)
    write_json(out / "sweep-plan.json", plan)  # the sweep's TOML document, as JSON
    started: list[str] = []
    status: dict[str, str] = {z.name: "pending" for z in cfg.zones}

    def progress(state: str, st: CandidateState) -> None:
        status[st.name] = state
        step.note(", ".join(f"{n} {s}" for n, s in status.items()))

    t0 = time.monotonic()
    cleanup_errors: list[str] = []

    async def cleanup() -> None:
        # The winner is kept by the sweep (that is its job); the demo needs nothing left behind.
        try:
            await cleanup_sweep(scfg.state_dir, started[0])
        except TickpathError as exc:
            cleanup_errors.append(str(exc))

    try:
        run = await run_sweep(scfg, terraform=cfg.terraform, progress=progress, on_start=started.append)
    finally:
        if started:
            step.note("destroying what the sweep kept")
            await shielded(cleanup())
    if cleanup_errors:
        raise InfraError(f"sweep cleanup incomplete: {cleanup_errors[0]}")
    outcome = run.outcome
    if not outcome.winners:
        failed = {n: s.error for n, s in outcome.states.items() if s.failed}
        raise InfraError(f"the sweep ranked no zone: {failed}")
    summary = json.loads((run.results_dir / "summary.json").read_text(encoding="utf-8"))
    if "schema" not in summary:
        write_json(run.results_dir / "sweep.json", with_schema(summary, "sweep"))
    for name, st in outcome.states.items():
        probe = (st.result or {}).get("probe")
        if isinstance(probe, dict) and str(probe.get("schema", "")).startswith("tickpath.probe/"):
            # The probe document of each candidate, on its own, so the report shows its methods, path
            # and stream latency (titled by its directory: the zone), and draws the sweep's
            # per-candidate distribution.
            write_json(run.results_dir / "probes" / name / "probe.json", {**probe, "candidate": name})
    return SweepStepResult(
        winner=outcome.winners[0],
        expected_fastest=cfg.fastest_zone,
        why=str(summary.get("why", "")),
        ranking=[{"name": n, "score_us": outcome.states[n].score} for n in outcome.ranking],
        failed=sorted(n for n, s in outcome.states.items() if s.failed),
        results_dir=run.results_dir,
        sweep_id=outcome.sweep_id,
        elapsed_s=time.monotonic() - t0,
    )


async def _probe_zone(cfg: DemoConfig, sim: Simulator, zone: str) -> tuple[str, dict[str, Any]]:
    """One zone's probe document, with the methods and length of the Terraform sweep's probes."""
    from tickpath.probe import ProbeConfig, run_probe
    from tickpath.probe.config import duration_for

    ep = sim.endpoint("futures", zone=zone)
    pc = ProbeConfig(
        venue="futures",
        methods=cfg.sweep_methods,
        rest_url=ep.rest_url,
        ws_url=ep.ws_url,
        symbol=cfg.symbols[0],
        duration=duration_for(cfg.sweep_probe_s, cfg.sweep_methods),  # per method, as in the sweep
        rate=20.0,
        imds=False,
    )
    # On the simulator's clock: its zone delays are in that time (the real clock outside tests).
    return zone, (await run_probe(pc, clock=sim.clock)).to_dict()


async def probe_zones_step(cfg: DemoConfig, sim: Simulator, out: Path, step: Step) -> SweepStepResult:
    """Without Terraform: the same probe against every zone, from this process, ranked the same way.

    Written like a sweep's results (``latency_results.csv``, ``sweep.json``, one probe document per
    zone) so the report and the rest of the demo do not need to know the difference.
    """
    from tickpath.sweep.ranking import parse_metric, rank

    metric = parse_metric(cfg.sweep_metric)
    t0 = time.monotonic()
    run_dir = out / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())

    step.note("no terraform: probing every zone from this process")
    docs = dict(await asyncio.gather(*(_probe_zone(cfg, sim, z.name) for z in cfg.zones)))
    scores, figures, failed = _judge_zones(docs, metric, run_dir)
    order = rank(scores)
    if not order:
        raise InfraError(f"no zone could be measured: {failed}")
    best = order[0]
    why = f"{best} has the lowest {metric.text} = {scores[best]:.1f} µs ({metric.explain(figures[best])})"
    if len(order) > 1:
        why += f", {scores[order[1]] - scores[best]:.1f} µs ahead of {order[1]}"
    _write_zone_csv(run_dir / "latency_results.csv", order, scores, figures, failed)
    ranking = [{"name": z, "score_us": scores[z]} for z in order]
    write_json(
        run_dir / "sweep.json",
        with_schema(
            {
                "provider": "in-process probes (terraform not installed)",
                "metric": metric.text,
                "unit": "us",
                "winner": best,
                "why": why,
                "ranking": ranking,
                "failed": sorted(failed),
            },
            "sweep",
        ),
    )
    return SweepStepResult(
        winner=best,
        expected_fastest=cfg.fastest_zone,
        why=why,
        ranking=ranking,
        failed=sorted(failed),
        results_dir=run_dir,
        sweep_id="",
        elapsed_s=time.monotonic() - t0,
    )


def _judge_zones(
    docs: dict[str, dict[str, Any]], metric: Any, run_dir: Path
) -> tuple[dict[str, float], dict[str, dict[str, float]], dict[str, str]]:
    """Each zone's probe document written as a sweep writes it, and its figures and score (or why not)."""
    from tickpath.sweep.ranking import extract_figures

    scores: dict[str, float] = {}
    figures: dict[str, dict[str, float]] = {}
    failed: dict[str, str] = {}
    for zone, doc in docs.items():
        write_json(run_dir / "probes" / zone / "probe.json", {**doc, "candidate": zone})
        try:
            figures[zone] = extract_figures(doc)
            scores[zone] = metric.evaluate(figures[zone])
        except TickpathError as exc:
            failed[zone] = str(exc)
    return scores, figures, failed


def _write_zone_csv(
    path: Path,
    order: list[str],
    scores: dict[str, float],
    figures: dict[str, dict[str, float]],
    failed: dict[str, str],
) -> None:
    """``latency_results.csv`` in the sweep's columns: ranked zones first (the best kept), then failed ones."""
    import csv

    keys = sorted({k for f in figures.values() for k in f})
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "candidate", "status", "failed", "kept", "score_us", *[f"{k}_us" for k in keys], "error"])
        for zone in [*order, *sorted(failed)]:
            figs = figures.get(zone, {})
            measured = zone in scores
            w.writerow(
                [
                    order.index(zone) + 1 if measured else "",
                    zone,
                    "measured" if measured else "failed",
                    "no" if measured else "yes",
                    "yes" if zone == order[0] else "no",
                    f"{scores[zone]:.3f}" if measured else "",
                    *[f"{figs[k]:.3f}" if k in figs else "" for k in keys],
                    failed.get(zone, ""),
                ]
            )


# -- feed, NATS, ingest ---------------------------------------------------------------------
@dataclass
class FeedStepResult:
    zone: str
    started_ns: int
    ended_ns: int
    venues: dict[str, dict[str, Any]] = field(default_factory=dict)
    databases: dict[str, Path] = field(default_factory=dict)
    ingest: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "seconds": round((self.ended_ns - self.started_ns) / 1e9, 2),
            "venues": self.venues,
            "databases": {k: str(v) for k, v in self.databases.items()},
            "ingest": self.ingest,
        }


def _feed_brief(summary: Any) -> dict[str, Any]:
    lat = summary.latency.get("receipt_minus_event") or {}
    offset = summary.clock_offset or {}
    return {
        "events": summary.emitted,
        "by_channel": summary.events,
        "gaps": summary.gaps,
        "resyncs": summary.resyncs,
        "reconnects": summary.reconnects,
        "dropped": summary.dropped,
        "malformed": summary.malformed,
        # exchange clock minus ours, measured by the feed from the server-time endpoint
        "clock_offset_ms": round(float(offset["offset_us"]) / 1e3, 2) if "offset_us" in offset else None,
        "receipt_minus_event_ms": {k: lat.get(k) for k in ("p50", "p99", "max", "count") if k in lat},
    }


async def _ingest_until_done(source: str, target: str, feeds_done: asyncio.Event) -> dict[str, Any]:
    """``tickpath ingest`` while the feed publishes, and until the stream is drained after it stops.

    Each run exits after a short idle spell; the consumer is durable, so the next run resumes
    exactly where the last acknowledged batch ended.
    """
    from tickpath.ingest import IngestConfig, run_ingest

    total: dict[str, Any] = {"messages": 0, "inserted": 0, "duplicates": 0, "rejected": 0, "runs": 0}
    latency: Any = None
    config = IngestConfig(source=source, target=target, idle_exit_s=1.5, fetch_timeout_s=0.5)
    while True:
        res = await run_ingest(config)  # raises CancelledError when this task is cancelled
        total["runs"] += 1
        for k in ("messages", "inserted", "duplicates", "rejected"):
            total[k] += getattr(res, k)
        if latency is None:
            latency = res.publish_to_ingest
        else:
            latency.merge(res.publish_to_ingest)
        if feeds_done.is_set() and res.messages == 0:
            break
    total["target"] = target
    total["publish_to_ingest_us"] = latency.summary().to_dict("us") if latency is not None else None
    total["clock"] = "wall clock of this machine at publish and at ingest (same host)"
    return total


async def feed_step(
    cfg: DemoConfig, sim: Simulator, zone: str, out: Path, step: Step, nats_url: str | None
) -> FeedStepResult:
    """Every venue's feed from ``zone`` into DuckDB; futures also through JetStream + ingest."""
    out.mkdir(parents=True, exist_ok=True)
    result = FeedStepResult(zone=zone, started_ns=time.time_ns(), ended_ns=0)
    feeds = _demo_feeds(cfg, sim, zone, out, nats_url, result)
    done = asyncio.Event()

    async def watch() -> None:
        t0 = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            events = sum(f.pipeline.stats.emitted for f in feeds)
            step.advance_to(time.monotonic() - t0, cfg.feed_s)
            step.note(f"{events:,} events from {zone}" + (" (also via NATS)" if nats_url else ""))

    watcher = asyncio.create_task(watch(), name="feed-watch")
    runs: list[asyncio.Task[Any]] = []
    ingest: list[asyncio.Task[dict[str, Any]]] = []
    try:
        runs.extend(asyncio.create_task(f.run(), name=f"feed-{f.config.venue}") for f in feeds)
        if nats_url is not None:
            ingest.append(await _start_ingest(feeds, runs, nats_url, out, done))
        summaries = await asyncio.gather(*runs)
        done.set()
        result.ended_ns = time.time_ns()
        for f, s in zip(feeds, summaries, strict=True):
            write_json(out / f"{f.config.venue}.summary.json", with_schema(s.to_dict(), "feed"))
            result.venues[f.config.venue] = _feed_brief(s)
        if ingest:
            step.note("draining JetStream into bus.duckdb")
            result.ingest = await asyncio.wait_for(ingest[0], timeout=60)
            write_json(out / "ingest.json", result.ingest)
    finally:
        # On error or Ctrl-C: each feed flushes its sinks as it stops; wait for that, bounded.
        for f in feeds:
            f.stop()
        await shielded(settle([watcher, *runs, *ingest]))
    log_event(log, logging.INFO, "demo_feed_done", zone=zone, venues=len(feeds))
    return result


_DEMO_STREAM = "TICKPATH_DEMO"


def _demo_feeds(
    cfg: DemoConfig, sim: Simulator, zone: str, out: Path, nats_url: str | None, result: FeedStepResult
) -> list[Feed]:
    """A feed per venue into its own DuckDB file; futures also publishes to JetStream."""
    from tickpath.feed import Feed, FeedConfig

    feeds: list[Feed] = []
    for venue in cfg.venues:
        ep = sim.endpoint(venue, zone=zone)
        db = out / f"{venue}.duckdb"
        result.databases[venue] = db
        sinks = [f"duckdb:{db}"]
        if nats_url is not None and venue == "futures":
            sinks.append(f"{nats_url}?stream={_DEMO_STREAM}&spool={out / '.nats' / 'spool'}")
        feeds.append(
            Feed(
                FeedConfig(
                    venue=venue,  # type: ignore[arg-type]
                    symbols=cfg.symbols,
                    sinks=tuple(sinks),
                    base_url=ep.ws_url,
                    rest_url=ep.rest_url,
                    duration_s=cfg.feed_s,
                )
            )
        )
    return feeds


async def _start_ingest(
    feeds: list[Feed], runs: list[asyncio.Task[Any]], nats_url: str, out: Path, done: asyncio.Event
) -> asyncio.Task[dict[str, Any]]:
    """Ingest from JetStream into bus.duckdb, started once the futures feed's sink made the stream."""
    bus_feed = next(f for f in feeds if f.config.venue == "futures")
    # The sink creates the stream before the feed connects: ingest can start from then on.
    await asyncio.wait([asyncio.create_task(bus_feed.started.wait()), *runs], return_when=asyncio.FIRST_COMPLETED)
    return asyncio.create_task(
        _ingest_until_done(
            f"{nats_url}?stream={_DEMO_STREAM}&durable=demo-ingest", f"duckdb:{out / 'bus.duckdb'}", done
        ),
        name="ingest",
    )


# -- dq -------------------------------------------------------------------------------------
def dq_one(db: Path, since_ns: int, until_ns: int, out: Path, name: str) -> dict[str, Any]:
    """``tickpath dq`` on one DuckDB store over the feed's window; JSON and JUnit into ``out``."""
    from tickpath.dq.duckdb_runner import DuckDBEngine
    from tickpath.dq.report import to_junit
    from tickpath.dq.run import DqConfig, run_dq

    engine = DuckDBEngine(db)
    try:
        report = run_dq(DqConfig(since_ns=since_ns, until_ns=until_ns), engine)
    finally:
        engine.close()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", with_schema({"database": str(db), **report.to_dict()}, "dq"))
    (out / f"{name}.junit.xml").write_text(to_junit(report), encoding="utf-8")
    return {
        "ok": report.ok,
        "checks": {r.name: {"ok": r.ok, "summary": r.summary} for r in report.results},
        "rows": report.rows_in_window,
    }


# -- busbench -------------------------------------------------------------------------------
async def busbench_step(cfg: DemoConfig, out: Path, step: Step) -> dict[str, Any]:
    """``busbench local``: a two-server cluster, one open-loop run; figures and histograms to ``out``."""
    from tickpath.busbench.config import BenchConfig
    from tickpath.busbench.local import LocalConfig, run_local

    def progress(label: str, sent: int, received: int, total: int) -> None:
        step.advance_to(received, total)
        step.note(f"{label}: {received:,}/{total:,} received")

    # URLs are placeholders: run_local fills in the cluster it starts.
    bench = BenchConfig(
        pub_url="nats://127.0.0.1:4222",
        sub_url="nats://127.0.0.1:4222",
        size=cfg.bus_size,
        rate=cfg.bus_rate,
        duration=cfg.bus_s,
        warmup=cfg.bus_warmup_s,
    )
    results = await run_local(LocalConfig(servers=2, binary=cfg.nats_server), bench, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for r in results:
        stem = f"s{r.size}-r{r.rate:g}"
        r.intended.write_hgrm(out / f"{stem}.intended.hgrm")
        r.actual.write_hgrm(out / f"{stem}.actual.hgrm")
        runs.append(r.to_dict())
    write_json(out / "busbench.json", {"schema": f"tickpath.busbench/{SCHEMA_VERSION}", "servers": 2, "runs": runs})
    first = results[0]
    return {
        "size": first.size,
        "rate": first.rate,
        "achieved_rate": round(first.achieved_rate, 1),
        "lost": first.lost,
        "ok": first.ok,
        "p50_us": round(first.intended.percentile(50) / 1e3, 1),
        "p99_us": round(first.intended.percentile(99) / 1e3, 1),
        "p50_actual_us": round(first.actual.percentile(50) / 1e3, 1),
        "p99_actual_us": round(first.actual.percentile(99) / 1e3, 1),
        "clock": "CLOCK_MONOTONIC of one process; p50/p99 from the intended send time",
    }


def require_dir_free(path: Path) -> None:
    """The results directory must be new or empty: a demo never mixes its files with another run's."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"results directory {path} already exists and is not empty; pick another with --results")
