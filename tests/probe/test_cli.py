"""`tickpath probe` from the command line: outputs, bad input, partial results on failure."""

from __future__ import annotations

import asyncio
import csv
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.probe.conftest import LocalVenue, make_app
from tickpath.cli.main import main as cli_main
from tickpath.stats import LatencyRecorder


@pytest.fixture
def threaded_venue() -> Iterator[LocalVenue]:
    """The local venue on its own loop in a thread (the CLI runs its own event loop)."""
    state = LocalVenue(0, "", "")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(make_app(state))

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        state.rest_url, state.ws_url = f"http://127.0.0.1:{state.port}", f"ws://127.0.0.1:{state.port}"
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _args(v: LocalVenue, *extra: str) -> list[str]:
    return [
        "probe",
        "--rest-url",
        v.rest_url,
        "--ws-url",
        v.ws_url,
        "--samples",
        "8",
        "--warmup",
        "1",
        "--rate",
        "40",
        "--offset-samples",
        "5",
        "--stream-seconds",
        "0.3",
        "--no-imds",
        *extra,
    ]


def test_json_csv_and_hgrm_outputs(
    threaded_venue: LocalVenue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the schema'd result; -o, --csv and --hgrm-dir write files that read back."""
    out = tmp_path / "r.json"
    code = cli_main(
        _args(
            threaded_venue,
            "-m",
            "tcp,rest",
            "-m",
            "ws",
            "--json",
            "-q",
            "-o",
            str(out),
            "--csv",
            str(tmp_path / "r.csv"),
            "--hgrm-dir",
            str(tmp_path / "h"),
        )
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["schema"] == "tickpath.probe/1" and printed == json.loads(out.read_text())
    assert set(printed["methods"]) >= {"tcp", "rest", "ws"} and printed["config"]["samples"] == 8
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert {r["method"] for r in rows} == {"tcp", "rest", "ws"}
    assert all(r["unit"] == "us" for r in rows)
    assert (tmp_path / "h/ws.hgrm").read_text().startswith("       Value")
    decoded = LatencyRecorder.decode(printed["methods"]["ws"]["histogram"])
    assert decoded.count == 8


def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A zero rate or an unknown method is a ConfigError: exit 2, clear message, no traceback."""
    assert cli_main(["probe", "--rate", "0", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--rate must be positive" in err and "Traceback" not in err
    assert cli_main(["probe", "-m", "tcp,bogus", "-q"]) == 2
    assert "unknown probe method(s) bogus" in capsys.readouterr().err
    assert cli_main(["probe", "--rest-url", "ftp://x", "-q"]) == 2


def test_failure_still_writes_partial_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A refused port exits non-zero, and the JSON file holds what was measured and the errors."""
    out = tmp_path / "r.json"
    code = cli_main(
        [
            "probe",
            "--rest-url",
            "http://127.0.0.1:1",
            "--ws-url",
            "ws://127.0.0.1:1",
            "-m",
            "dns,tcp,ws",
            "--samples",
            "3",
            "--warmup",
            "0",
            "--rate",
            "100",
            "--no-imds",
            "-q",
            "-o",
            str(out),
        ]
    )
    data = json.loads(out.read_text())
    assert code == 4
    assert data["methods"]["dns"]["summary"]["count"] >= 1
    assert data["methods"]["tcp"]["summary"]["losses"] == 3
    assert {e["method"] for e in data["errors"]} >= {"tcp", "ws"}


def test_help_teaches_methods_and_sampling(capsys: pytest.CaptureFixture[str]) -> None:
    """--help explains every method and the open-loop schedule."""
    with pytest.raises(SystemExit):
        cli_main(["probe", "--help"])
    text = capsys.readouterr().out
    for word in ("dns", "tcp", "tls", "rest", "ws", "stream", "path", "open loop", "--json"):
        assert word in text
