"""Feed engine benchmarks: (b) the whole hot path into the DuckDB sink, (c) end to end over WebSocket.

Stream: the shared USD-M futures capture, replayed once to sync the books from its real snapshots,
then its depth frames repeated with update ids shifted so the ``pu`` chain stays valid (the builder
is shared with ``bench_feed_core``); the bookTicker/aggTrade frames of the capture ride along
unchanged in the mixed variant.

(b) In process: every frame goes through the engine (decode, de-duplicate, sync, book, normalize,
pipeline) and the pipeline's DuckDB sink (Arrow tables held per table, committed in whole row groups
and at close, inserts in a worker thread) until ``close()`` has committed everything, after an
untimed replay of the capture that syncs the books. Runs (``BENCH_FEED_B_IMPLS`` picks some):
``native_batch`` (the columnar path as the feed takes it: ``FeedEngine.on_frames`` with
``FRAMES_PER_READ`` frames a call), ``native`` (the same, ``on_frame`` once per frame),
``native_objects`` (the native core, one Python event per event) and ``pure`` (TICKPATH_PURE=1).
CPU time is ``time.process_time()`` of the whole process (all threads); the yardsticks are
``orjson.loads`` alone on the same frames and DuckDB's insert alone of the same rows, each measured
before the first run and after every run, a run's ratio taken against the mean of the two beside
it; target (#17) native >= 1.0x it (the faster of the two columnar runs).

(c) Over WebSocket: the stream is written as a capture file and served by ``tickpath sim --replay``
in a separate process. Throughput: ``--speed 0`` (as fast as the feed reads), messages per wall
second from first to last frame; target 50,000/s. Latency: frames scheduled open-loop at 10,000/s by
the simulator (send time = the capture's receipt time), and for every frame the feed's added latency
from frame receipt (``receive()`` returned) to the events entering the pipeline, on the monotonic
clock, recorded in an HdrHistogram; the capture that syncs the books (replayed 20x faster) and the
first second at 10,000/s are discarded as warm-up; target p99 <= 100 us. Each (c) run also reports
the CPU seconds of the feed process and of the simulator process over the measured window, which
shows which of the two bounds the rate.

``BENCH_FEED_PARTS`` (environment, comma-separated, default ``b,c_rate,c_latency``) runs only the
named parts, e.g. ``BENCH_FEED_PARTS=c_rate,c_latency python -m bench feed`` for (c) alone; a part
not run is reported as ``null`` and not counted in ``ok``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson

import tickpath
from bench.bench_feed_core import SHARED, _repeated_stream, _warm_normalizer
from bench.common import calibration_ns, chosen_parts, proc_cpu_s
from tickpath.feed import Feed, FeedConfig
from tickpath.feed.engine import FeedEngine
from tickpath.feed.pipeline import Pipeline
from tickpath.runtime import streaming_gc
from tickpath.sinks.duckdb import DuckDBSink
from tickpath.stats import LatencyRecorder
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order

TARGET_B_RATIO = 1.0  # #17: the whole hot path into DuckDB vs orjson.loads alone, depth-only
TARGET_C_RATE = 50_000
TARGET_C_P99_US = 100.0
MESSAGES_B = 200_000
MESSAGES_C = 300_000
LATENCY_RATE = 10_000
LATENCY_SECONDS = 6.0
WARMUP_S = 1.0
WARM_SQUEEZE = 0.05  # the warm-up capture's recorded times, scaled (latency run only)
SYMBOLS = ("AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT")
PARTS = ("b", "c_rate", "c_latency")
IMPLS = ("native_batch", "native", "native_objects", "pure")  # (b); BENCH_FEED_B_IMPLS picks some
# (b) native_batch: frames per FeedEngine.on_frames call. A depth frame of the capture is ~350 bytes,
# so 64 are ~22 KB: a third of one 64 KiB socket read, what a feed keeping up reads at a time.
FRAMES_PER_READ = 64


class _Conn:
    conn_id = "bench"


def _stream(count: int, depth_only: bool) -> tuple[Any, list[str]]:
    norm, frames, snaps = _warm_normalizer()
    return norm, [b.decode() for b in _repeated_stream(frames, norm, snaps, count, depth_only)]


async def _warm(eng: FeedEngine) -> None:
    """Sync the engine's books by replaying the capture with its snapshots (untimed), as the
    stream builder's reference did, so the timed frames continue every book's chain."""
    cap = read_ws_capture(SHARED / "usdm_futures.ws.txt")
    conn = _Conn()
    for item in replay_order(cap.frames, read_http_capture(SHARED / "usdm_futures.http.txt")):
        if isinstance(item, HttpRecord):
            eng.on_snapshot(item.params["symbol"], item.body.encode(), int(item.receipt * 1e9))
            continue
        w = eng.on_frame(item.text, int(item.receipt * 1e9), 0, conn)
        if w is not None:
            await w


def _yardstick(stream: list[str]) -> float:
    """orjson.loads alone on the same frames: msgs per CPU-second, measured in the same run."""
    c0 = time.process_time()
    for text in stream:
        orjson.loads(text)
    return len(stream) / (time.process_time() - c0)


async def _in_process(depth_only: bool, tmp: Path, impl: str, stream: list[str]) -> dict[str, Any]:
    sink = DuckDBSink(tmp / f"b-{depth_only}-{impl}.duckdb")
    pipeline = Pipeline([sink], batch_size=5000, queue_batches=8, flush_interval_s=0.5)
    await pipeline.start()
    if impl == "pure":
        os.environ["TICKPATH_PURE"] = "1"
    try:
        eng = FeedEngine(
            "futures", SYMBOLS, pipeline, session="bench", latency_sample_every=1 << 30,
            columnar=pipeline if impl.startswith("native") and impl != "native_objects" else None,
        )  # fmt: skip
    finally:
        os.environ.pop("TICKPATH_PURE", None)
    await _warm(eng)
    conn = _Conn()
    wall, mono = time.time_ns, time.monotonic_ns
    warm_events = pipeline.stats.emitted
    c0 = time.process_time()
    w0 = time.perf_counter()
    if impl == "native_batch":  # the frames of one socket read in one call, as the feed takes them
        on_frames = eng.on_frames
        for i in range(0, len(stream), FRAMES_PER_READ):
            w = on_frames(stream[i : i + FRAMES_PER_READ], wall(), mono(), conn)
            if w is not None:
                await w
            if i % 2048 == 0:
                await asyncio.sleep(0)  # let the sink worker take batches, as the event loop would
    else:
        on_frame = eng.on_frame
        for i, text in enumerate(stream):
            w = on_frame(text, wall(), mono(), conn)
            if w is not None:
                await w
            if i % 2000 == 0:
                await asyncio.sleep(0)
    await pipeline.close()
    cpu = time.process_time() - c0
    elapsed = time.perf_counter() - w0
    books = eng.book_totals()
    return {
        "impl": impl,
        "columnar": eng.columnar,
        "messages": len(stream),
        "events": pipeline.stats.emitted - warm_events,
        "rows_written": sink.stats.written,
        "cpu_s": round(cpu, 3),
        "wall_s": round(elapsed, 3),
        "msgs_per_cpu_s": round(len(stream) / cpu),
        "resyncs": books["resyncs"],
        "gaps": books["gaps"],
    }


def _duckdb_ceiling(stream: list[str], tmp: Path, depth_only: bool, label: str = "ceiling") -> float:
    """DuckDB's own cost for these rows: the same events, already Arrow tables, inserted into a new
    file as the sink does (one INSERT per table, one thread); frames per CPU-second of that alone."""
    from bench.bench_feed_core import _native_warm
    from tickpath.tables import duckdb_ddl

    proc = _native_warm({s: None for s in SYMBOLS})
    for text in stream:
        proc.feed(text, 1)
    tables = proc.take_tables()
    con = duckdb.connect(str(tmp / f"{label}-{depth_only}.duckdb"))
    con.execute("SET threads = 1")
    c0 = time.process_time()
    for name, table in tables.items():
        con.execute(duckdb_ddl(name))
        con.register("_batch", table)
        con.execute(f"INSERT INTO {name} SELECT * FROM _batch")
    con.execute("CHECKPOINT")
    cpu = time.process_time() - c0
    con.close()
    return len(stream) / cpu


async def _part_b(depth_only: bool, tmp: Path) -> dict[str, Any]:
    """(b) for the native columnar path, the native core with events as objects, and the pure reference."""
    _, stream = _stream(MESSAGES_B, depth_only)
    # The process's first large DuckDB insert costs more (its allocator and page faults grow the heap):
    # measured 10-15 % on whichever run came first, so one untimed insert of these rows goes before.
    _duckdb_ceiling(stream, tmp, depth_only, "warm")
    # On a shared machine the CPU cost of everything drifts within a run: each run is divided by the
    # mean of the yardsticks measured just before and just after it (orjson and DuckDB's insert alone).
    yards, ceilings = [_yardstick(stream)], [_duckdb_ceiling(stream, tmp, depth_only, "ceiling-0")]
    runs = {}
    for k, impl in enumerate(chosen_parts("BENCH_FEED_B_IMPLS", IMPLS), start=1):
        r = runs[impl] = await _in_process(depth_only, tmp, impl, stream)
        yards.append(_yardstick(stream))
        ceilings.append(_duckdb_ceiling(stream, tmp, depth_only, f"ceiling-{k}"))
        r["ratio_to_orjson"] = round(2 * r["msgs_per_cpu_s"] / (yards[-2] + yards[-1]), 3)
        r["ratio_to_duckdb_insert"] = round(2 * r["msgs_per_cpu_s"] / (ceilings[-2] + ceilings[-1]), 3)
    yard, ceiling = statistics.median(yards), statistics.median(ceilings)
    return {"orjson_msgs_per_cpu_s": round(yard), "duckdb_insert_only_msgs_per_cpu_s": round(ceiling), **runs}


def _write_capture(tmp: Path, count: int, rate: float | None) -> tuple[Path, int, int]:
    """The warm-up capture followed by ``count`` continuation frames, timed at ``rate``/s (None: as is).

    Returns the file, the number of frames the feed will receive (klines are not subscribed) and how
    many of them belong to the warm-up capture. With a ``rate``, the capture's 30 recorded seconds
    are replayed 20x faster (still in order, with the recorded snapshots): they only sync the books,
    and at their recorded pace they were 30 s of a ~50 frames/s trickle inside the latency window.
    """
    cap = read_ws_capture(SHARED / "usdm_futures.ws.txt")
    _, stream = _stream(count, depth_only=False)
    path = tmp / f"long-{count}-{rate}.ws.txt"
    t0 = cap.frames[0].receipt
    squeeze = WARM_SQUEEZE if rate else 1.0
    t = t0 + (cap.frames[-1].receipt - t0) * squeeze
    step = 1.0 / rate if rate else 1e-6
    subscribed = 0
    with path.open("w") as fh:
        fh.write(f"{cap.url} <-> {cap.opened_at}\n")
        for f in cap.frames:
            fh.write(f"{t0 + (f.receipt - t0) * squeeze:.6f}: {f.text}\n")
            subscribed += "@kline" not in f.text[:40]
        warm = subscribed
        t += 0.2  # the books sync from the recorded snapshots before the long stream starts
        for text in stream:
            t += step
            fh.write(f"{t:.6f}: {text}\n")
            subscribed += "@kline" not in text[:40]
    return path, subscribed, warm


def _start_sim(capture: Path, speed: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "tickpath.cli.main",
        "sim",
        "--venue",
        "futures",
        "--replay",
        str(capture),
        "--replay-http",
        str(SHARED / "usdm_futures.http.txt"),
        "--speed",
        str(speed),
        "--json",
    ]
    # The simulator runs the same tickpath as this process (an A/B run may import another tree).
    env = {**os.environ, "PYTHONPATH": str(Path(tickpath.__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("tickpath sim did not start")
    return proc, json.loads(line)["endpoints"][0]


async def _over_ws(
    capture: Path, expected: int, speed: float, tmp: Path, latency: bool, warm_frames: int = 0
) -> dict[str, Any]:
    # A feed starts with a clean heap: collect what the earlier runs in this process left, so that
    # collecting it does not land inside this run's measurement.
    gc.collect()
    proc, ep = _start_sim(capture, speed)
    try:
        cfg = FeedConfig(
            venue="futures",
            symbols=SYMBOLS,
            base_url=ep["ws_url"],
            rest_url=ep["rest_url"],
            sinks=(f"duckdb:{tmp}/c-{speed}.duckdb",),
            clock_samples=0,
            stale_after_s=60.0,
        )
        feed = Feed(cfg, latency_sample_every=1)
        task = asyncio.create_task(feed.run())
        first_t = last_t = 0.0
        first_n = 0
        # CPU of each process over the measured window: which one bounds the rate.
        feed_cpu0 = feed_cpu1 = sim_cpu0 = sim_cpu1 = 0.0
        warm_reset = False
        while True:
            await asyncio.sleep(0.02)
            if task.done():
                break
            eng = feed.engine
            if eng is None:
                continue
            n = eng.stats.frames
            now = time.perf_counter()
            if n and not first_t:
                first_t, first_n = now, n
                feed_cpu0, sim_cpu0 = time.process_time(), proc_cpu_s(proc.pid)
            # Warm-up discarded: the capture that syncs the books, then the first second at the rate.
            if latency and not warm_reset and n >= warm_frames + WARMUP_S * LATENCY_RATE:
                eng.drain_latency()
                eng.enqueue_latency = LatencyRecorder("receipt_to_enqueue")  # warm-up discarded
                warm_reset = True
            if n >= expected:
                last_t = now
                feed_cpu1, sim_cpu1 = time.process_time(), proc_cpu_s(proc.pid)
                break
            if first_t and now - first_t > 120:
                break
        feed.stop()
        summary = await task
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert feed.engine is not None
    frames = feed.engine.stats.frames
    elapsed = (last_t or time.perf_counter()) - first_t
    lat = feed.engine.enqueue_latency.summary()
    return {
        "frames": frames,
        "expected": expected,
        "events": summary.emitted,
        "written": summary.sinks["duckdb"]["written"],
        "wall_s": round(elapsed, 3),
        "msgs_per_s": round((frames - first_n) / elapsed) if elapsed > 0 else 0,
        "gaps": summary.gaps,
        "resyncs": summary.resyncs,
        "feed_cpu_s": round(feed_cpu1 - feed_cpu0, 3),
        "sim_cpu_s": round(sim_cpu1 - sim_cpu0, 3),
        "receipt_to_enqueue_us": lat.to_dict("us"),
    }


async def _run() -> dict[str, Any]:
    parts = chosen_parts("BENCH_FEED_PARTS", PARTS)
    calib = calibration_ns()
    print(f"machine: {calib} CPU-ns per plain loop iteration (compare machines by this figure)")
    b_depth = b_mix = c_rate = c_lat = None
    ok = True
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "b" in parts:
            b_depth = await _part_b(True, tmp)
            b_mix = await _part_b(False, tmp)
            for label, b in (("depth-only", b_depth), ("capture mix", b_mix)):
                print(
                    f"(b) {label} into DuckDB: orjson.loads alone {b['orjson_msgs_per_cpu_s']:,}/CPU-s, "
                    f"DuckDB's insert of the same rows alone {b['duckdb_insert_only_msgs_per_cpu_s']:,}/CPU-s; "
                    + "; ".join(
                        f"{impl} {b[impl]['msgs_per_cpu_s']:,} ({b[impl]['ratio_to_orjson']:.2f}x, "
                        f"gaps {b[impl]['gaps']})"
                        for impl in IMPLS
                        if impl in b
                    )
                    + f"; target native >= {TARGET_B_RATIO:.1f}x on depth-only"
                )
            cols = [b_depth[i] for i in ("native_batch", "native") if i in b_depth]
            best = max(cols, key=lambda r: float(r["ratio_to_orjson"])) if cols else None
            ok = ok and best is not None and best["ratio_to_orjson"] >= TARGET_B_RATIO and best["gaps"] == 0
        if "c_rate" in parts:
            cap_fast, n_fast, _ = _write_capture(tmp, MESSAGES_C, None)
            c_rate = await _over_ws(cap_fast, n_fast, 0.0, tmp, latency=False)
            print(
                f"(c) over WebSocket, as fast as read: {c_rate['msgs_per_s']:,} msgs/s "
                f"({c_rate['frames']:,} frames, gaps {c_rate['gaps']}) target {TARGET_C_RATE:,}; "
                f"CPU over {c_rate['wall_s']} s: feed {c_rate['feed_cpu_s']} s, "
                f"simulator {c_rate['sim_cpu_s']} s"
            )
            ok = ok and c_rate["msgs_per_s"] >= TARGET_C_RATE and c_rate["gaps"] == 0
        if "c_latency" in parts:
            cap_lat, n_lat, n_warm = _write_capture(tmp, int(LATENCY_RATE * LATENCY_SECONDS), LATENCY_RATE)
            c_lat = await _over_ws(cap_lat, n_lat, 1.0, tmp, latency=True, warm_frames=n_warm)
            lat = c_lat["receipt_to_enqueue_us"]
            print(
                f"(c) at {LATENCY_RATE:,} msgs/s: receipt->enqueue p50 {lat['p50']} us, p99 {lat['p99']} us, "
                f"p99.9 {lat['p999']} us, max {lat['max']} us ({lat['count']:,} samples after "
                f"{WARMUP_S:g} s warm-up, monotonic clock) target p99 <= {TARGET_C_P99_US:g} us"
            )
            ok = ok and lat["p99"] <= TARGET_C_P99_US
    return {
        "calibration_ns_per_loop_iteration": calib,
        "parts": sorted(parts),
        "b_duckdb_depth": b_depth,
        "b_duckdb_mix": b_mix,
        "c_throughput": c_rate,
        "c_latency": c_lat,
        "target": {"b_ratio_to_orjson": TARGET_B_RATIO, "c_msgs_per_s": TARGET_C_RATE, "c_p99_us": TARGET_C_P99_US},
        "ok": ok,
    }


def main() -> dict[str, Any]:
    try:
        import uvloop

        with streaming_gc():  # as `tickpath feed` runs
            return uvloop.run(_run())  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover
        with streaming_gc():
            return asyncio.run(_run())


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
