"""`tickpath sim`: a --help that teaches, clear one-line errors, --json endpoints for machines."""

from __future__ import annotations

import json
import socket

import pytest

from tests.virtual_time import virtual_time
from tickpath.cli.main import main
from tickpath.clock import VirtualClock


def test_help_teaches_zone_syntax_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """--help explains the zone syntax, replay, faults and shows runnable examples."""
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for needle in (
        "NAME:DELAYms",
        "a:5ms±0.5ms;b:1ms",
        "--replay",
        "--speed",
        "--gap-every",
        "--clock-offset-ms",
        "--json",
        "examples:",
    ):
        assert needle in out, needle


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--venue", "kraken"], "unknown venue 'kraken'"),
        (["--symbols", "btc-usd"], "unknown symbol"),
        (["--symbols", "FOOBAR"], "unknown symbol 'FOOBAR'"),
        (["--zones", "a=5ms"], "bad zone"),
        (["--replay", "/nonexistent/x.ws.txt"], "does not exist"),
        (["--gap-every", "0"], "must be positive"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad arguments give exit code 2 and one clear line on stderr, never a traceback."""
    assert main(["sim", *argv, "--duration", "0.1"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


def test_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    """A port already taken is a clear error naming the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["sim", "--venue", "spot", "--port", str(port), "--duration", "0.1"]) == 2
    assert f"port {port}" in capsys.readouterr().err


def test_json_prints_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one line with every zone x venue endpoint and the latency profile."""
    assert main(["sim", "--json", "--duration", "0.2", "--zones", "a:5ms;b:1ms±0.2ms", "--clock-offset-ms", "7"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["clock_offset_ms"] == 7
    pairs = {(e["venue"], e["zone"]) for e in doc["endpoints"]}
    assert pairs == {("spot", "a"), ("futures", "a"), ("spot", "b"), ("futures", "b")}
    b = next(e for e in doc["endpoints"] if e["zone"] == "b")
    assert b["latency"]["jitter_ms"] == 0.2 and b["ws_url"].startswith("ws://127.0.0.1:")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--clock-offset-ms", "nan"], "--clock-offset-ms must be a finite number, got nan"),
        (["--clock-offset-ms", "1e12"], "--clock-offset-ms must be at most 8.64e+07"),
        (["--rate", "inf"], "--rate must be a finite number, got inf"),
        (["--rate", "1e999"], "--rate must be a finite number, got inf"),
        (["--rate", "0"], "--rate must be positive, got"),
        (["--rate", "-5"], "--rate must be positive, got"),
        (["--rate", "1e7"], "--rate must be at most 1e+06"),
        (["--port", "70000"], "--port must be at most 65535"),
        (["--ping-interval", "0"], "--ping-interval must be positive, got"),
        (["--pong-timeout", "nan"], "--pong-timeout must be a finite number"),
        (["--max-lifetime", "-1"], "--max-lifetime must be positive, got"),
        (["--weight-budget", "0"], "--weight-budget must be at least 1"),
        (["--speed", "-1"], "--speed must be at least 0"),
        (["--speed", "nan"], "--speed must be a finite number"),
        (["--drop-every", "-2"], "--drop-every must be positive, got"),
        (["--snapshot-fail-every", "nan"], "--snapshot-fail-every must be a finite number"),
        (["--rate-limit-every", "inf"], "--rate-limit-every must be a finite number"),
        (["--stall-for", "0"], "--stall-for must be positive, got"),
        (["--rate-limit-for", "-1"], "--rate-limit-for must be positive, got"),
        (["--stall-every", "1", "--stall-for", "2"], "--stall-for (2 s) must be shorter than --stall-every (1 s)"),
        (["--rate-limit-every", "5"], "--rate-limit-for (5 s) must be shorter than --rate-limit-every (5 s)"),
        (["--snapshot-delay-ms", "-1"], "--snapshot-delay-ms must be at least 0"),
        (["--snapshot-delay-ms", "inf"], "--snapshot-delay-ms must be a finite number"),
        (["--zones", f"a:{'9' * 400}ms"], "latency delay_ms must be a finite number"),
    ],
)
def test_bad_numbers_exit_2_naming_the_option(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Non-finite or out-of-range numbers give exit 2 and one line naming the option, before anything starts."""
    assert main(["sim", *argv, "--duration", "0.1"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_bad_duration_exits_2(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--duration must be a positive finite number of seconds: -1, 0, nan, inf are exit 2, not a silent exit 0."""
    assert main(["sim", "--duration", value]) == 2
    err = capsys.readouterr().err
    assert "--duration must be" in err and err.count("\n") == 1


def test_snapshot_fail_schedule_runs_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """Valid fault flags (including --stall-for shorter than --stall-every) still start and stop cleanly."""
    assert (
        main(
            [
                "sim",
                "--json",
                "--venue",
                "spot",
                "--duration",
                "0.3",
                "--snapshot-fail-every",
                "0.05",
                "--stall-every",
                "0.1",
                "--stall-for",
                "0.05",
                "--rate",
                "50",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["endpoints"][0]["venue"] == "spot"


@virtual_time
async def test_a_crashed_market_task_ends_the_sim_with_an_error(
    monkeypatch: pytest.MonkeyPatch, virtual_clock: VirtualClock
) -> None:
    """When a background task dies the streams go silent: `tickpath sim` stops at once with an error
    naming the crash (exit 1), instead of serving nothing until its --duration ends."""
    import asyncio

    from tickpath.cli.sim import serve
    from tickpath.errors import TickpathError
    from tickpath.sim import SimConfig
    from tickpath.sim.faults import FaultPlan
    from tickpath.sim.hub import Hub

    async def boom(self: Hub) -> None:
        await asyncio.sleep(0.1)
        raise RuntimeError("market generator broke")

    monkeypatch.setattr(Hub, "run", boom)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TickpathError, match=r"background task crashed.*market generator broke") as info:
        await serve(SimConfig(venues=("spot",), symbols=("BTCUSDT",)), FaultPlan(), as_json=True, duration=30.0)
    assert info.value.exit_code == 1
    assert loop.time() - started == pytest.approx(0.1, abs=1e-6)  # at the crash, not after --duration
