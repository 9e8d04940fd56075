"""Entry point: builds the argument parser from one module per subcommand and maps errors to exit
codes. Each ``tickpath.cli.<name>`` module exposes ``register(subparsers)``; its parser sets
``func`` to a callable taking the parsed namespace and returning an exit code."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from tickpath import __version__
from tickpath.cli.defaults import apply_defaults, load_config_file, option_names
from tickpath.errors import ConfigError, TickpathError
from tickpath.logs import configure

# Order is the order shown in --help, with each command's one-line summary (the same text its module
# registers; a test keeps the two equal). Only the command being run is imported: the others pull in
# aiohttp, DuckDB, pyarrow... and ``tickpath --help`` would take a second and a half.
SUBCOMMANDS: dict[str, str] = {
    "demo": "run everything against the simulator and write a report",
    "sim": "Binance-compatible exchange simulator on loopback",
    "probe": "measure every hop to an exchange (DNS, TCP, TLS, REST, WS, stream, path)",
    "tune": "show, apply or revert the Linux settings that lower latency on EC2",
    "sweep": "find the lowest-latency placement across zones",
    "feed": "ingest Binance market data with exact order books",
    "ingest": "load a NATS JetStream stream into DuckDB/Parquet, exactly once",
    "dq": "check data quality on DuckDB or BigQuery",
    "gcp": "set up or clear Pub/Sub + BigQuery for the feed",
    "busbench": "end-to-end latency through a NATS cluster",
    "report": "turn a results directory into one self-contained HTML report",
}

DESCRIPTION = """\
tickpath answers three questions for low-latency crypto market-data infrastructure:

  where should my server live?     probe, tune, sweep
  how do I get the data there?     feed, ingest, dq, gcp
  what does my message bus cost?   busbench

sim is a Binance-compatible exchange simulator; demo runs everything against it;
report turns any results directory into one HTML file.
"""


def build_parser(only: str | None = None, *, light: bool = False) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, just that command's module is loaded (the others are listed
    by their summaries); with ``light``, none is (enough for ``--help`` and ``--version``)."""
    parser = argparse.ArgumentParser(
        prog="tickpath", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tickpath {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML file of option defaults, one [command] table each (also $TICKPATH_CONFIG); "
        "any option can also come from $TICKPATH_<COMMAND>_<OPTION>",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in SUBCOMMANDS.items():
        if light or (only is not None and name != only):
            sub.add_parser(name, help=summary)
            continue
        try:
            module = importlib.import_module(f"tickpath.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tickpath.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _global_options(argv: Sequence[str] | None) -> tuple[argparse.Namespace, str | None, list[str]]:
    """The global options, the subcommand named after them (if any), and the words after it.

    Only the words before the subcommand are global: ``sweep status --config FILE`` is the
    subcommand's own ``--config`` (a sweep file), not the file of option defaults."""
    words = list(sys.argv[1:] if argv is None else argv)
    end = len(words)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            end = i
            break
        if not word.startswith("-"):
            end = i
            break
        if word == "--config":
            i += 1  # its value may look like a command name
        i += 1
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("-v", "--verbose", action="count", default=0)
    known, _ = pre.parse_known_args(words[:end])
    if end < len(words) and words[end] != "--":
        return known, words[end], words[end + 1 :]
    return known, None, []


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    actions = _actions_of(parser)
    found = actions.get(command) if actions else None
    return found if isinstance(found, argparse.ArgumentParser) else None


def _actions_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    """The sub-parsers of ``parser`` by name (None when it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def _apply_service_defaults(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Options from --config / $TICKPATH_CONFIG and $TICKPATH_<COMMAND>_<OPTION> become defaults;
    for a command with actions (``sweep status``) also $TICKPATH_<COMMAND>_<ACTION>_<OPTION> and a
    ``[command.action]`` table, which win over the command-wide ones."""
    known, command, after = _global_options(argv)
    config = known.config or os.environ.get("TICKPATH_CONFIG")
    if command is None:
        return
    sub = _subparser(parser, command)
    if sub is None:
        return
    table: dict[str, object] = {}
    if config:
        doc = load_config_file(config)
        section = doc.get(command, {})
        if not isinstance(section, dict):
            raise ConfigError(f"config file {config}: [{command}] must be a table")
        table = section
    actions = _actions_of(sub)
    if not actions:
        apply_defaults(sub, command, table)
        return
    plain = {k: v for k, v in table.items() if not (k in actions and isinstance(v, dict))}
    every = set().union(*(option_names(p) for p in actions.values())) | option_names(sub)
    unknown = sorted(k for k in plain if k not in every and k.replace("_", "-") not in every)
    if unknown:
        raise ConfigError(f"config file [{command}]: unknown option(s) {', '.join(unknown)}")

    def only(names: set[str]) -> dict[str, object]:
        return {k: v for k, v in plain.items() if k in names or k.replace("_", "-") in names}

    apply_defaults(sub, command, only(option_names(sub)))
    name = next((w for w in after if w in actions), None)
    if name is None:
        return
    action_parser = actions[name]
    apply_defaults(action_parser, command, only(option_names(action_parser)))
    nested = table.get(name, {})
    apply_defaults(
        action_parser, f"{command}_{name}", nested if isinstance(nested, dict) else {}, table_name=f"{command}.{name}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _main(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can still be told apart from a crash
    except BrokenPipeError:
        return _stdout_gone("tickpath")
    return code


def _stdout_gone(label: str) -> int:
    """The reader of stdout went away (`... --json | head -1`): whatever the command committed stays
    committed; say so once instead of a traceback, and point stdout at /dev/null so the interpreter's
    own flush at exit does not fail again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print(f"{label}: error: standard output was closed by its reader before everything was printed", file=sys.stderr)
    return 1


def _main(argv: Sequence[str] | None) -> int:
    _, command, _ = _global_options(argv)
    parser = build_parser(command) if command in SUBCOMMANDS else build_parser(light=True)
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
    return run_command(args, f"tickpath {args.command}")


def run_command(args: argparse.Namespace, label: str) -> int:
    """Run a parsed command: its exit code, or a one-line error and the error's exit code (130 on
    Ctrl-C), never a traceback for an error tickpath knows."""
    try:
        return int(args.func(args) or 0)
    except TickpathError as exc:
        print(f"{label}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _stdout_gone(label)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
