"""What several benchmarks need: another process's CPU time, choosing parts by environment, and how
fast the interpreter runs right now."""

from __future__ import annotations

import os
import time
from pathlib import Path


def proc_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) another process has used so far, from ``/proc``
    (Linux); NaN where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def chosen_parts(variable: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """The parts named in environment ``variable`` (comma-separated), in ``known``'s order; all of
    them when it is unset or empty. An unknown name stops the benchmark with a message."""
    named = {p.strip() for p in os.environ.get(variable, "").split(",") if p.strip()}
    unknown = named - set(known)
    if unknown:
        raise SystemExit(f"{variable}: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    return tuple(p for p in known if p in named) if named else known


def calibration_ns() -> float:
    """CPU ns per iteration of a plain ``x += i`` loop: how fast this interpreter runs right now.

    The throughput figures scale roughly inversely with it, so it lets figures taken on different
    (or differently contended) machines be compared."""
    best = float("inf")
    for _ in range(5):
        c0 = time.process_time()
        x = 0
        for i in range(300_000):
            x += i
        best = min(best, (time.process_time() - c0) / 300_000 * 1e9)
    return round(best, 1)
