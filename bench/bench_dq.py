"""dq benchmark: every check over 10 million rows in DuckDB, target under 10 seconds.

Rows are generated inside DuckDB with ``range()`` (a clean six-hour market: 20 symbols on two venues,
@depth@100ms books with contiguous update ids, trades and tickers) into a DuckDB file, which is then
opened read-only as ``tickpath dq --db`` opens the feed's store, and the five checks run over the whole
window through the same code path as ``tickpath dq``. Wall-clock time is judged; CPU time (all DuckDB
threads) is printed too, because on a shared machine wall time mostly measures the others.

``BENCH_DQ_STORE=memory`` runs the checks on the in-memory database the rows were generated in instead
(what this benchmark measured until 23 November 2026). DuckDB does not compress in-memory tables, so
the checks' groupings and sorts on the stream strings cost more there than on the file the feed writes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.common import calibration_ns
from tickpath import tables
from tickpath.dq.checks import CHECKS
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, run_dq

TARGET_S = 10.0
ROWS = {"l2": 4_000_000, "trades": 3_000_000, "tickers": 3_000_000}
SYMBOLS = 20
HOURS = 6
T0_MS = 1_700_000_000_000


def _generate(con: duckdb.DuckDBPyConnection) -> None:
    for t in tables.SCHEMAS:
        con.execute(tables.duckdb_ddl(t))
    span_ms = HOURS * 3_600_000
    # i: row number within one symbol; s: symbol index; venues alternate by symbol.
    common = """
      'bench' AS session, CASE WHEN s % 2 = 0 THEN 'futures' ELSE 'spot' END AS venue,
      'SYM' || CAST(s AS VARCHAR) || 'USDT' AS symbol, i + 1 AS seq, e AS event_time_ms, e AS transaction_time_ms,
      e * 1000000 + 20000000 + (i * 7919) % 5000000 AS receipt_ns"""
    gen = (
        "FROM (SELECT r % {n} AS s, r // {n} AS i, {t0} + ((r // {n}) * {span}) // {per} + {shift} AS e "
        "FROM range({rows}) t(r))"
    )
    per = {k: v // SYMBOLS for k, v in ROWS.items()}
    con.execute(f"""INSERT INTO trades SELECT {common}, 500 + i, NULL, NULL, '100.5', '0.25',
        CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END, NULL, NULL
        {gen.format(n=SYMBOLS, t0=T0_MS, span=span_ms, per=per["trades"], shift=13, rows=ROWS["trades"])}""")
    # The sizes move, as a live touch does: a ticker repeating one bid/ask and sizes is a frozen feed.
    con.execute(f"""INSERT INTO tickers SELECT {common}, 1000 + i, '100.4', CAST(2 + i % 3 AS VARCHAR), '100.6', '3',
        NULL, NULL
        {gen.format(n=SYMBOLS, t0=T0_MS, span=span_ms, per=per["tickers"], shift=29, rows=ROWS["tickers"])}""")
    # l2: the first row per symbol is a snapshot at update id 1000, then deltas u = 1000 + 3i whose U/pu
    # follow Binance's rules for the venue.
    con.execute(f"""INSERT INTO l2 SELECT {common},
        CASE WHEN i = 0 THEN 'snapshot' ELSE 'delta' END,
        CASE WHEN i = 0 THEN NULL WHEN s % 2 = 0 THEN 1000 + 3 * i - 3 ELSE 1000 + 3 * i - 2 END,
        1000 + 3 * i,
        CASE WHEN i = 0 OR s % 2 = 1 THEN NULL ELSE 1000 + 3 * i - 3 END,
        NULL,
        [{{'price': '100.4', 'qty': CAST(1 + i % 3 AS VARCHAR)}}],
        [{{'price': '100.6', 'qty': CASE WHEN i = 0 THEN '1' ELSE CAST(i % 2 AS VARCHAR) END}}],
        NULL, NULL, NULL, NULL
        {gen.format(n=SYMBOLS, t0=T0_MS, span=span_ms, per=per["l2"], shift=0, rows=ROWS["l2"])}""")
    for venue, parity in (("futures", 0), ("spot", 1)):
        syms = [f"SYM{s}USDT" for s in range(SYMBOLS) if s % 2 == parity]
        streams = [f"{x.lower()}@{k}" for x in syms for k in ("depth@100ms", "aggTrade", "bookTicker")]
        con.execute(
            "INSERT INTO feed_sessions VALUES ('bench', ?, ?, ?, ?, ['trades', 'ticker', 'l2'], ?, NULL, "
            "1500000, 400000)",
            [venue, (T0_MS - 1000) * 1_000_000, (T0_MS + span_ms + 1000) * 1_000_000, syms, streams],
        )


def main() -> dict[str, Any]:
    store = os.environ.get("BENCH_DQ_STORE", "file")
    if store not in ("file", "memory"):
        raise SystemExit(f"BENCH_DQ_STORE: {store!r} is neither 'file' nor 'memory'")
    with tempfile.TemporaryDirectory(prefix="tickpath-bench-dq-") as tmp:
        path = Path(tmp) / "ticks.duckdb"
        con = duckdb.connect(":memory:" if store == "memory" else str(path))
        con.execute("SET enable_progress_bar = false")  # its redraws would interleave with the figures
        t0 = time.perf_counter()
        _generate(con)
        if store == "file":
            con.execute("CHECKPOINT")  # compressed to disk, as the feed's sink leaves its store
            con.close()
        gen_s = time.perf_counter() - t0
        engine = DuckDBEngine(connection=con) if store == "memory" else DuckDBEngine(path)
        try:
            return _run(engine, gen_s, store)
        finally:
            engine.close()


def _run(engine: DuckDBEngine, gen_s: float, store: str) -> dict[str, Any]:
    total = sum(int(engine.query(f"SELECT count(*) AS n FROM {t}")[0]["n"]) for t in ROWS)
    config = DqConfig(since_ns=(T0_MS - 60_000) * 1_000_000, until_ns=(T0_MS + HOURS * 3_600_000 + 60_000) * 1_000_000)
    per_check: dict[str, float] = {}
    per_check_cpu: dict[str, float] = {}
    last = [(time.perf_counter(), time.process_time())]

    def progress(name: str) -> None:
        last.append((time.perf_counter(), time.process_time()))

    calib = calibration_ns()
    t1, c1 = time.perf_counter(), time.process_time()
    report = run_dq(config, engine, progress=progress)
    elapsed = time.perf_counter() - t1
    cpu = time.process_time() - c1  # all DuckDB threads: what the checks cost without other load
    marks = [*last[1:], (t1 + elapsed, c1 + cpu)]
    for name, a, b in zip(CHECKS, marks, marks[1:], strict=False):
        per_check[name] = round(b[0] - a[0], 3)
        per_check_cpu[name] = round(b[1] - a[1], 3)
    figures = {
        "rows": total,
        "store": "in-memory database" if store == "memory" else "DuckDB file, read-only",
        "calibration_ns_per_loop_iteration": calib,
        "generate_s": round(gen_s, 2),
        "all_checks_s": round(elapsed, 2),
        "all_checks_cpu_s": round(cpu, 2),
        "per_check_s": per_check,
        "per_check_cpu_s": per_check_cpu,
        "verdicts": {r.name: r.ok for r in report.results},
        "threads": engine.query("SELECT current_setting('threads') AS t")[0]["t"],
        "target": f"all checks over 10M rows < {TARGET_S} s",
        "ok": elapsed < TARGET_S,
    }
    print(
        f"dq: {total:,} rows generated in {gen_s:.1f} s ({figures['store']}); "
        f"all checks in {elapsed:.2f} s wall, {cpu:.1f} s CPU over {figures['threads']} threads "
        f"(target < {TARGET_S} s): {'ok' if figures['ok'] else 'MISSED'}"
    )
    print(f"    per check, wall s: {per_check}")
    print(f"    per check, CPU s:  {per_check_cpu}")
    print(f"    verdicts: {figures['verdicts']}")
    print(f"machine: {calib} CPU-ns per plain loop iteration (compare machines by this figure)")
    return figures


if __name__ == "__main__":
    main()
