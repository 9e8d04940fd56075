"""``tickpath tune``: thin shell over :mod:`tickpath.tune`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from tickpath.tune import TuneConfig, TuneReport, apply, inspect, revert
from tickpath.tune.plan import DEFAULT_STATE_FILE

EPILOG = f"""\
what it covers: NIC busy polling (net.core.busy_poll/busy_read), NIC interrupt moderation
(ethtool -C adaptive-rx off rx-usecs 0), the CPU governor and deep C-states where the instance
exposes them, transparent huge pages, and irqbalance.

what it leaves out, on purpose: tcp_low_latency (a no-op since Linux 4.14), disabling SACK or
timestamps (they make loss recovery and RTT estimation worse).

examples:
  tickpath tune                 # show current values, targets, and what this instance lacks
  sudo tickpath tune --apply    # apply; previous values saved to {DEFAULT_STATE_FILE}
  sudo tickpath tune --revert   # restore the saved values

settings changed with --apply do not survive a reboot; re-run after boot (e.g. from a unit).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tune",
        help="show, apply or revert the Linux settings that lower latency on EC2",
        description="Show (default), apply (--apply, root) or revert (--revert) low-latency Linux settings.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--apply", action="store_true", help="apply the settings (root); saves previous values")
    mode.add_argument("--revert", action="store_true", help="restore the values saved by --apply (root)")
    p.add_argument(
        "--state-file",
        default=DEFAULT_STATE_FILE,
        help=f"where previous values are kept (default {DEFAULT_STATE_FILE})",
    )
    p.add_argument("--root", default="/", help="filesystem root holding /proc and /sys (for testing)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=main)


def render(report: TuneReport, console: Console) -> None:
    table = Table(title=f"tickpath tune ({report.action})")
    for col in ("setting", "where", "current", "target", "status"):
        table.add_column(col)
    for k in report.knobs:
        if k.unsupported and not k.settings:
            table.add_row(k.name, "-", "-", "-", f"[yellow]not on this instance[/]: {k.unsupported}")
        for s in k.settings:
            status = "[green]ok[/]" if not s.changes else "[cyan]will change[/]"
            table.add_row(k.name, s.where, s.current, s.target, status)
    if report.knobs:
        console.print(table)
    for c in report.changed:
        console.print(
            f"changed {c['knob']} {c['where']}" + (f" {c['from']} -> {c['to']}" if "from" in c else f" -> {c['to']}")
        )
    for f in report.failed:
        console.print(f"[red]failed[/] {f['knob']} {f['where']}: {f['error']}")
    if report.state_file and report.action == "apply" and report.changed:
        console.print(f"previous values saved in {report.state_file}; undo with: tickpath tune --revert")


def main(args: argparse.Namespace) -> int:
    config = TuneConfig(root=args.root, state_file=args.state_file)
    if args.apply:
        report = apply(config)
    elif args.revert:
        report = revert(config)
    else:
        report = inspect(config)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render(report, Console())
    return 1 if report.failed else 0
