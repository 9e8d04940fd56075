"""``tickpath dq`` on the store of a feed killed with SIGKILL (issue 18): the session has no close
record; dq says it ended without one and judges freshness up to its last row, not up to the moment
dq runs (which used to read as a session silence and an L2 stall running to now)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import duckdb
import pytest

from tickpath.cli.main import main
from tickpath.sim import SimConfig, Simulator

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration  # a real `tickpath feed` process, killed with SIGKILL


async def _feed_then_kill(db: Path, tmp_path: Path) -> None:
    """Run ``tickpath feed`` from the simulator into ``db`` until both books are synced and a few
    seconds of rows are in, then SIGKILL it, and let the market run on without it."""
    cfg = SimConfig(venues=("futures",), symbols=("BTCUSDT", "ETHUSDT"), rate=200.0, book_levels=60)
    async with Simulator(cfg) as sim:
        ep = sim.endpoint("futures")
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tickpath.cli.main", "-v", "feed", "--venue", "futures"),
            *("--symbols", "BTCUSDT,ETHUSDT", "--base-url", ep.ws_url, "--rest-url", ep.rest_url),
            *("--sink", f"duckdb:{db}", "--no-status"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            cwd=tmp_path,
        )
        assert proc.stderr is not None
        try:
            synced = 0
            async with asyncio.timeout(30):
                while synced < 2:
                    line = (await proc.stderr.readline()).decode()
                    assert line, "feed exited early"
                    synced += "book_synced" in line
            await asyncio.sleep(3.0)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        await asyncio.sleep(4.0)  # the market goes on; "now" moves past the feed's last row


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("killed")
    db = tmp / "ticks.duckdb"
    asyncio.run(_feed_then_kill(db, tmp))
    return db


def _store_facts(db: Path) -> tuple[int, int | None, int]:
    """(rows, ended_ns of the session, newest receipt) as the store holds them after the kill."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("trades", "tickers", "l2"))  # type: ignore[index]
        ended = con.execute("SELECT max(ended_ns) FROM feed_sessions").fetchone()[0]  # type: ignore[index]
        newest = con.execute(
            "SELECT max(t) FROM (SELECT max(receipt_ns) AS t FROM trades UNION ALL "
            "SELECT max(receipt_ns) FROM tickers UNION ALL SELECT max(receipt_ns) FROM l2)"
        ).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    return rows, ended, newest


def test_dq_on_a_killed_feed_says_so_and_judges_up_to_its_last_row(
    killed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The killed feed's rows are there with no close record; dq passes with a note naming the session,
    at its last row, and no silence is measured past that row, though dq runs seconds later."""
    rows, ended, newest = _store_facts(killed)
    assert rows > 100 and ended is None
    # a 2 s session-silence limit: measured up to now, the 4 s since the kill would fail it
    argv = ["dq", "--db", str(killed), "--since", "10m", "--max-session-silence", "2", "--json"]
    assert main(argv) == 0, capsys.readouterr().out[-2000:]
    report = json.loads(capsys.readouterr().out)
    fresh = next(c for c in report["checks"] if c["name"] == "freshness")
    (note,) = fresh["notes"]
    assert note["issue"] == "unclosed_session" and note["venue"] == "futures" and note["at_ns"] == newest
    assert "ended without its close record" in note["detail"]
    assert max(m["to_ns"] for m in fresh["metrics"] if m["kind"] in ("session", "lag")) <= newest + 10**9
    assert report["window"]["until_ns"] > newest + 3 * 10**9  # dq ran well after the last row


def test_dq_text_report_names_the_unclosed_session(killed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The terminal report says it too, beside a pass."""
    assert main(["dq", "--db", str(killed), "--since", "10m", "--check", "freshness"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "ended without its close record" in out
