"""``feed --workers N`` and ``--shard i/N``: stable placement, the supervisor's restarts, merged
status and /metrics, and the DuckDB views over the workers' Parquet files."""

from __future__ import annotations

import asyncio
import os
import signal
import zlib
from pathlib import Path

import aiohttp
import duckdb
import pytest

from tickpath.cli.main import main
from tickpath.errors import ConfigError
from tickpath.feed.config import FeedConfig
from tickpath.feed.sharding import ShardSpec, parse_shard, plan_workers
from tickpath.feed.supervisor import Supervisor, merge_summaries
from tickpath.sim import SimConfig, Simulator

SYMBOLS = tuple(f"S{i:03d}USDT" for i in range(400))


def test_every_symbol_lands_on_exactly_one_worker_of_one_shard() -> None:
    shards = [ShardSpec(i, 3) for i in range(3)]
    seen: dict[str, tuple[int, int]] = {}
    for sh in shards:
        for k, owned in enumerate(plan_workers(SYMBOLS, sh, 2)):
            for s in owned:
                assert s not in seen, f"{s} placed twice"
                seen[s] = (sh.index, k)
    assert set(seen) == set(SYMBOLS)
    counts = [sum(1 for v in seen.values() if v == (i, k)) for i in range(3) for k in range(2)]
    assert min(counts) > len(SYMBOLS) / 6 * 0.6, counts  # no starved worker: a real hash, not one bucket
    for s, (i, k) in seen.items():  # the documented formula, reproducible in any language
        h = zlib.crc32(s.encode())
        assert (h % 3, (h // 3) % 2) == (i, k)


def test_placement_is_stable_and_keeps_the_order_given() -> None:
    first = plan_workers(SYMBOLS, ShardSpec(), 4)
    assert plan_workers(SYMBOLS, ShardSpec(), 4) == first
    assert plan_workers(tuple(reversed(SYMBOLS)), ShardSpec(), 4) == [tuple(reversed(w)) for w in first]


def test_shard_parsing_and_config_filtering() -> None:
    assert parse_shard(" 1/4 ") == ShardSpec(1, 4)
    for bad in ("4/4", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    sh = ShardSpec(0, 2)
    cfg = FeedConfig(venue="spot", symbols=SYMBOLS[:20], shard=sh)
    assert cfg.symbols == sh.select(SYMBOLS[:20]) and 0 < len(cfg.symbols) < 20
    other = next(s for s in SYMBOLS if not sh.owns(s))
    with pytest.raises(ConfigError, match="owns none"):
        FeedConfig(venue="spot", symbols=(other,), shard=sh)


def test_bad_shard_and_workers_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["feed", "--venue", "spot", "--symbols", "BTCUSDT", "--shard", "2/2"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["feed", "--venue", "spot", "--symbols", "BTCUSDT", "--workers", "0"])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_merge_sums_counts_and_keeps_latency_per_run() -> None:
    a = {"session": "a", "venue": "spot", "emitted": 3, "sinks": {"x": {"written": 3}}, "latency": {"p": 1}}
    b = {"session": "b", "venue": "spot", "emitted": 4, "sinks": {"x": {"written": 4}}, "latency": {"p": 9}}
    m = merge_summaries([a, b])
    assert m["emitted"] == 7 and m["sinks"]["x"]["written"] == 7 and m["session"] == "a,b"
    assert m["latency"] == {"per_run": [{"p": 1}, {"p": 9}]}


def test_merge_takes_the_worst_workers_loop_lag_and_sums_memory() -> None:
    """Percentiles are not summed (the worst worker's); RSS and trims are; the trim period is one."""
    lag = [
        {"samples": 10, "p50_ms": 1.0, "p99_ms": 8.0, "max_ms": 20.0},
        {"samples": 5, "p50_ms": 2.0, "p99_ms": 3.0, "max_ms": 9.0},
    ]
    mem = [
        {"rss_mb": 100.0, "trims": 2, "trim_interval_s": 60.0},
        {"rss_mb": 50.5, "trims": 3, "trim_interval_s": 60.0},
    ]
    m = merge_summaries([{"event_loop_lag": lag[0], "memory": mem[0]}, {"event_loop_lag": lag[1], "memory": mem[1]}])
    assert m["event_loop_lag"] == {"samples": 15, "p50_ms": 2.0, "p99_ms": 8.0, "max_ms": 20.0}
    assert m["memory"] == {"rss_mb": 150.5, "trims": 5, "trim_interval_s": 60.0}


async def _wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.05)


@pytest.mark.integration  # worker processes under a real supervisor
async def test_killed_worker_restarts_alone_and_nothing_committed_is_lost(tmp_path: Path) -> None:
    """Two workers into one DuckDB target; worker 0 is SIGKILLed mid-run, is restarted (visible in
    the summary and /metrics), worker 1 keeps its first process; the views hold every written row."""
    symbols = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
    db = tmp_path / "ticks.duckdb"
    async with Simulator(SimConfig(venues=("spot",), symbols=symbols, rate=200.0, book_levels=20)) as sim:
        ep = sim.endpoint("spot")
        cfg = FeedConfig(
            venue="spot",
            symbols=symbols,
            sinks=(f"duckdb:{db}",),
            base_url=ep.ws_url,
            rest_url=ep.rest_url,
            metrics_port=0,
            duration_s=8.0,
        )
        sup = Supervisor(cfg, 2, restart_base_s=0.2)
        assert sorted(s for w in sup.workers for s in w.config.symbols) == sorted(symbols)
        run = asyncio.create_task(sup.run())
        w0, w1 = sup.workers
        await _wait_for(lambda: all(w.last and w.last.get("emitted") for w in sup.workers))
        first_pid_1 = w1.proc.pid if w1.proc else None
        assert w0.proc is not None
        os.kill(w0.proc.pid, signal.SIGKILL)
        await _wait_for(lambda: w0.restarts == 1 and w0.up and bool(w0.last and w0.last.get("emitted")))
        assert sup.metrics_url is not None
        async with aiohttp.ClientSession() as http, http.get(sup.metrics_url) as resp:
            text = await resp.text()
        assert 'tickpath_feed_worker_restarts_total{worker="0"} 1.0' in text
        assert 'worker="1"' in text and "tickpath_feed_events_total" in text
        merged = await run
    assert w1.restarts == 0 and w1.proc is not None and w1.proc.pid == first_pid_1
    assert merged["restarts"] == 1 and [w["restarts"] for w in merged["workers"]] == [1, 0]
    con = duckdb.connect(str(db), read_only=True)
    union = " UNION ALL ".join(f"SELECT session, symbol FROM {t}" for t in ("trades", "tickers", "l2"))
    by_session = dict(con.execute(f"SELECT session, count(*) FROM ({union}) GROUP BY session").fetchall())
    sessions = {r[0] for r in con.execute("SELECT session FROM feed_sessions").fetchall()}
    syms = {r[0] for r in con.execute(f"SELECT DISTINCT symbol FROM ({union})").fetchall()}
    con.close()
    killed, *later = w0.summaries()
    assert killed["session"] in sessions or killed["session"] not in by_session
    # what the killed run reported written (committed files) is there; a clean run's rows are exact
    assert by_session.get(killed["session"], 0) >= killed["sinks"]["duckdb"]["written"]
    for run_summary in (*later, *w1.summaries()):
        assert by_session[run_summary["session"]] == run_summary["sinks"]["duckdb"]["written"] > 0
    assert syms == set(symbols)  # the restarted worker resynced its symbols


@pytest.mark.integration  # worker processes under a real supervisor
async def test_dq_reads_the_views_of_a_workers_run(tmp_path: Path) -> None:
    """``tickpath dq --db PATH`` on a ``--workers 2`` run's DuckDB target: the views are the tables."""
    symbols = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    db = tmp_path / "ticks.duckdb"
    async with Simulator(SimConfig(venues=("spot",), symbols=symbols, rate=100.0, book_levels=20)) as sim:
        ep = sim.endpoint("spot")
        cfg = FeedConfig(
            venue="spot",
            symbols=symbols,
            sinks=(f"duckdb:{db}",),
            base_url=ep.ws_url,
            rest_url=ep.rest_url,
            duration_s=3.0,
        )
        merged = await Supervisor(cfg, 2).run()
    assert merged["restarts"] == 0 and merged["emitted"] > 0
    assert sorted(merged["symbols"]) == sorted(symbols)
    code = await asyncio.to_thread(main, ["dq", "--db", str(db), "--since", "1h", "--check", "sequence"])
    assert code == 0  # no gap across the workers' files
    every = await asyncio.to_thread(main, ["dq", "--db", str(db), "--since", "1h"])
    assert every in (0, 9)  # every check ran on the views (a short run may miss a freshness threshold)
