"""Runs every ``bench/bench_*.py`` (or those named on the command line) and prints their figures.

Each benchmark module has ``main() -> dict``: it prints its own human-readable lines and returns a
dict of figures (with ``target`` and ``ok`` entries where the issue names a target). The collected
figures are merged into ``bench/last-run.json`` (one entry per benchmark) for docs/performance.md.

Each benchmark runs in a fresh interpreter (``python -m bench.one NAME OUT``): one benchmark's heap,
threads and imports (10 M DuckDB rows, 200,000 decoded frames) would otherwise weigh on the next,
for instance on the event loop of the sweep's orchestrator, which runs last.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
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
    with tempfile.TemporaryDirectory(prefix="tickpath-bench-") as tmp:
        for name in names:
            mod_name = name if name.startswith("bench_") else f"bench_{name}"
            print(f"=== {mod_name}", flush=True)
            out = Path(tmp) / f"{mod_name}.json"
            code = subprocess.run(
                [sys.executable, "-m", "bench.one", mod_name, str(out)], cwd=HERE.parent, check=False
            ).returncode
            if code != 0 or not out.exists():
                print(f"{mod_name}: exited {code} without figures")
                results[mod_name] = {"ok": False, "error": f"exited {code}"}
                failed.append(mod_name)
                continue
            figures = json.loads(out.read_text())
            results[mod_name] = figures
            if isinstance(figures, dict) and figures.get("ok") is False:
                failed.append(mod_name)
    # Merge into the previous file so running one benchmark keeps the others' latest figures.
    path = HERE / "last-run.json"
    try:
        merged = json.loads(path.read_text())
    except (OSError, ValueError):
        merged = {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=2, default=str))
    print(f"figures written to {path}")
    if failed:
        print(f"targets missed: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
