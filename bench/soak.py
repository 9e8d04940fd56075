"""``python -m bench.soak [NAME ...]`` (``make soak``): every ``bench/soak_*.py`` (or those named), each
in a process of its own, its ``main([])`` figures printed as JSON and kept in ``bench/soak-last-run.json``.

Long runs (minutes each) that are not part of ``make test`` or ``make bench``; their fast seeded
variants are in tests/faults/. SOAK_SECONDS, when set, is passed to each as ``--duration``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _failures(figures: object) -> int:
    """Checks a soak reports as failed (``failures`` lists, at any depth): its figures still print."""
    if isinstance(figures, dict):
        own = figures.get("failures")
        return (len(own) if isinstance(own, list) else 0) + sum(_failures(v) for v in figures.values())
    return 0


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("soak_*.py"))
    extra = ["--duration", os.environ["SOAK_SECONDS"]] if os.environ.get("SOAK_SECONDS") else []
    results: dict[str, object] = {}
    failed = 0
    for name in names:
        code = f"import json,sys; from bench.{name} import main; print(json.dumps(main(sys.argv[1:]), default=str))"
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, "-c", code, *extra], cwd=HERE.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            failed += 1
            results[name] = {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
        else:
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            failed += _failures(results[name]) > 0
        print(json.dumps(results[name], indent=1), flush=True)
    (HERE / "soak-last-run.json").write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
