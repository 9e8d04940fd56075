"""The feed side of bench/bench_exchange.py: one supervisor per venue, sampled every ``sample_s``.

    python -m bench.exchange_driver SPEC.json OUT.json

SPEC names the simulator's endpoints, its pid and /metrics URL, the workers per venue, the run's
length, the sampling interval (``sample_s``, default 1 s) and whether to stop as soon as every
pre-rendered timeline has played. Every sample the driver records each worker's latest status line
(events, gaps, resyncs, books synced, waits for its sink), its CPU seconds, its time waiting for a
core (run queue) and RSS (from /proc),
the simulator's CPU and playback gauges, and its own CPU (the three supervisors). With ``pin`` the
busiest venue's (spot's) worker k goes to core k, every thread of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import proc_cpu_s

SNAPSHOT_LIMIT = 100  # weight 5 on spot


def proc_mem_mb(pid: int | None) -> tuple[float, float]:
    """(RSS, peak RSS) of ``pid`` in MB from /proc; NaN where it cannot be read."""
    rss = hwm = float("nan")
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return round(rss, 1), round(hwm, 1)


def proc_runq_wait_s(pid: int | None) -> float:
    """Seconds ``pid``'s threads have waited on a run queue (runnable, no core free: the machine's
    other load), from /proc/PID/task/*/schedstat; NaN where it cannot be read."""
    total = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1]) / 1e9
    except OSError:
        return float("nan")
    return round(total, 3)


def _long_status_lines() -> None:
    """Workaround, in this process only: feed/supervisor.py reads its workers' JSON status lines
    with asyncio's default 64 KiB line limit, and a whole-exchange worker's line (its 1,000 symbols
    and 3,000 stream names) is longer, so the supervisor dies with "chunk is longer than limit".
    (Reported; supervisor.py is not this benchmark's to change.)"""
    original = asyncio.create_subprocess_exec

    async def exec_(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        kwargs.setdefault("limit", 1 << 26)
        return await original(*args, **kwargs)

    asyncio.create_subprocess_exec = exec_  # type: ignore[assignment]


async def _playback(url: str | None) -> dict[str, dict[str, float]]:
    """The simulator's playback gauges by venue (position, length, held), from its /metrics."""
    if not url:
        return {}
    import aiohttp

    out: dict[str, dict[str, float]] = {}
    with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
        async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
            for line in (await r.text()).splitlines():
                if line.startswith("tickpath_sim_playback_"):
                    name, value = line.rsplit(" ", 1)
                    kind = name.split("_")[3]
                    venue = name.split('venue="', 1)[1].split('"', 1)[0]
                    out.setdefault(venue, {})[kind] = float(value)
    return out


def _played(pb: dict[str, dict[str, float]]) -> bool:
    return bool(pb) and all(v.get("position", 0) >= v.get("length", 1) for v in pb.values())


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    from tickpath.feed.config import FeedConfig
    from tickpath.feed.supervisor import Supervisor
    from tickpath.feed.universe import parse_selection

    _long_status_lines()
    tmp = Path(spec["tmp"])
    sups: dict[str, Supervisor] = {}
    for venue, ep in spec["endpoints"].items():
        cfg = FeedConfig(
            venue=venue,
            symbols=(),
            selection=parse_selection("all"),
            base_url=ep["ws_url"],
            rest_url=ep["rest_url"],
            sinks=(f"{spec.get('sink', 'duckdb')}:{tmp / f'{venue}.duckdb'}",),
            snapshot_limit=SNAPSHOT_LIMIT,
            duration_s=spec["seconds"],
            stale_after_s=120.0,
            listing_poll_s=600.0,
        )
        sups[venue] = Supervisor(cfg, spec["workers"])
    t0 = time.monotonic()
    runs = [asyncio.create_task(s.run()) for s in sups.values()]
    samples: list[dict[str, Any]] = []
    pinned: dict[int, int] = {}
    while not all(r.done() for r in runs):
        await asyncio.wait(runs, timeout=spec.get("sample_s", 1.0))
        sample = await _sample(sups, time.monotonic() - t0, spec)
        samples.append(sample)
        if spec.get("pin"):
            _pin(sups, pinned)
        if spec.get("stop_when_played") and _played(sample["playback"]) and _idle(samples):
            break
    for r in runs:
        r.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*runs, return_exceptions=True)
    return {"samples": samples, "merged": {v: s.summary() for v, s in sups.items()}, "pinned": pinned}


def _idle(samples: list[dict[str, Any]]) -> bool:
    """Two samples in a row with no new event: the feed has taken everything that was sent."""
    if len(samples) < 3:
        return False
    counts = [sum(int(w["emitted"]) for w in s["workers"]) for s in samples[-3:]]
    return bool(counts[0] == counts[1] == counts[2])


def _pin(sups: dict[str, Any], pinned: dict[int, int]) -> None:
    """The busiest venue's (spot's) worker k on core k, every thread of it (a process's affinity is
    per thread: its DuckDB/Parquet threads, started before the first sample, would stay free), again
    at every sample for threads started since; every other process stays free to move."""
    sup = sups.get("spot")
    if sup is None:
        return
    for w in sup.workers:  # one worker: on core 0, so the yardstick is one core's rate
        pid = w.proc.pid if w.proc is not None else None
        if pid is None:
            continue
        core = w.index % (os.cpu_count() or 1)
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):  # a thread that has just ended
                    os.sched_setaffinity(int(tid), {core})
            pinned[pid] = core


async def _sample(sups: dict[str, Any], t: float, spec: dict[str, Any]) -> dict[str, Any]:
    """Every worker's latest status plus its CPU and RSS, the simulator's CPU, the driver's own."""
    workers = []
    for venue, sup in sups.items():
        for w in sup.workers:
            pid = w.proc.pid if w.proc is not None else None
            last = w.last or {}
            startup = (last.get("engine") or {}).get("startup") or {}
            rss, hwm = proc_mem_mb(pid)
            sinks = last.get("sinks") or {}
            workers.append(
                {
                    "venue": venue,
                    "worker": w.index,
                    "pid": pid,
                    "cpu_s": proc_cpu_s(pid),
                    "runq_wait_s": proc_runq_wait_s(pid),
                    "rss_mb": rss,
                    "peak_rss_mb": hwm,
                    "emitted": last.get("emitted", 0),
                    "written": min((int(st.get("written", 0)) for st in sinks.values()), default=0),
                    "gaps": last.get("gaps", 0),
                    "resyncs": last.get("resyncs", 0),
                    "backpressure_waits": last.get("backpressure_waits", 0),
                    "synced_s": startup.get("all_synced_s"),
                    "books": startup.get("symbols") or 0,
                    "synced": startup.get("synced") or 0,
                }
            )
    return {
        "t": round(t, 2),
        "wall_ns": time.time_ns(),
        "sim_cpu_s": proc_cpu_s(spec["sim_pid"]),
        "driver_cpu_s": time.process_time(),
        "playback": await _playback(spec.get("metrics_url")),
        "workers": workers,
    }


if __name__ == "__main__":
    from tickpath.runtime import run

    result = run(drive(json.loads(Path(sys.argv[1]).read_text())))
    Path(sys.argv[2]).write_text(json.dumps(result, default=str))
