"""The ``tickpath feed`` command: SIGTERM flushes every sink, bad arguments are clear errors."""

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


@pytest.mark.integration  # SIGTERM to a real `tickpath feed` process
async def test_sigterm_flushes_every_sink_and_reports(tmp_path: Path) -> None:
    """SIGTERM mid-run: exit 130 after cleanup, and DuckDB and Parquet hold exactly the accepted events."""
    db = tmp_path / "ticks.duckdb"
    pq_dir = tmp_path / "lake"
    async with Simulator(
        SimConfig(venues=("futures",), symbols=("BTCUSDT", "ETHUSDT"), rate=300.0, book_levels=60)
    ) as sim:
        ep = sim.endpoint("futures")
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.cli.main",
            "-v",
            "feed",
            "--venue",
            "futures",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--base-url",
            ep.ws_url,
            "--rest-url",
            ep.rest_url,
            "--sink",
            f"duckdb:{db}",
            "--sink",
            f"parquet:{pq_dir}",
            "--json",
            "--no-status",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stderr is not None and proc.stdout is not None
        synced = 0
        err_lines: list[str] = []
        async with asyncio.timeout(30):
            while synced < 2:
                line = (await proc.stderr.readline()).decode()
                assert line, f"feed exited early: {''.join(err_lines)}"
                err_lines.append(line)
                synced += "book_synced" in line
        await asyncio.sleep(0.7)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    assert proc.returncode == 130, err.decode()
    assert "SIGTERM" in err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    duck = summary["sinks"]["duckdb"]
    assert duck["accepted"] == duck["written"] == summary["emitted"] > 0
    assert summary["sinks"]["parquet"]["written"] == summary["emitted"]
    con = duckdb.connect(str(db), read_only=True)
    rows = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("trades", "tickers", "l2"))
    sessions = con.execute("SELECT count(*), max(ended_ns) FROM feed_sessions").fetchone()
    con.close()
    assert rows == summary["emitted"]
    assert sessions is not None and sessions[0] == 1 and sessions[1] > 0
    mem = duckdb.connect()
    pq_rows = mem.execute(f"SELECT count(*) FROM read_parquet('{pq_dir}/venue=*/**/*.parquet')").fetchone()
    mem.close()
    assert pq_rows == (summary["emitted"],)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["feed", "--venue", "futures", "--symbols", "BTC-USDT"], "invalid symbol"),
        (["feed", "--venue", "futures", "--symbols", "BTCUSDT", "--channels", "l3"], "unknown channel"),
        (["feed", "--venue", "futures", "--symbols", "BTCUSDT", "--depth", "0"], "--depth"),
        (["feed", "--venue", "futures", "--symbols", "BTCUSDT", "--sink", "kafka://x"], "unknown sink"),
        (["feed", "--venue", "futures", "--symbols", "BTCUSDT", "--snapshot-limit", "5000"], "snapshot limit"),
        (["feed", "--venue", "futures", "--symbols", "BTCUSDT", "--trim-memory", "-1"], "--trim-memory -1.0 must be"),
        (["feed", "--venue", "futures", "--symbols", "BTCUSDT", "--trim-memory", "inf"], "--trim-memory inf must be"),
    ],
)
def test_bad_arguments_are_clear_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad arguments exit 2 with one clear line naming the problem, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_teaches_sinks_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` lists the sink URLs and examples."""
    with pytest.raises(SystemExit):
        main(["feed", "--help"])
    out = capsys.readouterr().out
    assert "duckdb:PATH" in out and "parquet:DIR" in out and "examples:" in out
