"""Runs every ``bench/bench_*.py`` (or those named on the command line) and prints their figures.

Each benchmark module has ``main() -> dict``: it prints its own human-readable lines and returns a
dict of figures (with ``target`` and ``ok`` entries where the issue names a target). The collected
figures are merged into ``bench/last-run.json`` (one entry per benchmark) for docs/performance.md.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("bench_*.py"))
    results: dict[str, object] = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    failed = []
    for name in names:
        mod_name = name if name.startswith("bench_") else f"bench_{name}"
        print(f"=== {mod_name}", flush=True)
        module = importlib.import_module(f"bench.{mod_name}")
        figures = module.main()
        results[mod_name] = figures
        if isinstance(figures, dict) and figures.get("ok") is False:
            failed.append(mod_name)
    # Merge into the previous file so running one benchmark keeps the others' latest figures.
    out = HERE / "last-run.json"
    try:
        merged = json.loads(out.read_text())
    except (OSError, ValueError):
        merged = {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2, default=str))
    print(f"figures written to {HERE / 'last-run.json'}")
    if failed:
        print(f"targets missed: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
