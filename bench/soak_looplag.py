"""Event-loop stalls of the feed alone (#18.3; ``make soak``): where a stall of hundreds of ms on
every stream at once comes from, with the simulator out of the feed's process.

    python -m bench.soak_looplag [--duration 120] [--rate 20000] [--symbols 200] [--seed 18005]
                                 [--warmup 30] [--out FILE.json]

``tickpath sim`` runs as a child process (no faults); the feed runs in this process through the
library API into DuckDB, so its own event loop, collector and threads are all that is measured. The
run is done twice, as the feed ships and with ``gc.freeze()`` after the warm-up (the objects alive
then are never walked again by a generation-2 pass). Each run reports loop lag p50/p99/max, every
stall of 100 ms or more set against the GC passes inside it (``explained_by_gc``: at least half the
stall was collecting), collector passes by generation, tracked objects, RSS and CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import calibration_ns
from bench.soaklib import GcPauses, StallLog, cpu_s, rss_mb, tracked_by_type
from tickpath.feed import Feed, FeedConfig
from tickpath.feed.memtrim import DEFAULT_TRIM_INTERVAL_S


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak_looplag")
    p.add_argument("--duration", type=float, default=120.0, help="seconds measured per run (after the warm-up)")
    p.add_argument("--rate", type=float, default=20_000.0, help="depth updates per second, all symbols")
    p.add_argument("--symbols", type=int, default=200)
    p.add_argument("--seed", type=int, default=18005)
    p.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring (books sync)")
    p.add_argument("--out", help="write the figures as JSON here too")
    p.add_argument(
        "--trim-memory",
        type=float,
        default=DEFAULT_TRIM_INTERVAL_S,
        metavar="S",
        help="the feed's malloc_trim period (0 = off)",
    )
    p.add_argument("--chaos", metavar="SEED[:RATE]", help="the simulator injects random faults (sim --chaos)")
    p.add_argument(
        "--runs", choices=("both", "as-shipped", "frozen"), default="both", help="which runs (default: both)"
    )
    return p.parse_args(argv)


async def _sim(a: argparse.Namespace, syms: tuple[str, ...]) -> tuple[asyncio.subprocess.Process, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tickpath.cli.main", "sim", "--venue", "futures", "--symbols", ",".join(syms)),
        *("--rate", str(a.rate / a.symbols), "--seed", str(a.seed), "--json"),
        *(("--chaos", a.chaos) if a.chaos else ()),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    ep = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))["endpoints"][0]
    return proc, ep["ws_url"], ep["rest_url"]


async def _one(a: argparse.Namespace, syms: tuple[str, ...], ws: str, rest: str, freeze: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        sinks = (f"duckdb:{Path(tmp) / 'lag.duckdb'}",)
        cfg = FeedConfig(
            venue="futures", symbols=syms, base_url=ws, rest_url=rest, sinks=sinks, trim_memory_s=a.trim_memory
        )
        feed = Feed(cfg)
        task = asyncio.create_task(feed.run())
        await asyncio.sleep(a.warmup)
        if freeze:
            gc.freeze()
        stalls, pauses = StallLog(feed.loop_lag), GcPauses()
        gc.callbacks.append(pauses)
        rss0, cpu0, t0 = rss_mb(), cpu_s(), time.monotonic()
        events0 = feed.snapshot().pipeline.emitted
        rss_series = [round(rss0, 1)]
        try:
            while (left := a.duration - (time.monotonic() - t0)) > 0:  # RSS every 30 s: a leak is a slope
                await asyncio.sleep(min(30.0, left))
                rss_series.append(round(rss_mb(), 1))
        finally:
            gc.callbacks.remove(pauses)
        elapsed, events1 = time.monotonic() - t0, feed.snapshot().pipeline.emitted
        figures = {
            "gc_frozen": freeze,
            "events_emitted_per_s": round((events1 - events0) / elapsed),
            "event_loop_lag_ms": feed.loop_lag.summary(),
            "stalls": stalls.attribute(pauses),
            "gc": pauses.as_dict(),
            "gc_tracked_at_end": tracked_by_type(),
            "rss_mb_start": round(rss0, 1),
            "rss_mb_end": round(rss_mb(), 1),
            "rss_series_mb": rss_series,
            "memory": feed.memory.summary(),  # the feed's malloc_trim timer (--trim-memory)
            "feed": _feed_counts(feed, syms),
            "cpu_s": round(cpu_s() - cpu0, 1),
        }
        feed.stop()
        await task
        if freeze:
            gc.unfreeze()
    return figures


def _feed_counts(feed: Feed, syms: tuple[str, ...]) -> dict[str, int]:
    """What the faults did to the feed (all zero without --chaos)."""
    snap = feed.snapshot()
    proc = feed.engine.processor if feed.engine is not None else None
    return {
        "resyncs": snap.books.resyncs,
        "refetches": snap.books.refetches,
        "buffer_overflow": sum(proc.book_stats(s)["buffer_overflow"] for s in syms) if proc is not None else 0,
        "reconnects": snap.connections.reconnects,
        "malformed": snap.frames.malformed_total,
    }


async def _run(a: argparse.Namespace) -> dict[str, Any]:
    syms = tuple(f"S{i:03d}USDT" for i in range(a.symbols))
    sim, ws, rest = await _sim(a, syms)
    try:
        freezes = {"both": (False, True), "as-shipped": (False,), "frozen": (True,)}[a.runs]
        runs = [await _one(a, syms, ws, rest, freeze) for freeze in freezes]
    finally:
        with contextlib.suppress(ProcessLookupError):
            sim.kill()
        await sim.wait()
    return {
        "condition": f"shared 2-core machine; feed alone in this process, sim in a child; {a.symbols} symbols",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seed": a.seed,
        "target_rate": a.rate,
        "chaos": a.chaos,
        "duration_s": a.duration,
        "runs": runs,
        "yardstick_calibration_ns": round(calibration_ns(), 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse(argv)
    figures = asyncio.run(_run(a))
    if a.out:
        Path(a.out).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
