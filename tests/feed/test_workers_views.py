"""``feed --workers N --sink duckdb:PATH``: ``PATH`` is a DuckDB file of views over ``PATH.parts/``,
written as the workers start, so it answers while the feed runs and after its supervisor is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import duckdb
import pytest

from tickpath.errors import ConfigError
from tickpath.feed.workers import parts_dir, write_views
from tickpath.sim import SimConfig, Simulator
from tickpath.tables import SCHEMAS

EVENT_TABLES = ("trades", "tickers", "l2")


def test_views_answer_before_any_worker_wrote_a_row(tmp_path: Path) -> None:
    db = str(tmp_path / "ticks.duckdb")
    assert write_views(db) == list(SCHEMAS)
    con = duckdb.connect(db, read_only=True)
    for table, schema in SCHEMAS.items():  # every table, with its columns, and no rows
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert set(schema.names) <= set(cols), table
    con.close()
    assert write_views(db) == list(SCHEMAS)  # a restart keeps the same file
    assert not [p for p in parts_dir(db).rglob("*.parquet") if not p.name.startswith("_")]


def test_views_refuse_a_single_process_store(tmp_path: Path) -> None:
    db = str(tmp_path / "ticks.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE TABLE trades (symbol VARCHAR)")
    con.execute("INSERT INTO trades VALUES ('BTCUSDT')")
    con.close()
    with pytest.raises(ConfigError, match="holds tables with rows"):
        write_views(db)
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM trades").fetchone() == (1,)  # untouched
    con.close()


def _counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in EVENT_TABLES}  # type: ignore[index]
        out["sessions"] = int(con.execute("SELECT count(*) FROM feed_sessions").fetchone()[0])  # type: ignore[index]
        return out
    finally:
        con.close()


def _ready(db: Path) -> dict[str, int]:
    """The counts, or none while the supervisor still writes the views file (it holds its lock)."""
    try:
        return _counts(db) if db.exists() else {}
    except duckdb.IOException:
        return {}


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(x) for x in (task / "children").read_text().split()]
    return out


async def _until(cond, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.1)


@pytest.mark.integration  # a real `tickpath feed --workers 2` process, SIGKILLed
async def test_views_answer_while_running_and_after_the_supervisor_is_sigkilled(tmp_path: Path) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    db = tmp_path / "ticks.duckdb"
    async with Simulator(SimConfig(venues=("spot",), symbols=symbols, rate=100.0, book_levels=20)) as sim:
        ep = sim.endpoint("spot")
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tickpath.cli.main", "feed", "--venue", "spot", "--symbols", ",".join(symbols)),
            *("--workers", "2", "--sink", f"duckdb:{db}", "--base-url", ep.ws_url, "--rest-url", ep.rest_url),
            *("--duration", "120", "--no-status"),
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await _until(lambda: all(_ready(db).get(t) for t in EVENT_TABLES))
            running = _counts(db)  # read while the feed writes: the views see the files written so far
            await _until(lambda: len(_children(proc.pid)) == 2)
            workers = _children(proc.pid)
            await _until(lambda: _counts(db)["trades"] > running["trades"])  # new files, same views
        finally:
            proc.kill()
            await proc.wait()
        # the workers notice their supervisor is gone, flush and stop by themselves
        await _until(lambda: not any(Path(f"/proc/{w}").exists() for w in workers))
    after = _counts(db)
    assert all(after[t] >= running[t] for t in EVENT_TABLES), (running, after)
    assert after["sessions"] == 2
    con = duckdb.connect(str(db), read_only=True)
    union = " UNION ALL ".join(f"SELECT session FROM {t}" for t in EVENT_TABLES)
    orphans = con.execute(f"SELECT count(*) FROM ({union}) WHERE session NOT IN (SELECT session FROM feed_sessions)")
    assert orphans.fetchone() == (0,)  # every row's session is known
    ended = con.execute("SELECT count(*) FROM feed_sessions WHERE ended_ns IS NOT NULL").fetchone()
    con.close()
    assert ended == (2,)  # each orphaned worker flushed and closed its session
    assert os.path.getsize(db) > 0 and proc.returncode == -signal.SIGKILL
