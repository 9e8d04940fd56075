"""Entry point: builds the argument parser from one module per subcommand and maps errors to exit
codes. Each ``tickpath.cli.<name>`` module exposes ``register(subparsers)``; its parser sets
``func`` to a callable taking the parsed namespace and returning an exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tickpath import __version__
from tickpath.errors import TickpathError
from tickpath.logs import configure

# Order is the order shown in --help. A module that does not exist yet is simply not offered.
SUBCOMMANDS = (
    "demo", "sim", "probe", "tune", "sweep", "feed", "ingest", "dq", "gcp", "busbench", "report",
)

DESCRIPTION = """\
tickpath answers three questions for low-latency crypto market-data infrastructure:

  where should my server live?     probe, tune, sweep
  how do I get the data there?     feed, ingest, dq, gcp
  what does my message bus cost?   busbench

sim is a Binance-compatible exchange simulator; demo runs everything against it;
report turns any results directory into one HTML file.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickpath", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tickpath {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"tickpath.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tickpath.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TickpathError as exc:
        print(f"tickpath {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"tickpath {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
