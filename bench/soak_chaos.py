"""Combined-faults soak (#18.3, long variant; ``make soak``): every simulator fault kind at random from
a seed, for long, at rate, while an in-process feed's books are compared to the simulator's truth.

    python -m bench.soak_chaos [--duration 600] [--rate 20000] [--symbols 200] [--seed 18003]
                               [--chaos-rate 1] [--warmup 60] [--history 20000] [--duckdb PATH]
                               [--out FILE.json]

Real time (SystemClock): the simulator and the feed share this process and its one event loop (so
the truth checker reads both sets of books), which also means the lag figures include the
simulator's own work. Reports faults by kind, resyncs, malformed frames, books unequal to truth
outside a resync window (target 0), RSS after the warm-up and at the end (target within 5 %),
event-loop lag p50/p99/max after the warm-up, the achieved depth-update rate, the longest GC pass
per generation (gc.callbacks), the objects the collector tracks at the end, the longest truth
check (it runs on the same loop), the process's CPU seconds and the interpreter yardstick
(bench.common.calibration_ns).
The fast seeded variant is tests/faults/test_chaos.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import calibration_ns
from bench.soaklib import GcPauses, StallLog, cpu_s, malloc_trim, memory_mb, rss_mb, tracked_by_type
from tickpath.feed import Feed, FeedConfig
from tickpath.sim import SimConfig, Simulator
from tickpath.sim.chaos import ChaosConfig, ChaosDriver, TruthChecker
from tickpath.venues.binance.endpoints import Venue


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak_chaos")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of chaos after the warm-up")
    p.add_argument("--rate", type=float, default=20_000.0, help="depth updates per second, all symbols")
    p.add_argument("--symbols", type=int, default=200)
    p.add_argument("--seed", type=int, default=int(os.environ.get("TICKPATH_FAULT_SEED", "18003")))
    p.add_argument("--chaos-rate", type=float, default=1.0, help="faults per second on average")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds without faults first (discarded)")
    # The simulator keeps each symbol's changes for ground truth; its default (200,000 ids, over half an
    # hour at 100/s) never trims in a 10-minute soak: 200 symbols x 60,000 changes grew RSS by 1.2 GB
    # and made each generation-2 GC pass seconds long (seed 18003). 5,000 ids are 50 s per symbol, so
    # the kept history is full within the warm-up and RSS after it compares like with like.
    p.add_argument("--history", type=int, default=5_000, help="update ids of truth the simulator keeps per symbol")
    p.add_argument("--duckdb", help="the feed's DuckDB file (default: a temporary one, removed after)")
    p.add_argument(
        "--malloc-trim", action="store_true", help="glibc malloc_trim(0) before each 30 s memory sample (a diagnosis)"
    )
    p.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up")
    p.add_argument("--out", help="write the figures as JSON here too")
    p.add_argument(
        "--trace-memory", action="store_true", help="tracemalloc from the warm-up's end: the top sites still held"
    )
    return p.parse_args(argv)


async def _soak(a: argparse.Namespace) -> dict[str, Any]:
    venue: Venue = "futures"
    syms = tuple(f"S{i:03d}USDT" for i in range(a.symbols))
    cfg = SimConfig(
        venues=(venue,), symbols=syms, seed=a.seed, rate=a.rate / a.symbols, book_levels=100, history_updates=a.history
    )
    chaos = ChaosConfig(seed=a.seed, mean_interval_s=1.0 / a.chaos_rate, max_fault_s=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        return await _run(a, venue, syms, cfg, chaos, tmp)


async def _run(
    a: argparse.Namespace, venue: Venue, syms: tuple[str, ...], cfg: SimConfig, chaos: ChaosConfig, tmp: str
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    async with Simulator(cfg) as sim:
        ep = sim.endpoint(venue)
        sinks = (f"duckdb:{a.duckdb or Path(tmp) / 'soak.duckdb'}",)
        fc = FeedConfig(venue=venue, symbols=syms, base_url=ep.ws_url, rest_url=ep.rest_url, sinks=sinks)
        feed = Feed(fc)
        checker = TruthChecker(sim, venue)
        task = asyncio.create_task(feed.run())
        await asyncio.sleep(a.warmup)
        if a.gc_freeze:
            gc.freeze()
        stalls = StallLog(feed.loop_lag)
        pauses = GcPauses()
        gc.callbacks.append(pauses)
        if a.trace_memory:
            tracemalloc.start(8)
        rss0, events0, t0, cpu0 = rss_mb(), sim.stats()["venues"][venue]["events"], loop.time(), cpu_s()
        sim.chaos = ChaosDriver(sim.faults, [(venue, s) for s in syms], chaos)
        chaos_task = asyncio.create_task(sim.chaos.run())
        rss_series, next_rss, checks = [], t0, []
        memory: list[dict[str, float]] = []
        while loop.time() - t0 < a.duration and not task.done():
            await asyncio.sleep(1.0)
            if feed.engine is not None:
                c0 = time.perf_counter()
                checker.check(feed.engine.processor)  # on the loop: its time is in the lag figures too
                checks.append((time.monotonic(), (time.perf_counter() - c0) * 1e3))
            if loop.time() >= next_rss:  # every 30 s: growth that is steady, not a step, is a leak
                trim_ms = malloc_trim() if a.malloc_trim else None
                sample = {**memory_mb(), **_history(sim, venue)}
                if trim_ms is not None:
                    sample["trim_ms"] = round(trim_ms, 1)
                rss_series.append(sample["rss"])
                memory.append(sample)
                next_rss += 30
        elapsed, events1, rss1 = loop.time() - t0, sim.stats()["venues"][venue]["events"], rss_mb()
        cpu = cpu_s() - cpu0
        lag = feed.loop_lag.summary()
        tracked = tracked_by_type()
        held = held_sites() if a.trace_memory else None
        sim.chaos.stop()
        chaos_task.cancel()
        sim.faults.clear()
        resync_deadline = loop.time() + 60
        while feed.engine is not None and loop.time() < resync_deadline:
            if all(feed.engine.processor.book_state(s).synced for s in syms):  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.5)
        final = checker.check(feed.engine.processor) if feed.engine is not None else -1
        gc.callbacks.remove(pauses)
        feed.stop()
        summary = await task
    return {
        "condition": f"shared 2-core machine; sim + feed in one process; {a.symbols} symbols; seed {a.seed}",
        "duration_s": round(elapsed, 1),
        "warmup_s": a.warmup,
        "target_rate": a.rate,
        "achieved_depth_updates_per_s": round((events1 - events0) / elapsed),
        "cpu_s": round(cpu, 1),  # sim + feed (+ DuckDB threads), this process, over the measured span
        "cpu_share_of_one_core": round(cpu / elapsed, 3),
        "sim_history_updates": a.history,
        "faults": dict(sorted(sim.chaos.counts.items())),
        "resyncs": summary.resyncs,
        "gaps": summary.gaps,
        "reconnects": summary.reconnects,
        "malformed_frames": summary.malformed,
        "truth": checker.as_dict(),
        "violations": len(checker.violations),
        "final_check_violations": final,
        "rss_mb_after_warmup": round(rss0, 1),
        "rss_mb_end": round(rss1, 1),
        "rss_growth_pct": round(100 * (rss1 - rss0) / rss0, 2),
        "rss_series_mb": rss_series,
        "memory_series_mb": memory,
        "sim_history_at_end": _history(sim, venue),
        "event_loop_lag_ms": lag,
        "gc": pauses.as_dict(),
        "gc_tracked_at_end": tracked,
        "python_allocations_held": held,
        "stalls": stalls.attribute(pauses, truth_check=checks),
        "truth_check_max_ms": round(max((ms for _, ms in checks), default=0.0), 1),
        "gc_frozen": a.gc_freeze,
        "malloc_trim_each_sample": a.malloc_trim,
        "yardstick_calibration_ns": round(calibration_ns(), 2),
    }


def _history(sim: Simulator, venue: Venue) -> dict[str, float]:
    """The simulator's replay memory: changes and checkpoint levels kept, in thousands."""
    sizes = [m.history_size() for m in sim.hubs[venue].markets.values()]
    return {
        "sim_changes_k": round(sum(c for c, _ in sizes) / 1e3, 1),
        "sim_ckpt_levels_k": round(sum(k for _, k in sizes) / 1e3, 1),
    }


def held_sites(top: int = 12) -> dict[str, Any]:
    """Python allocations made since tracing began and still held, by the innermost tickpath frame."""
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    sites: dict[str, int] = {}
    for stat in snap.statistics("traceback"):
        frames = [f for f in stat.traceback if "tickpath" in f.filename] or list(stat.traceback)
        f = frames[-1] if frames else None
        key = f"{f.filename.rsplit('/src/', 1)[-1]}:{f.lineno}" if f else "?"
        sites[key] = sites.get(key, 0) + stat.size
    total = sum(sites.values())
    best = sorted(sites.items(), key=lambda kv: -kv[1])[:top]
    return {"total_mb": round(total / 1e6, 1), "sites_mb": {k: round(v / 1e6, 1) for k, v in best}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse(argv)
    figures = asyncio.run(_soak(a))
    if a.out:
        Path(a.out).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
