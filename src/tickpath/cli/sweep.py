"""``tickpath sweep plan|run|status|cleanup``: a thin shell over :mod:`tickpath.sweep`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tickpath.errors import InterruptedRunError, TickpathError
from tickpath.runtime import run
from tickpath.sweep import cleanup_sweep, describe, list_sweeps, load_config, run_sweep, sweep_status
from tickpath.sweep.config import SweepConfig
from tickpath.sweep.orchestrator import CandidateState

HELP = """\
Launch probe machines in several availability zones at once, measure the exchange from each,
rank them by a latency metric, keep the winners and destroy the rest.

  tickpath sweep plan  sweep.toml        candidates, expected cost, what will be created (creates nothing)
  tickpath sweep run   sweep.toml        apply all candidates, rank, destroy losers early, write results/
  tickpath sweep status  --sweep-id ID   what a sweep still holds
  tickpath sweep cleanup --sweep-id ID   destroy everything of a sweep (after kill -9, or to drop winners)

Ctrl-C or SIGTERM during `run` destroys everything not kept before exiting. The config format is in
docs/sweep.md; examples/sweep-local.toml runs offline against the simulator.
"""


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return Path(args.state_dir)
    if args.config:
        return load_config(args.config).state_dir
    return Path(".tickpath/sweeps")


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _plan_checks(cfg: SweepConfig, skip: bool) -> tuple[str, TickpathError | None]:
    """aws: the checks `run` makes before creating anything (credentials, AZ IDs, instance types,
    vCPU quota), made here too so a plan that says "ok" was verified. Read-only calls."""
    if cfg.provider != "aws":
        return "not needed (local provider)", None
    if skip:
        return "skipped (--skip-preflight): credentials, AZ IDs, instance types and quota NOT verified", None
    from tickpath.sweep.runner import aws_preflight

    try:
        aws_preflight(cfg)
    except TickpathError as exc:
        return f"failed: {exc}", exc
    return "passed: credentials, AZ IDs, instance types offered, vCPU quota", None


def _cmd_plan(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    plan = describe(cfg)
    checks, failure = _plan_checks(cfg, args.skip_preflight)
    plan["aws_checks"] = checks
    code = failure.exit_code if failure else (0 if plan["within_budget"] else 2)
    if args.json:
        _emit_json(plan)
        if failure:
            print(f"tickpath sweep: error: {failure}", file=sys.stderr)
        return code
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"sweep {cfg.name}: {len(plan['candidates'])} candidates ({cfg.provider}, {cfg.region})")
    for col in ("candidate", "AZ ID", "instance type", "instances", "USD/h"):
        table.add_column(col)
    for c in plan["candidates"]:
        table.add_row(c["name"], c["az_id"], c["instance_type"], str(c["instances"]), f"{c['usd_per_hour']:.4f}")
    console.print(table)
    console.print(
        f"metric [bold]{cfg.metric.text}[/] (lower is better), keep {cfg.keep}, "
        f"TTL {cfg.ttl_minutes:g} min, result timeout {cfg.timeout_s:g} s"
    )
    ok = plan["within_budget"]
    console.print(
        f"expected cost (upper bound) [bold]${plan['expected_cost_usd']:.2f}[/] of "
        f"${cfg.max_cost_usd:.2f} ceiling: " + ("[green]within budget[/]" if ok else "[red]OVER BUDGET[/]")
    )
    console.print("will create, shared: " + "; ".join(plan["resources"]["shared"]))
    console.print("will create, per candidate: " + "; ".join(plan["resources"]["per_candidate"]))
    console.print(f"probe on each machine: {' '.join(plan['candidates'][0]['probe'])}" if plan["candidates"] else "")
    style = "red" if failure else ("green" if checks.startswith("passed") else "yellow")
    console.print(f"AWS checks: [{style}]{checks}[/]")
    console.print("[dim]nothing was created[/]")
    return code


_STYLES = {"failed": "red", "destroyed": "dim", "kept": "green bold", "reported": "cyan", "destroy_failed": "red bold"}


def _progress_printer(err: Any, quiet: bool) -> Callable[[str, CandidateState], None]:
    """One line per candidate state change, seconds since the sweep began."""
    t0 = time.monotonic()

    def progress(status: str, st: CandidateState) -> None:
        if quiet:
            return
        detail = ""
        if status == "reported":
            detail = f"score {st.score:.1f} µs ({st.explain})"
        elif status in ("failed", "destroy_failed"):
            detail = st.error or ""
        style = _STYLES.get(status, "")
        err.print(
            f"[{time.monotonic() - t0:7.1f}s] {st.name:<28} [{style}]{status}[/{style}] {detail}"
            if style
            else f"[{time.monotonic() - t0:7.1f}s] {st.name:<28} {status} {detail}"
        )

    return progress


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg = load_config(args.config)
    if args.wheel:
        cfg = dataclasses.replace(cfg, wheel=Path(args.wheel))
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    sweep_ids: list[str] = []

    def started(sid: str) -> None:
        sweep_ids.append(sid)
        err.print(
            f"sweep [bold]{sid}[/] started; state in {cfg.state_dir / sid}\n"
            f"if this process is killed, run: tickpath sweep cleanup --sweep-id {sid} "
            f"--state-dir {cfg.state_dir}"
        )

    try:
        result = run(
            run_sweep(
                cfg,
                config_path=str(Path(args.config).resolve()),
                terraform=args.terraform,
                sweep_id=args.sweep_id,
                progress=_progress_printer(err, args.quiet),
                on_start=started,
                preflight=not args.skip_preflight,
            )
        )
    except InterruptedRunError:
        if args.json:  # the sweep cleaned up before this: say what is left (nothing, or what failed to go)
            sid = sweep_ids[0] if sweep_ids else None
            _emit_json(
                {"interrupted": True, "sweep_id": sid, "status": sweep_status(cfg.state_dir, sid) if sid else None}
            )
        raise
    return _report_run(cfg, result, args.json, err)


def _report_run(cfg: SweepConfig, result: Any, as_json: bool, err: Any) -> int:
    """The sweep's summary, as JSON on stdout or as lines on stderr; exit 9 without a winner."""
    from tickpath.sweep.results import summary

    doc = summary(cfg, result.outcome)
    doc["results_dir"] = str(result.results_dir)
    if as_json:
        _emit_json(doc)
    else:
        if doc["winner"]:
            err.print(f"[bold green]winner: {doc['winner']}[/]  {doc['why']}")
        else:
            err.print(f"[bold red]no winner[/]: {doc['why']} ({', '.join(doc['failed'])})")
        err.print(f"kept: {', '.join(result.outcome.winners) or 'none'}; results in {result.results_dir}")
    return 0 if doc["winner"] else 9


def _cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if not args.sweep_id:
        ids = list_sweeps(state_dir)
        docs = [sweep_status(state_dir, i) for i in ids]
        if args.json:
            _emit_json(docs)
        else:
            for d in docs:
                print(f"{d['sweep_id']:<44} {'LIVE' if d['live'] else 'clean'}")
            if not docs:
                print(f"no sweeps under {state_dir}")
        return 0
    doc = sweep_status(state_dir, args.sweep_id)
    if args.json:
        _emit_json(doc)
        return 0
    print(f"sweep {doc['sweep_id']} ({doc['provider']}): {'LIVE resources remain' if doc['live'] else 'nothing left'}")
    for name, c in doc["candidates"].items():
        res = ", ".join(c["resources"]) or "-"
        print(f"  {name:<28} {c['status']:<15} resources: {res}")
    if doc.get("agent_pids"):
        print(f"  agent processes still running: {doc['agent_pids']}")
    return 0


def _cmd_cleanup(args: argparse.Namespace) -> int:
    doc = run(cleanup_sweep(_state_dir(args), args.sweep_id))
    if args.json:
        _emit_json(doc)
    else:
        print(
            f"sweep {doc['sweep_id']}: destroyed {len(doc['destroyed'])} candidate root(s); "
            f"tag search removed {len(doc['tag_search_removed'])} leftover(s)"
        )
    return 0


_RAW = argparse.RawDescriptionHelpFormatter
PLAN_EXAMPLES = """\
examples:
  tickpath sweep plan examples/sweep-aws.toml                    table, cost bound, AWS checks
  tickpath sweep plan examples/sweep-aws.toml --skip-preflight   offline: no AWS calls (nothing verified)
  tickpath sweep plan examples/sweep-local.toml --json           the plan for machines

exit codes: 0 ok, 2 bad config, over budget, no or rejected credentials, unknown AZ ID or instance
type, or quota too low, 8 AWS could not be reached
"""
RUN_EXAMPLES = """\
examples:
  tickpath sweep run examples/sweep-local.toml                   offline, against the simulator
  tickpath sweep run examples/sweep-aws.toml --json > sweep.json summary on stdout, progress on stderr

exit codes: 0 a winner, 2 bad config, 3 terraform missing, 8 cloud/Terraform failure, 9 no candidate
produced a usable result, 130 interrupted (everything not kept was destroyed)
"""
STATUS_EXAMPLES = """\
examples:
  tickpath sweep status                                          every sweep under .tickpath/sweeps
  tickpath sweep status --config examples/sweep-aws.toml --sweep-id ID   the config's state_dir
  TICKPATH_SWEEP_STATE_DIR=/var/lib/sweeps tickpath sweep status --json
"""
CLEANUP_EXAMPLES = """\
examples:
  tickpath sweep cleanup --config examples/sweep-aws.toml --sweep-id ID   after kill -9 of `run`
  tickpath sweep cleanup --state-dir .tickpath/sweeps --sweep-id ID       what `run` printed at start
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="find the lowest-latency placement across zones",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)
    _add_plan(sub)
    _add_run(sub)
    _add_state_actions(sub)


def _add_plan(sub: Any) -> None:
    plan = sub.add_parser(
        "plan",
        help="show candidates, expected cost and resources; creates nothing",
        description="Show the candidates, the expected cost (upper bound) and what `run` "
        "would create. Creates nothing; for aws it makes the read-only checks "
        "`run` makes first (credentials, AZ IDs, instance types, vCPU quota).",
        epilog=PLAN_EXAMPLES,
        formatter_class=_RAW,
    )
    plan.add_argument("config", help="sweep TOML file (see examples/sweep-aws.toml)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--skip-preflight",
        action="store_true",
        help="aws: do not call AWS (credentials, AZ IDs, instance types, quota are then unverified)",
    )
    plan.set_defaults(func=_cmd_plan)


def _add_run(sub: Any) -> None:
    r = sub.add_parser(
        "run",
        help="run the sweep: apply all, rank, destroy losers, keep winners",
        description="Apply every candidate at once, show results as they arrive, destroy each "
        "loser as soon as it cannot win, keep the winners and write "
        "results/<timestamp>/. Ctrl-C destroys everything not kept.",
        epilog=RUN_EXAMPLES,
        formatter_class=_RAW,
    )
    r.add_argument("config", help="sweep TOML file")
    r.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    r.add_argument("--terraform", help="path of the terraform binary (default: from PATH)")
    r.add_argument("--sweep-id", help="use this id instead of a generated one")
    r.add_argument(
        "--skip-preflight",
        action="store_true",
        help="aws: skip the credential/AZ/instance-type checks made before creating anything",
    )
    r.add_argument(
        "--wheel",
        metavar="FILE",
        help="aws: the tickpath wheel the instances install (default: built from the running source tree)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no per-candidate progress lines")
    r.set_defaults(func=_cmd_run)


def _add_state_actions(sub: Any) -> None:
    """status and cleanup: both find a sweep by id under a state directory."""
    for name, fn, text, examples in (
        ("status", _cmd_status, "what a sweep still holds (all sweeps without --sweep-id)", STATUS_EXAMPLES),
        ("cleanup", _cmd_cleanup, "destroy everything of a sweep, then search by its tag", CLEANUP_EXAMPLES),
    ):
        env_text = (
            f"Any option may also come from $TICKPATH_SWEEP_{name.upper()}_<OPTION> or "
            "$TICKPATH_SWEEP_<OPTION>\n(e.g. TICKPATH_SWEEP_STATE_DIR)."
        )
        s = sub.add_parser(name, help=text, description=f"{text}.\n{env_text}", epilog=examples, formatter_class=_RAW)
        s.add_argument("--sweep-id", required=name == "cleanup", help="the id printed when the sweep started")
        s.add_argument("--state-dir", help="where sweeps are recorded (default: the config's, or .tickpath/sweeps)")
        s.add_argument(
            "--config",
            metavar="SWEEP_TOML",
            help="the sweep's TOML file, to find its state_dir (this action's own option: the "
            "global `tickpath --config FILE` of option defaults goes before `sweep`)",
        )
        s.add_argument("--json", action="store_true", help="print JSON")
        s.set_defaults(func=fn)
