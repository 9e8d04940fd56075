"""``feed --workers 2`` with a DuckDB target: one writer fed by the workers, or one file set per worker?

DuckDB allows one writer per file, so two workers either (a) ship their batches as Arrow IPC over a
pipe to one writer process that inserts into the one DuckDB file, or (b) each write their own files
(Parquet, as ``feed --workers`` does, or a DuckDB file each) with one DuckDB view over them. Every
mode hands the same rows over in the pipeline's batches (2,000 rows) in the ``trades`` schema and
writes them as the real sinks do (DuckDB: one thread, an INSERT per 131,072 rows; Parquet: a file per
50,000 rows); the yardstick is one process inserting into one DuckDB file, today's
``--workers 1``. Figures: rows per second of wall time for the whole set, and the ratio to the
yardstick; target >= 1.8 for two workers on this 2-core machine.

Part ``feed`` runs the real thing end to end, ``feed --workers 1`` then ``2`` against the simulator
in the benchmark's own process, and reports events/s delivered and the simulator's CPU: on a 2-core
machine the simulator needs most of a core at this load, so this part shows what bounds the
end-to-end figure here rather than the workers' scaling.

Environment: BENCH_WORKERS_PARTS (writer,feed), TICKPATH_BENCH_WORKERS_ROWS (default 1,200,000 rows
per writer mode), TICKPATH_BENCH_WORKERS_RATE (default 5,000 updates/s per symbol).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from bench.common import calibration_ns, chosen_parts
from tickpath.tables import SCHEMAS

BATCH = 2000
PARQUET_ROWS = 50_000  # the Parquet sink's rows per file
DUCKDB_ROWS = 131_072  # the DuckDB sink's rows per INSERT
TARGET = 1.8
YARDSTICK = "1 process, 1 DuckDB file (yardstick)"
PARQUET = "(b) 2 workers, a Parquet file set each"
REPEATS = 3
RATE = float(os.environ.get("TICKPATH_BENCH_WORKERS_RATE", "5000"))  # sim updates per second per symbol


def _batch(worker: int, start: int) -> pa.Table:
    """``BATCH`` trades rows of one worker (distinct keys per worker and row)."""
    schema = SCHEMAS["trades"]
    n = BATCH
    cols: dict[str, list[Any]] = {}
    for f in schema:
        if f.name == "seq":
            cols[f.name] = list(range(start, start + n))
        elif f.name == "symbol":
            cols[f.name] = [f"S{worker}{i % 50:02d}USDT" for i in range(n)]
        elif f.name == "session":
            cols[f.name] = [f"w{worker}"] * n
        elif pa.types.is_integer(f.type):
            cols[f.name] = [1_700_000_000_000 + start + i for i in range(n)]
        elif pa.types.is_floating(f.type):
            cols[f.name] = [100.0 + (i % 97) * 0.01 for i in range(n)]
        elif pa.types.is_boolean(f.type):
            cols[f.name] = [i % 2 == 0 for i in range(n)]
        elif pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            cols[f.name] = ["spot"] * n
        else:
            cols[f.name] = [None] * n
    return pa.Table.from_pydict(cols, schema=schema)


def _batches(worker: int, rows: int) -> list[pa.Table]:
    return [_batch(worker, i) for i in range(0, rows, BATCH)]


def _duckdb_writer(path: str, worker: int, rows: int, ready: Any) -> None:
    batches = _batches(worker, rows)
    ready.wait()  # the clock starts when every process has its rows built
    _insert_all(duckdb.connect(path), iter(batches))


def _insert_all(con: duckdb.DuckDBPyConnection, batches: Any) -> None:
    """As the DuckDB sink does: one thread, an INSERT per DUCKDB_ROWS rows, then close (checkpoint)."""
    con.execute("SET threads = 1")
    created, buf, n = False, [], 0
    for b in batches:
        buf.append(b)
        n += b.num_rows
        if n >= DUCKDB_ROWS:
            created = _insert(con, pa.concat_tables(buf), created)
            buf, n = [], 0
    if buf:
        _insert(con, pa.concat_tables(buf), created)
    con.close()


def _insert(con: duckdb.DuckDBPyConnection, table: pa.Table, created: bool) -> bool:
    con.register("b", table)
    con.execute("INSERT INTO trades SELECT * FROM b" if created else "CREATE TABLE trades AS SELECT * FROM b")
    con.unregister("b")
    return True


def _parquet_writer(directory: str, worker: int, rows: int, ready: Any) -> None:
    batches = _batches(worker, rows)
    ready.wait()
    Path(directory).mkdir(parents=True, exist_ok=True)
    buf: list[pa.Table] = []
    n = part = 0
    for b in batches:
        buf.append(b)
        n += b.num_rows
        if n >= PARQUET_ROWS:
            pq.write_table(pa.concat_tables(buf), f"{directory}/part-w{worker}-{part}.parquet", compression="zstd")
            buf, n, part = [], 0, part + 1
    if buf:
        pq.write_table(pa.concat_tables(buf), f"{directory}/part-w{worker}-{part}.parquet", compression="zstd")


def _ipc_producer(fd: int, worker: int, rows: int, ready: Any) -> None:
    batches = _batches(worker, rows)
    ready.wait()
    with os.fdopen(fd, "wb") as out, ipc.new_stream(out, batches[0].schema) as w:
        for b in batches:
            w.write_table(b)


def _ipc_writer(path: str, fds: list[int], ready: Any) -> None:
    """One writer taking every producer's IPC stream in turn, batch by batch, into one DuckDB file."""
    ready.wait()
    readers = [ipc.open_stream(os.fdopen(fd, "rb")) for fd in fds]

    def batches() -> Any:
        live = list(readers)
        while live:
            for r in list(live):
                try:
                    yield pa.Table.from_batches([r.read_next_batch()])
                except StopIteration:
                    live.remove(r)

    _insert_all(duckdb.connect(path), batches())


def _timed(ctx: Any, jobs: list[tuple[Any, tuple[Any, ...]]], close: list[int] = ()) -> float:  # type: ignore[assignment]
    """Wall seconds from the moment every process is ready until the last one exits (one run; the
    machine is shared, so :func:`_modes` keeps the best of REPEATS)."""
    ready = ctx.Barrier(len(jobs) + 1)
    procs = [ctx.Process(target=fn, args=(*args, ready)) for fn, args in jobs]
    for p in procs:
        p.start()
    for fd in close:  # the children hold their ends of the pipes now
        os.close(fd)
    ready.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"bench process exited {p.exitcode}")
    return time.perf_counter() - t0


def _once(tmp: Path, rows: int) -> dict[str, float]:
    ctx = mp.get_context("fork")
    half = rows // 2
    out: dict[str, float] = {}
    out[YARDSTICK] = rows / _timed(ctx, [(_duckdb_writer, (str(tmp / "one.duckdb"), 0, rows))])
    out[PARQUET] = rows / _timed(ctx, [(_parquet_writer, (str(tmp / "parts"), k, half)) for k in range(2)])
    out["(b) 2 workers, a DuckDB file each"] = rows / _timed(
        ctx, [(_duckdb_writer, (str(tmp / f"w{k}.duckdb"), k, half)) for k in range(2)]
    )
    pipes = [os.pipe() for _ in range(2)]
    jobs: list[tuple[Any, tuple[Any, ...]]] = [(_ipc_producer, (w, k, half)) for k, (_, w) in enumerate(pipes)]
    jobs.append((_ipc_writer, (str(tmp / "ipc.duckdb"), [r for r, _ in pipes])))
    out["(a) 2 workers -> Arrow IPC pipe -> 1 DuckDB writer"] = rows / _timed(
        ctx, jobs, [fd for p in pipes for fd in p]
    )
    return out


def _modes(tmp: Path, rows: int) -> dict[str, float]:
    """Best rate of REPEATS interleaved rounds per mode (other load on the machine only slows a run)."""
    best: dict[str, float] = {}
    for i in range(REPEATS):
        d = tmp / f"round{i}"
        d.mkdir()
        for mode, rate in _once(d, rows).items():
            best[mode] = max(best.get(mode, 0.0), rate)
    return best


def main() -> dict[str, Any]:
    parts = chosen_parts("BENCH_WORKERS_PARTS", ("writer", "feed"))
    out: dict[str, Any] = {"ok": True}  # figures to report; each ratio against TARGET is in them
    if "writer" in parts:
        out["writer"] = writer_part()
    if "feed" in parts:
        out["feed"] = feed_part()
    return out


def writer_part() -> dict[str, Any]:
    rows = int(os.environ.get("TICKPATH_BENCH_WORKERS_ROWS", "1200000"))
    with tempfile.TemporaryDirectory(prefix="tickpath-bench-workers-") as tmp:
        rates = _modes(Path(tmp), rows)
    yard = rates[YARDSTICK]
    table = [
        {
            "mode": m,
            "rows_per_s": round(r),
            "ratio": round(r / yard, 2),
            "target": TARGET if m != next(iter(rates)) else None,
        }
        for m, r in rates.items()
    ]
    for row in table:
        print(f"{row['mode']:<52} {row['rows_per_s']:>12,} rows/s  x{row['ratio']}")
    best = rates[PARQUET]
    return {
        "rows": rows,
        "repeats": REPEATS,
        "batch_rows": BATCH,
        "cores": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "calibration_ns": calibration_ns(),
        "modes": table,
        "parquet_ratio": round(best / yard, 2),
        "parquet_meets_target": best / yard >= TARGET,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))


def _feed_rate(workers: int, symbols: tuple[str, ...], rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    """End to end: ``tickpath sim`` (this process) -> ``feed --workers N`` -> DuckDB target; events
    per second delivered, and the CPU the simulator took meanwhile (it shares the two cores)."""
    import asyncio

    from tickpath.feed.config import FeedConfig
    from tickpath.feed.supervisor import Supervisor
    from tickpath.sim import SimConfig, Simulator

    async def go() -> dict[str, Any]:
        async with Simulator(SimConfig(venues=("spot",), symbols=symbols, rate=rate, book_levels=50)) as sim:
            ep = sim.endpoint("spot")
            cfg = FeedConfig(
                venue="spot",
                symbols=symbols,
                sinks=(f"duckdb:{tmp / f'feed{workers}.duckdb'}",),
                base_url=ep.ws_url,
                rest_url=ep.rest_url,
                duration_s=seconds,
            )
            c0 = time.process_time()
            merged = await Supervisor(cfg, workers).run()
            sim_cpu = time.process_time() - c0
        written = sum(s.get("written", 0) for s in merged["sinks"].values())
        return {"events_per_s": round(written / seconds), "sim_cpu_s": round(sim_cpu, 1), "gaps": merged["gaps"]}

    return asyncio.run(go())


def feed_part() -> dict[str, Any]:
    """Workers 1 vs 2 at the same offered load (40 symbols x RATE updates/s), 10 s each."""
    symbols = tuple(f"S{i:02d}USDT" for i in range(40))
    with tempfile.TemporaryDirectory(prefix="tickpath-bench-workers-feed-") as tmp:
        one = _feed_rate(1, symbols, RATE, 10.0, Path(tmp))
        two = _feed_rate(2, symbols, RATE, 10.0, Path(tmp))
    return {
        "offered_updates_per_s": 40 * RATE,
        "workers_1": one,
        "workers_2": two,
        "ratio": round(two["events_per_s"] / max(one["events_per_s"], 1), 2),
    }
