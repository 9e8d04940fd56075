"""``await run_demo(config)``: the whole system against the simulator, then the report.

Order: simulator (three zones, an exchange clock offset, spot and futures) -> ``local`` sweep across
the zones with the real Terraform CLI -> feed from the winning zone into DuckDB (and through NATS
JetStream + ingest when ``nats-server`` is installed) -> dq -> ``busbench local`` -> report. Each step
writes under its own directory of ``config.results_dir``; ``demo.json`` there is the summary.

Whatever ends the run (the end, an error, Ctrl-C through :func:`tickpath.runtime.run`), each
step's ``finally`` stops what it started before the next line runs: Terraform roots destroyed and
probe agents stopped, nats-server processes terminated, feed connections closed, the simulator's
listeners closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickpath.demo import steps
from tickpath.demo.config import DemoConfig
from tickpath.demo.progress import DemoProgress
from tickpath.errors import ToolMissingError
from tickpath.logs import log_event
from tickpath.sim import SimConfig, Simulator

if TYPE_CHECKING:
    from tickpath.report import ReportResult  # imported when the report step runs: it is heavy

log = logging.getLogger("tickpath.demo")
SUMMARY_FILE = "demo.json"


@dataclass
class DemoSummary:
    """What the demo did, figures included; ``to_dict()`` is ``tickpath demo --json``."""

    results_dir: Path
    zones: dict[str, str]
    clock_offset_ms: float
    sim_ports: dict[str, dict[str, int]] = field(default_factory=dict)  # zone -> venue -> port (closed now)
    report_html: Path | None = None
    report_pngs: list[Path] = field(default_factory=list)
    report_sections: list[str] = field(default_factory=list)
    report_problems: list[str] = field(default_factory=list)
    sweep: steps.SweepStepResult | None = None
    feed: steps.FeedStepResult | None = None
    dq: dict[str, dict[str, Any]] = field(default_factory=dict)
    busbench: dict[str, Any] | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def dq_ok(self) -> bool | None:
        return all(d["ok"] for d in self.dq.values()) if self.dq else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "results_dir": str(self.results_dir),
            "report": str(self.report_html) if self.report_html else None,
            "report_pngs": [str(p) for p in self.report_pngs],
            "report_sections": self.report_sections,
            "report_problems": self.report_problems,
            "zones": self.zones,
            "clock_offset_ms": self.clock_offset_ms,
            "sim_ports": self.sim_ports,
            "sweep": self.sweep.to_dict() if self.sweep else None,
            "feed": self.feed.to_dict() if self.feed else None,
            "dq": self.dq,
            "dq_ok": self.dq_ok,
            "busbench": self.busbench,
            "skipped": self.skipped,
            "step_seconds": {k: round(v, 2) for k, v in self.step_seconds.items()},
            "elapsed_s": round(self.elapsed_s, 2),
        }


def _zone_text(cfg: DemoConfig) -> dict[str, str]:
    out = {}
    for z in cfg.zones:
        lp = z.latency
        text = f"{lp.delay_ms:g} ms ± {lp.jitter_ms:g} ms"
        if lp.spike_prob and lp.spike_ms:
            text += f", spikes of {lp.spike_ms:g} ms with p={lp.spike_prob:g}"
        out[z.name] = text
    return out


def sim_config(cfg: DemoConfig) -> SimConfig:
    return SimConfig(
        venues=cfg.venues,
        symbols=cfg.symbols,
        seed=cfg.seed,
        rate=cfg.sim_rate,
        zones=cfg.zones,
        clock_offset_ms=cfg.clock_offset_ms,
    )


def nats_available(cfg: DemoConfig) -> str | None:
    """``None`` when the bus steps can run, else why not (said to the user, recorded in the summary)."""
    if not cfg.nats:
        return "skipped on request (--no-nats)"
    from tickpath.natsserver import find_nats_server

    try:
        find_nats_server(cfg.nats_server)
    except ToolMissingError as exc:
        return f"{exc}; the demo goes on without the bus"
    return None


def terraform_available(cfg: DemoConfig) -> str | None:
    """``None`` when the real sweep can run, else why not (the zones are then probed in-process).

    Only a terraform missing from PATH falls back: a ``--terraform PATH`` that is not an executable
    raises :class:`ToolMissingError` (exit 3), since the user asked for that binary."""
    from tickpath.sweep.terraform import find_terraform

    if cfg.terraform is not None:
        find_terraform(cfg.terraform)
        return None
    try:
        find_terraform(None)
    except ToolMissingError as exc:
        return f"{exc}; probing the zones from this process instead"
    return None


async def run_demo(config: DemoConfig, *, progress: DemoProgress | None = None) -> DemoSummary:
    """Run every step; returns the summary (also written to ``<results_dir>/demo.json``)."""
    t_start = time.monotonic()
    demo = _Demo.start(config, progress or DemoProgress(live=False))
    async with contextlib.AsyncExitStack() as stack:
        sim = await demo.simulator(stack)
        winner = await demo.sweep(sim)
        await demo.feed(stack, sim, winner)
        # The simulator and the feed's nats-server are not needed past this point.
        await steps.shielded(stack.aclose())
    demo.say_feed()
    await demo.dq()
    await demo.busbench()
    summary = demo.summary
    summary.elapsed_s = time.monotonic() - t_start
    demo.save()
    rep = await demo.report()
    summary.elapsed_s = time.monotonic() - t_start
    demo.save()
    log_event(log, logging.INFO, "demo_finished", seconds=round(summary.elapsed_s, 1), report=rep.html_path)
    return summary


@dataclass
class _Demo:
    """One demo run's steps, sharing its config, progress display and summary. Each step records
    its seconds and rewrites the summary, so an interrupted run still says what it had started."""

    config: DemoConfig
    ui: DemoProgress
    summary: DemoSummary
    no_terraform: str | None  # why the sweep probes in-process, or None
    no_bus: str | None  # why the NATS steps are skipped, or None

    @classmethod
    def start(cls, config: DemoConfig, ui: DemoProgress) -> _Demo:
        """Check the results directory and the tools, create it, and say what will be skipped."""
        root = config.results_dir
        steps.require_dir_free(root)
        no_terraform = terraform_available(config)  # before anything is written: a bad --terraform is an error
        root.mkdir(parents=True, exist_ok=True)
        summary = DemoSummary(root, _zone_text(config), config.clock_offset_ms)
        if no_terraform:
            summary.skipped["terraform"] = no_terraform
            ui.say(f"[yellow]Terraform sweep replaced:[/] {no_terraform}")
        no_bus = nats_available(config)
        if no_bus:
            summary.skipped["nats"] = no_bus
            ui.say(f"[yellow]NATS steps skipped:[/] {no_bus}")
        log_event(log, logging.INFO, "demo_started", results=root, nats=no_bus is None)
        return cls(config, ui, summary, no_terraform, no_bus)

    def save(self) -> None:
        steps.write_json(self.config.results_dir / SUMMARY_FILE, self.summary.to_dict())

    async def simulator(self, stack: contextlib.AsyncExitStack) -> Simulator:
        config, summary = self.config, self.summary
        async with self.ui.step("simulator", "starting 3 zones, spot + futures", config.expected_s["sim"]) as st:
            sim = await stack.enter_async_context(Simulator(sim_config(config)))
            summary.sim_ports = {
                z.name: {v: sim.endpoint(v, zone=z.name).port for v in config.venues} for z in config.zones
            }
        self.save()
        summary.step_seconds["simulator"] = st.elapsed_s
        self.ui.say(
            f"simulator: zones {', '.join(f'{n} ({t})' for n, t in summary.zones.items())}; "
            f"exchange clock offset {config.clock_offset_ms:+g} ms"
        )
        return sim

    async def sweep(self, sim: Simulator) -> str:
        """The sweep across the zones (Terraform, or in-process without it); returns the winner."""
        config, out = self.config, self.config.results_dir / "sweep"
        async with self.ui.step("sweep", "terraform apply, one probe agent per zone", config.expected_s["sweep"]) as st:
            if self.no_terraform:
                sw = await steps.probe_zones_step(config, sim, out, st)
            else:
                sw = await steps.sweep_step(config, sim, out, st)
            self.summary.sweep = sw
        self.summary.step_seconds["sweep"] = st.elapsed_s
        self.save()
        self.ui.say(
            f"sweep: winner [bold]{sw.winner}[/] ({sw.why})"
            + ("" if sw.winner_is_fastest else f" [red]expected {sw.expected_fastest}[/]")
        )
        return sw.winner

    async def feed(self, stack: contextlib.AsyncExitStack, sim: Simulator, winner: str) -> None:
        """The feed from the winning zone (through a JetStream server on ``stack`` when there is one)."""
        config, root = self.config, self.config.results_dir
        nats_url: str | None = None
        if self.no_bus is None:
            from tickpath.natsserver import NatsCluster

            # Its work directory (config, JetStream store) sits in the results so the server's command
            # line names this run; it is removed once the server has stopped.
            nats_dir = root / "feed" / ".nats"
            stack.callback(shutil.rmtree, nats_dir, True)
            cluster = NatsCluster(1, jetstream=True, binary=config.nats_server, workdir=nats_dir)
            await stack.enter_async_context(cluster)
            nats_url = cluster.client_urls[0]
        async with self.ui.step("feed", f"from {winner}", config.expected_s["feed"]) as st:
            self.summary.feed = await steps.feed_step(config, sim, winner, root / "feed", st, nats_url)
        self.summary.step_seconds["feed"] = st.elapsed_s
        self.save()

    def say_feed(self) -> None:
        feed = self._feed
        for venue, v in feed.venues.items():
            counts = f"gaps {v['gaps']}, resyncs {v['resyncs']}, dropped {v['dropped']}"
            self.ui.say(f"feed {venue}: {v['events']:,} events, {counts}")
        if feed.ingest:
            self.ui.say(
                f"ingest (JetStream -> bus.duckdb): {feed.ingest['inserted']:,} rows, "
                f"{feed.ingest['duplicates']} duplicates"
            )

    @property
    def _feed(self) -> steps.FeedStepResult:
        assert self.summary.feed is not None  # set by feed(), which ran or raised
        return self.summary.feed

    async def dq(self) -> None:
        config, summary, feed = self.config, self.summary, self._feed
        async with self.ui.step("dq", "checking the DuckDB stores", config.expected_s["dq"]) as st:
            since = feed.started_ns - 1_000_000_000
            until = feed.ended_ns + 1_000_000_000
            for venue, db in feed.databases.items():
                st.note(f"checking {db.name}")
                summary.dq[venue] = await asyncio.to_thread(
                    steps.dq_one, db, since, until, config.results_dir / "dq", venue
                )
        summary.step_seconds["dq"] = st.elapsed_s
        self.save()
        for venue, d in summary.dq.items():
            verdicts = ", ".join(f"{n} {'PASS' if c['ok'] else 'FAIL'}" for n, c in d["checks"].items())
            self.ui.say(f"dq {venue}: {verdicts}")

    async def busbench(self) -> None:
        summary = self.summary
        if self.no_bus is not None:
            summary.skipped["busbench"] = self.no_bus
            return
        config = self.config
        async with self.ui.step("busbench", "two-server NATS cluster", config.expected_s["busbench"]) as st:
            b = summary.busbench = await steps.busbench_step(config, config.results_dir / "busbench", st)
        summary.step_seconds["busbench"] = st.elapsed_s
        self.ui.say(
            f"busbench: {b['size']} B at {b['rate']:g}/s, p50 {b['p50_us']} µs, p99 {b['p99_us']} µs "
            f"(from intended send), lost {b['lost']}"
        )

    async def report(self) -> ReportResult:
        summary = self.summary
        async with self.ui.step("report", "rendering HTML and plots", self.config.expected_s["report"]) as st:
            from tickpath.report import build_report

            rep = await asyncio.to_thread(build_report, self.config.results_dir)
        summary.step_seconds["report"] = st.elapsed_s
        summary.report_html, summary.report_pngs = rep.html_path, rep.png_paths
        summary.report_sections, summary.report_problems = rep.sections, rep.problems
        return rep
