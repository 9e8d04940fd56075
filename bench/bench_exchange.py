"""The whole simulated exchange into DuckDB: ``feed --workers 2`` against ``--workers 1`` (issue 19, part 5).

``tickpath sim --universe binance`` (spot, USD-M and COIN-M: about 2,450 symbols, heavy-tailed
rates, 5x for 10 s every 120 s; seed 1035 puts every venue's first burst 30-35 s after the start)
runs in a process of its own. A driver process (bench/exchange_driver.py) runs one supervisor per
venue (``--symbols all``, the default channels, a ``duckdb:`` target per venue) with N workers each,
sampling every worker once a second. ``--workers 1`` is one worker under the same supervisor (the
CLI runs it in-process; the feed code is the same). Two scenarios, each with 1 then 2 workers:

- ``normal``: the simulator pre-renders its market (``sim --prerender``, so it costs far less per
  frame than the feed) and plays it at real time: the normal rate and a 5x burst. Figures: events/s
  from 99 % of books synced to the end, the best 10 s (the burst), gaps and resyncs (no fault is
  injected: target 0), start-up, RSS per worker, receipt-to-commit p99, backlog.
- ``saturated``: the same market (200 s of it; spot alone unless ``--saturated-venues`` says
  otherwise) played at real time for a 24 s warm-up (the books sync as they would live), then at
  100x, each connection paced by its own reader (the playback holds only a connection more than
  4 MB behind): the delivered rate is the feed's own capacity, so the ratio of ``--workers 2`` to
  ``1`` shows how the feed scales on this machine. Spot alone by default because with the three
  venues ``--workers 1`` is already three worker processes on the two cores (USD-M and COIN-M at
  their 100x rate, a fifth of a core), so it is not a one-worker yardstick. Events per
  feed-CPU-second per worker say how much of the ratio is the feed and how much the cores it
  could get.

Each scenario renders once; ``--prerender-wait`` starts the timeline over for the second run.
``--sink parquet`` gives the 1-worker run the Parquet files the 2-worker run writes (the same sink
on both sides), ``--pin`` puts spot's worker k on core k, every thread of it (with one worker, that
worker on core 0: one core's rate against two cores'), ``--full`` runs longer timelines.
TICKPATH_BENCH_EXCHANGE_KEEP=DIR keeps each run's raw samples.

``--sim live`` runs the live simulator instead of the pre-rendered one (normal scenario only).

Receipt-to-commit: with 2 workers a ``duckdb:`` target is per-worker Parquet files under views; a
file is written under a temporary name and renamed into place, so a row is visible from its file's
mtime: latency = mtime - receipt_ns, per row. With 1 worker the DuckDB file is held by its writer
(no other process may open it) and rows carry no commit time, so that figure is not measured.
Backlog: receipt minus event time, p99 per second of the run (l2 rows); its largest value against
its median (the render shifts the exchange clock by a constant, the median takes it out), and how
long the playback waited for slow readers (0 = the feed kept up).

    python -m bench.bench_exchange [--scenario normal|saturated|both] [--sim prerender|live]
                                   [--sink duckdb|parquet] [--pin] [--full]
                                   [--saturated-venues spot|spot,futures,coinm]
    python -m bench exchange                                   (make bench: both scenarios, ~5 min)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import calibration_ns, proc_cpu_s

VENUES = ("spot", "futures", "coinm")
SEED = 1035  # every venue's first 5x burst starts 30-35 s after the simulator
RATE = 2.0  # mean updates/s per symbol: about 4,900 a second over the exchange, 5x in bursts
TARGET = 1.8
WEIGHT_BUDGET = 120_000  # REST weight a minute: 2,450 snapshots in seconds, not Binance's 2 minutes
SYNCED_SHARE = 0.99  # the window opens when this share of the books is live (a tail book syncs on
# its first diff, which at rate 2 can take a minute)
# (seconds of market rendered, playback speed) per scenario; --full runs longer
SCENARIOS = {"normal": (46.0, 1.0), "saturated": (200.0, 100.0)}
FULL = {"normal": (150.0, 1.0), "saturated": (500.0, 100.0)}
# driver samples: the saturated part lasts only seconds (the feed takes the timeline's rest fast)
SAMPLE_S = {"normal": 1.0, "saturated": 0.25}
WARMUP_S = 24.0  # saturated: the timeline's first seconds at real time, until the books have synced
HERE = Path(__file__).resolve().parent


def _start_sim(
    sim: str, timeline: tuple[float, float], tmp: Path, venues: tuple[str, ...] = VENUES
) -> tuple[subprocess.Popen[str], Any]:
    exe = str(Path(sys.executable).parent / "tickpath")
    cmd = [
        exe, "sim", "--venue", ",".join(venues), "--universe", "binance", "--seed", str(SEED),
        "--rate", str(RATE), "--weight-budget", str(WEIGHT_BUDGET), "--metrics-port", "0", "--json",
    ]  # fmt: skip
    if sim == "prerender":  # one render for both runs: each starts the timeline over
        cmd += ["--prerender", str(timeline[0]), "--speed", str(timeline[1]), "--prerender-wait"]
        cmd += ["--prerender-warmup", str(WARMUP_S)] if timeline[1] != 1.0 else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(tmp / "sim.log", "w"), text=True)  # noqa: SIM115
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"the simulator exited {proc.wait()}: {(tmp / 'sim.log').read_text()[-2000:]}")
    return proc, json.loads(line)


def run_scenario(args: argparse.Namespace, scenario: str) -> dict[int, dict[str, Any]]:
    """One simulator (one render), then the feed with 1 worker per venue, then with 2."""
    timeline = (FULL if args.full else SCENARIOS)[scenario]
    if args.sim == "live":
        timeline = (timeline[0], 1.0)
    with tempfile.TemporaryDirectory(prefix=f"tickpath-bench-exchange-{scenario}-") as d:
        tmp = Path(d)
        t0 = time.monotonic()
        venues = tuple(args.saturated_venues.split(",")) if scenario == "saturated" else VENUES
        sim, head = _start_sim(args.sim, timeline, tmp, venues)
        ready = {"sim_start_s": round(time.monotonic() - t0, 1), "sim_start_cpu_s": round(proc_cpu_s(sim.pid), 1)}
        try:
            return {
                w: {"scenario": scenario, **_run_feed(args, tmp, head, sim.pid, w, timeline, scenario), **ready}
                for w in (1, 2)
            }
        finally:
            sim.terminate()
            sim.wait(timeout=30)


def _run_feed(
    args: argparse.Namespace,
    tmp: Path,
    head: Any,
    sim_pid: int,
    workers: int,
    timeline: tuple[float, float],
    scenario: str = "normal",
) -> dict[str, Any]:
    run = tmp / f"w{workers}"
    run.mkdir()
    spec = {
        "tmp": str(run),
        "endpoints": {e["venue"]: e for e in head["endpoints"]},
        "metrics_url": head.get("metrics_url"),
        "workers": workers,
        "seconds": WARMUP_S + timeline[0] / timeline[1] + 30.0 if args.sim == "prerender" else timeline[0],
        "sim_pid": sim_pid,
        "stop_when_played": args.sim == "prerender",
        "pin": args.pin,
        "sink": args.sink,
        "sample_s": SAMPLE_S[scenario],
    }
    (run / "spec.json").write_text(json.dumps(spec))
    out = run / "drive.json"
    with open(run / "driver.log", "w") as log:
        code = subprocess.run(
            [sys.executable, "-m", "bench.exchange_driver", str(run / "spec.json"), str(out)],
            cwd=HERE.parent,
            stderr=log,
            check=False,
        ).returncode
    if code != 0 or not out.exists():
        raise SystemExit(f"driver exited {code}: {(run / 'driver.log').read_text()[-3000:]}")
    drive = json.loads(out.read_text())
    keep = os.environ.get("TICKPATH_BENCH_EXCHANGE_KEEP")  # a directory for the raw samples and logs
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{tmp.name}-w{workers}-drive.json").write_bytes(out.read_bytes())
    fig = window_figures(drive, workers, WARMUP_S if timeline[1] != 1.0 else 0.0)
    if "error" not in fig:
        fig.update(stored_figures(run, workers, fig["window_from_ns"]))
    return fig


def _synced_share(sample: dict[str, Any]) -> float:
    books = sum(w["books"] for w in sample["workers"])
    return sum(w["synced"] for w in sample["workers"]) / books if books else 0.0


def _emitted(sample: dict[str, Any]) -> int:
    return sum(w["emitted"] for w in sample["workers"])


def _warm(sample: dict[str, Any], warmup: float) -> bool:
    """Every venue's playback past its real-time warm-up (no playback: the live simulator)."""
    return all(p.get("position", 0.0) > warmup for p in (sample.get("playback") or {}).values())


def window_figures(drive: dict[str, Any], workers: int, warmup: float = 0.0) -> dict[str, Any]:
    """Rates, CPU and memory over the window from 99 % of books synced (and the playback past its
    warm-up) to the last new event."""
    samples = drive["samples"]
    start = next((i for i, s in enumerate(samples) if _synced_share(s) >= SYNCED_SHARE and _warm(s, warmup)), None)
    if start is None:
        return {"workers": workers, "error": f"{SYNCED_SHARE:.0%} of books never synced"}
    # the end: the last sample with every worker alive (CPU readable) and a new event since the last
    live = [i for i in range(start + 1, len(samples)) if all(w["cpu_s"] == w["cpu_s"] for w in samples[i]["workers"])]
    moving = [i for i in live if _emitted(samples[i]) > _emitted(samples[i - 1])]
    if not moving:
        return {"workers": workers, "error": "no event after the books synced"}
    first, last = samples[start], samples[moving[-1]]
    span = last["t"] - first["t"]
    emitted = _emitted(last) - _emitted(first)
    per_worker = [_worker(a, b, span) for a, b in zip(first["workers"], last["workers"], strict=True)]
    feed_cpu = sum(w["cpu_s"] for w in per_worker)
    merged = drive["merged"]
    held = {v: round(p.get("held", 0.0), 1) for v, p in (last.get("playback") or {}).items()}
    return {
        "workers": workers,
        "window_s": round(span, 1),
        "window_from_ns": first["wall_ns"],
        "events_per_s": round(emitted / span),
        "best_10s_events_per_s": _best_10s(samples[start : moving[-1] + 1]),
        "synced_99_s": first["t"],  # from the supervisors' start
        "all_synced_s": max((w["synced_s"] or float("nan")) for w in last["workers"]),
        "books": sum(w["books"] for w in last["workers"]),
        "unsynced_at_end": sum(w["books"] - w["synced"] for w in last["workers"]),
        "gaps": sum(m.get("gaps") or 0 for m in merged.values()),
        "resyncs": sum(m.get("resyncs") or 0 for m in merged.values()),
        "gaps_by_venue": {v: m.get("gaps") or 0 for v, m in merged.items()},
        "restarts": sum(m.get("restarts") or 0 for m in merged.values()),
        "backpressure_waits": sum(int(w.get("backpressure_waits") or 0) for w in last["workers"])
        - sum(int(w.get("backpressure_waits") or 0) for w in first["workers"]),
        "sim_cpu_s": round(last["sim_cpu_s"] - first["sim_cpu_s"], 1),
        "sim_cpu_us_per_event": round((last["sim_cpu_s"] - first["sim_cpu_s"]) / emitted * 1e6, 2) if emitted else None,
        "feed_cpu_us_per_event": round(feed_cpu / emitted * 1e6, 2) if emitted else None,
        "cores_used": round(
            (feed_cpu + last["sim_cpu_s"] - first["sim_cpu_s"] + last["driver_cpu_s"] - first["driver_cpu_s"]) / span, 2
        ),
        "supervisors_cpu_s": round(last["driver_cpu_s"] - first["driver_cpu_s"], 1),
        "feed_cpu_s": round(feed_cpu, 1),
        "events_per_feed_cpu_s": round(emitted / feed_cpu) if feed_cpu > 0 else None,
        "playback_held_s": held,
        "pinned": drive.get("pinned"),
        "per_worker": per_worker,
    }


def _worker(a: dict[str, Any], b: dict[str, Any], span: float) -> dict[str, Any]:
    cpu = b["cpu_s"] - a["cpu_s"]
    n = b["emitted"] - a["emitted"]
    return {
        "venue": a["venue"],
        "worker": a["worker"],
        "events_per_s": round(n / span),
        "cpu_s": round(cpu, 1),
        "cpu_share": round(cpu / span, 2),
        # runnable but no core free (other processes, this machine's other sessions): what CPU it lacked
        "runq_wait_share": round((b.get("runq_wait_s", 0.0) - a.get("runq_wait_s", 0.0)) / span, 2),
        "events_per_cpu_s": round(n / cpu) if cpu > 0 else None,
        "rss_mb": b["rss_mb"],
        "peak_rss_mb": b["peak_rss_mb"],
        "books": b["books"],
    }


def _best_10s(samples: list[dict[str, Any]]) -> int:
    """The highest rate of events over 10 s of the window (a burst lasts 10 s)."""
    best = 0.0
    for i, s in enumerate(samples):
        j = next((j for j in range(i + 1, len(samples)) if samples[j]["t"] - s["t"] >= 10.0), None)
        if j is not None:
            best = max(best, (_emitted(samples[j]) - _emitted(s)) / (samples[j]["t"] - s["t"]))
    return round(best)


def stored_figures(tmp: Path, workers: int, from_ns: int) -> dict[str, Any]:
    """Receipt-to-commit p99 (2 workers: Parquet file mtime minus receipt) and receipt-minus-event
    p99 per second (backlog), from what the run stored."""
    import duckdb

    out: dict[str, Any] = {}
    if workers > 1:
        lat = commit_latencies_ms(tmp, from_ns)
        if lat:
            lat.sort()
            out["commit_p50_ms"] = round(lat[len(lat) // 2], 1)
            out["commit_p99_ms"] = round(lat[int(len(lat) * 0.99)], 1)
            out["commit_rows"] = len(lat)
    for venue in VENUES:
        path = tmp / f"{venue}.duckdb"
        if not path.is_file():  # --sink parquet with 1 worker: no DuckDB file
            continue
        con = duckdb.connect(str(path), read_only=True)
        try:
            rows = con.execute(
                "SELECT receipt_ns // 1000000000 AS s, quantile_cont(receipt_ns / 1e6 - event_time_ms, 0.99) "
                "FROM l2 WHERE receipt_ns >= ? GROUP BY s ORDER BY s",
                [from_ns],
            ).fetchall()
            n, last = con.execute(
                "SELECT count(*), max(receipt_ns) FROM (SELECT receipt_ns FROM l2 UNION ALL "
                "SELECT receipt_ns FROM trades UNION ALL SELECT receipt_ns FROM tickers) WHERE receipt_ns >= ?",
                [from_ns],
            ).fetchone() or (0, None)
        finally:
            con.close()
        if n and last is not None and last > from_ns:  # exact at the end (the last receipt), not a status line
            out.setdefault("received_by_venue", {})[venue] = (n, last)
        lags = [r[1] for r in rows if r[1] is not None][1:-1]  # first and last second are partial
        if lags:
            base = sorted(lags)[len(lags) // 2]
            out.setdefault("lag_p99_growth_ms", {})[venue] = round(max(lags) - base, 1)
    received = out.pop("received_by_venue", {})
    if received:  # rows stored from the window's start to the last receipt of any venue
        last = max(t for _, t in received.values())
        out["stored_events_per_s"] = round(sum(n for n, _ in received.values()) / ((last - from_ns) / 1e9))
    return out


def commit_latencies_ms(tmp: Path, from_ns: int) -> list[float]:
    """Per row of every event file the workers wrote: its file's mtime minus the row's receipt time."""
    import pyarrow.parquet as pq

    out: list[float] = []
    for venue in VENUES:
        for f in (tmp / f"{venue}.duckdb.parts").glob("venue=*/channel=*/date=*/*.parquet"):
            mtime = f.stat().st_mtime_ns
            receipts = pq.read_table(f, columns=["receipt_ns"]).column(0).to_pylist()
            out.extend((mtime - r) / 1e6 for r in receipts if r >= from_ns)
    return out


def _ratio(one: dict[str, Any], two: dict[str, Any], key: str) -> float | None:
    a, b = one.get(key), two.get(key)
    return round(b / a, 2) if a and b else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_exchange")
    p.add_argument("--scenario", choices=("normal", "saturated", "both"), default="both")
    p.add_argument("--sim", choices=("prerender", "live"), default="prerender")
    p.add_argument("--full", action="store_true", help="longer timelines (about 2.5 min per run)")
    p.add_argument("--pin", action="store_true", help="spot's worker k (all its threads) on core k; 1 worker: core 0")
    p.add_argument("--sink", choices=("duckdb", "parquet"), default="duckdb", help="the feeds' target (default duckdb)")
    p.add_argument(
        "--saturated-venues",
        default="spot",
        help="venues of the saturated scenario (default spot: then --workers 1 is one process; "
        "spot,futures,coinm for the whole exchange)",
    )
    args = p.parse_args(argv or [])
    out: dict[str, Any] = {
        "cores": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "calibration_ns": calibration_ns(),
    }
    out["config"] = {
        "seed": SEED, "rate": RATE, "sim": args.sim, "full": args.full, "pin": args.pin,
        "saturated_venues": args.saturated_venues,
    }  # fmt: skip
    scenarios = ("normal", "saturated") if args.scenario == "both" else (args.scenario,)
    ok = True
    for scenario in scenarios:
        if scenario == "saturated" and args.sim == "live":
            continue
        runs = run_scenario(args, scenario)
        for w, fig in runs.items():
            print(f"{scenario} --workers {w}: {json.dumps(fig)}")
        one, two = runs[1], runs[2]
        res: dict[str, Any] = {
            "workers_1": one,
            "workers_2": two,
            "ratio": _ratio(one, two, "events_per_s"),
            "stored_ratio": _ratio(one, two, "stored_events_per_s"),  # rows by receipt time: exact at the end
            "events_per_feed_cpu_s_ratio": _ratio(one, two, "events_per_feed_cpu_s"),
            "target": TARGET,
        }
        out[scenario] = res
        print(
            f"{scenario}: --workers 2 / 1 = {res['ratio']} (stored rows by receipt time: {res['stored_ratio']}; "
            f"target >= {TARGET})",
            flush=True,
        )
        ok = ok and (res["ratio"] or 0) >= TARGET and two.get("gaps", 1) == 0 and two.get("resyncs", 1) == 0
    out["ok"] = ok
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2, default=str))
