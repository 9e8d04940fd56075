"""Entry point: builds the argument parser from one module per subcommand and maps errors to exit
codes. Each ``tickpath.cli.<name>`` module exposes ``register(subparsers)``; its parser sets
``func`` to a callable taking the parsed namespace and returning an exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tickpath import __version__
from tickpath.cli.defaults import apply_defaults, load_config_file
from tickpath.errors import ConfigError, TickpathError
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
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML file of option defaults, one [command] table each (also $TICKPATH_CONFIG); "
                             "any option can also come from $TICKPATH_<COMMAND>_<OPTION>")
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


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action.choices.get(command)
            return found if isinstance(found, argparse.ArgumentParser) else None
    return None


def _apply_service_defaults(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Options from --config / $TICKPATH_CONFIG and $TICKPATH_<COMMAND>_<OPTION> become defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=os.environ.get("TICKPATH_CONFIG"))
    pre.add_argument("-v", "--verbose", action="count", default=0)
    known, rest = pre.parse_known_args(argv)
    command = next((a for a in rest if not a.startswith("-")), None)
    if command is None:
        return
    sub = _subparser(parser, command)
    if sub is None:
        return
    table: dict[str, object] = {}
    if known.config:
        doc = load_config_file(known.config)
        section = doc.get(command, {})
        if not isinstance(section, dict):
            raise ConfigError(f"config file {known.config}: [{command}] must be a table")
        table = section
    apply_defaults(sub, command, table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        _apply_service_defaults(parser, argv)
    except TickpathError as exc:
        print(f"tickpath: error: {exc}", file=sys.stderr)
        return exc.exit_code
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
