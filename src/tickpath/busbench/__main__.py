"""``python -m tickpath.busbench``: the busbench command line on its own.

The remote client machine runs this instead of ``tickpath``: it needs only busbench's own
dependencies (hdrhistogram, cryptography, rich, matplotlib, uvloop), not those of every other
subcommand that the full parser imports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tickpath.cli import busbench as cli
from tickpath.cli.main import run_command
from tickpath.logs import configure


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tickpath.busbench")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    cli.register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["busbench"] and not (argv[:1] and argv[0].startswith("-")):
        argv.insert(0, "busbench")  # ``python -m tickpath.busbench run ...`` reads naturally
    args = parser.parse_args(argv)
    configure(args.verbose)
    return run_command(args, "busbench")


if __name__ == "__main__":
    sys.exit(main())
