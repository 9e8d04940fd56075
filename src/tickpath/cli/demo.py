"""``tickpath demo``: the whole system in one command, against the simulator (thin shell over
:mod:`tickpath.demo`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Run all of tickpath on this machine, offline, in about two minutes, and write a report:

  1. simulator   a Binance-compatible exchange with three zones of different latency
                 (tokyo 14 ms, frankfurt 2 ms with rare spikes, virginia 5 ms) and an exchange
                 clock that runs 37 ms ahead, serving spot and USD-M futures
  2. sweep       a real `tickpath sweep` with the `local` provider: Terraform starts one probe agent
                 per zone, the probes measure tcp/ws/stream/path, the fastest zone wins, the rest
                 is destroyed
  3. feed        30 s of market data from the winning zone into DuckDB, with order books kept in
                 sync; with nats-server installed also through NATS JetStream and `tickpath ingest`
  4. dq          the data-quality checks on what the feed stored (JSON + JUnit XML)
  5. busbench    publish on NATS server A, receive on server B, 256 B at 1,000 msg/s
                 (needs nats-server; skipped with a note otherwise)
  6. report      one self-contained HTML file with every section, PNG plots beside it

Everything lands in one directory (results/demo-<UTC time>/ unless --results says otherwise).
Uses the terraform CLI when installed (no cloud account: only Terraform's built-in terraform_data);
without it the same probes run from this process and the demo says so. Works without root.
Ctrl-C stops it cleanly: probe agents, Terraform state, nats-server and the simulator are all
cleaned up before it exits (exit code 130).
"""

EPILOG = """\
examples:
  tickpath demo                              the full run (~2 min), report path printed at the end
  tickpath demo --quick                      a few seconds per step, to see it all work
  tickpath demo --no-nats --results /tmp/d   without the bus steps, into /tmp/d
  tickpath demo --json | jq .sweep.winner    the summary for machines

exit codes: 0 done (dq verdicts are in the summary and the report), 2 bad arguments or a results
directory that is not empty, 3 a program it needs is missing, 8 Terraform failed, 130 interrupted
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run everything against the simulator and write a report",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="DIR",
        help="write into DIR (new or empty; default: results/demo-<UTC timestamp>)",
    )
    p.add_argument(
        "--quick", action="store_true", help="a second or a few per step instead of the planned durations (for tests)"
    )
    p.add_argument(
        "--no-nats",
        action="store_true",
        help="skip NATS JetStream, ingest and busbench even if nats-server is installed",
    )
    p.add_argument(
        "--feed-seconds", type=float, default=None, metavar="S", help="how long the feed runs (default: 30, --quick: 4)"
    )
    p.add_argument("--terraform", default=None, metavar="PATH", help="terraform binary (default: on PATH)")
    p.add_argument("--nats-server", default=None, metavar="PATH", help="nats-server binary (default: on PATH)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> Any:
    from tickpath.demo import DemoConfig, default_results_dir

    overrides: dict[str, Any] = {
        "nats": not args.no_nats,
        "terraform": args.terraform,
        "nats_server": args.nats_server,
        "results_dir": args.results or default_results_dir(),
    }
    if args.feed_seconds is not None:
        overrides["feed_s"] = args.feed_seconds
    return DemoConfig.quick(**overrides) if args.quick else DemoConfig(**overrides)


def _print_summary(s: Any) -> None:
    from rich.console import Console

    con = Console()
    con.rule("[bold]tickpath demo")
    if s.sweep:
        con.print(f"[bold]where should my server live?[/] [green]{s.sweep.winner}[/]: {s.sweep.why}")
    if s.feed:
        parts = [
            f"{v}: {d['events']:,} events, {d['gaps']} gaps, {d['resyncs']} resyncs"
            + (
                f", exchange clock offset measured {d['clock_offset_ms']:+.1f} ms"
                if d.get("clock_offset_ms") is not None
                else ""
            )
            for v, d in s.feed.venues.items()
        ]
        con.print(f"[bold]how do I get the data there?[/] feed from {s.feed.zone}: " + "; ".join(parts))
        if s.feed.ingest:
            con.print(f"  through NATS JetStream and ingest: {s.feed.ingest['inserted']:,} rows in bus.duckdb")
    for venue, d in s.dq.items():
        failed = [n for n, c in d["checks"].items() if not c["ok"]]
        verdict = "[green]all checks pass[/]" if d["ok"] else f"[red]failed: {', '.join(failed)}[/]"
        con.print(f"  dq {venue}: {verdict} ({len(d['checks'])} checks)")
    if s.busbench:
        b = s.busbench
        con.print(
            f"[bold]what does my message bus cost me?[/] p50 {b['p50_us']} µs, p99 {b['p99_us']} µs "
            f"({b['size']} B at {b['rate']:g}/s, from the intended send time; lost {b['lost']})"
        )
    for step, why in s.skipped.items():
        con.print(f"[yellow]skipped {step}[/]: {why}")
    con.print(f"finished in {s.elapsed_s:.0f} s; results in {s.results_dir}")
    if s.report_html:
        con.print(f"[bold]report:[/] {s.report_html}")


def main(args: argparse.Namespace) -> int:
    from tickpath.demo import DemoProgress, run_demo
    from tickpath.runtime import run as run_async

    config = build_config(args)
    with DemoProgress() as ui:
        summary = run_async(run_demo(config, progress=ui))
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict(), default=str) + "\n")
    else:
        _print_summary(summary)
    return 0
