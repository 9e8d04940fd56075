"""A feed run that never reaches the venue ends with a clear error and exit 4, not a silent success."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tickpath.cli.main import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_venue_is_exit_4_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Connection refused for the whole run: the summary is still printed, then one error line, exit 4."""
    port = _closed_port()
    code = main(
        [
            "feed",
            "--venue",
            "spot",
            "--symbols",
            "BTCUSDT",
            "--base-url",
            f"ws://127.0.0.1:{port}",
            "--rest-url",
            f"http://127.0.0.1:{port}",
            "--duration",
            "0.4",
            "--no-status",
            "--json",
            "--sink",
            f"duckdb:{tmp_path / 't.duckdb'}",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 4
    assert '"connects": 0' in out and '"connect_failures": ' in out
    assert "never connected to ws://127.0.0.1:" in err and "nothing was received" in err


@pytest.mark.integration  # runs `python -m tickpath.cli.main` as a process of its own
async def test_a_book_that_never_syncs_is_exit_6_and_said(tmp_path: Path) -> None:
    """Streams arrive but every snapshot request fails: the summary names the symbol whose book never
    synced and the run exits 6 (it used to exit 0 with no l2 at all and a summary that said nothing)."""
    import asyncio
    import os
    import sys

    from tickpath.sim import SimConfig, Simulator

    async with Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=200.0)) as sim:
        ep = sim.endpoint("futures")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.cli.main",
            "feed",
            "--venue",
            "futures",
            "--symbols",
            "BTCUSDT",
            "--channels",
            "l2,trades",
            "--base-url",
            ep.ws_url,
            "--rest-url",
            f"http://127.0.0.1:{_closed_port()}",
            "--duration",
            "2",
            "--no-status",
            "--sink",
            f"duckdb:{tmp_path / 't.duckdb'}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        async with asyncio.timeout(60):
            _out, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 6, text
    assert "order book never synced" in text and "BTCUSDT" in text and "Traceback" not in text


@pytest.mark.integration  # runs `python -m tickpath.cli.main` as a process of its own
async def test_a_closed_pipe_costs_the_jsonl_sink_only_and_is_exit_7(tmp_path: Path) -> None:
    """`feed --sink jsonl:- --sink duckdb:X | head -1`: the JSON-lines sink says once that its reader went
    away and counts the rest as dropped; DuckDB still gets every event; the exit is 7, not a flood of errors."""
    import asyncio
    import json
    import os
    import sys

    import duckdb

    from tickpath.sim import SimConfig, Simulator

    db = tmp_path / "t.duckdb"
    async with Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=300.0)) as sim:
        ep = sim.endpoint("futures")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.cli.main",
            "feed",
            "--venue",
            "futures",
            "--symbols",
            "BTCUSDT",
            "--base-url",
            ep.ws_url,
            "--rest-url",
            ep.rest_url,
            "--duration",
            "3",
            "--no-status",
            "--sink",
            "jsonl:-",
            "--sink",
            f"duckdb:{db}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stdout is not None and proc.stderr is not None
        async with asyncio.timeout(30):
            first = await proc.stdout.readline()
        assert json.loads(first)["type"]
        proc._transport.get_pipe_transport(1).close()  # type: ignore[attr-defined]  # what `head -1` does
        async with asyncio.timeout(60):
            err = (await proc.stderr.read()).decode()
            await proc.wait()
    assert proc.returncode == 7, err
    assert err.count("jsonl_reader_gone") == 1 and "sink_write_failed" not in err and "Traceback" not in err
    con = duckdb.connect(str(db), read_only=True)
    stored = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("l2", "trades", "tickers"))  # type: ignore[index]
    assert stored > 0 and "dropped by a sink" in err
