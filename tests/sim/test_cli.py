"""`tickpath sim`: a --help that teaches, clear one-line errors, --json endpoints for machines."""

from __future__ import annotations

import json
import socket

import pytest

from tickpath.cli.main import main


def test_help_teaches_zone_syntax_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """--help explains the zone syntax, replay, faults and shows runnable examples."""
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for needle in ("NAME:DELAYms", "a:5ms±0.5ms;b:1ms", "--replay", "--speed", "--gap-every", "--clock-offset-ms",
                   "--json", "examples:"):
        assert needle in out, needle


@pytest.mark.parametrize(("argv", "needle"), [
    (["--venue", "kraken"], "unknown venue 'kraken'"),
    (["--symbols", "btc-usd"], "unknown symbol"),
    (["--symbols", "FOOBAR"], "unknown symbol 'FOOBAR'"),
    (["--zones", "a=5ms"], "bad zone"),
    (["--replay", "/nonexistent/x.ws.txt"], "does not exist"),
    (["--gap-every", "0"], "must be positive"),
])
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
