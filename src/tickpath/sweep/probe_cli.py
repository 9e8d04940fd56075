"""``python -m tickpath.sweep.probe_cli ARGS``: exactly ``tickpath probe ARGS``, loading only the probe.

Local probe agents run this (in their own process, :func:`main`), one per candidate and many at
once; the full CLI imports every subcommand (simulator, feed, sinks), which would cost each agent a
second or more of CPU before it measures anything. This registers the real ``probe`` subcommand
alone and maps errors to exit codes the way ``tickpath.cli.main`` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tickpath.errors import TickpathError
from tickpath.logs import configure


def main(argv: Sequence[str] | None = None) -> int:
    from tickpath.cli import probe

    parser = argparse.ArgumentParser(prog="tickpath")
    sub = parser.add_subparsers(dest="command", required=True)
    probe.register(sub)
    args = parser.parse_args(argv)
    configure(0)
    try:
        return int(args.func(args) or 0)
    except TickpathError as exc:
        print(f"tickpath probe: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover - run by the agent
    sys.exit(main())
