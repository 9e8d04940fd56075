"""``tickpath report RESULTS_DIR``: one self-contained HTML file from any results directory."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="turn a results directory into one self-contained HTML report",
        description=(
            "Build one HTML file (no network needed to open it) from whatever probe, sweep, feed/dq or "
            "busbench wrote under RESULTS_DIR, searched recursively. Plots are also written as PNG files "
            "beside the HTML. Unreadable or malformed files are skipped: they are listed in the report's "
            'Problems section, as warnings on stderr and under "problems" with --json. Exit codes: 0 when '
            "the report was written (even if files were skipped; --strict makes that 2), 2 when the directory "
            "is missing or holds nothing to report."
        ),
        epilog="example: tickpath report results/demo-20261122T160000Z -o /tmp/report.html",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="directory written by tickpath commands")
    p.add_argument("-o", "--output", help="HTML path (default: RESULTS_DIR/report.html)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 (bad files) when any file was skipped; the report is still written",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tickpath.report import build_report

    result = build_report(args.results_dir, args.output)
    if args.json:
        doc = {
            "html": str(result.html_path),
            "png": [str(p) for p in result.png_paths],
            "sections": result.sections,
            "problems": result.problems,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"report: {result.html_path}")
        print(f"sections: {', '.join(result.sections)}; plots: {len(result.png_paths)}")
        for problem in result.problems:
            print(f"warning: {problem}", file=sys.stderr)
    # Skipped files are warnings, not failure: the report was written and lists them. Exit 1 is no
    # documented code; --strict maps them to 2 ("bad files") for pipelines that must stop.
    return 2 if (result.problems and getattr(args, "strict", False)) else 0
