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
            "beside the HTML. Unreadable files are listed in the report and skipped."
        ),
        epilog="example: tickpath report results/demo-20261122T160000Z -o /tmp/report.html",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="directory written by tickpath commands")
    p.add_argument("-o", "--output", help="HTML path (default: RESULTS_DIR/report.html)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tickpath.report import build_report

    result = build_report(args.results_dir, args.output)
    if args.json:
        doc = {"html": str(result.html_path), "png": [str(p) for p in result.png_paths],
               "sections": result.sections, "problems": result.problems}
        print(json.dumps(doc, indent=2))
    else:
        print(f"report: {result.html_path}")
        print(f"sections: {', '.join(result.sections)}; plots: {len(result.png_paths)}")
        for problem in result.problems:
            print(f"warning: {problem}", file=sys.stderr)
    return 1 if result.problems else 0
