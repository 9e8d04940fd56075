"""Bad input found by a user's tour of the CLI: each is one clear line and a documented exit code, and
an output file that cannot be written is refused before the work, not after it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tickpath.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--from", "nats://127.0.0.1:1?durable=bad.name"], "durable='bad.name'"),
        (["--from", "nats://127.0.0.1:1?stream=a b"], "stream='a b'"),
        (["--from", "nats://127.0.0.1:1?prefix=md.>"], "prefix='md.>'"),
        (["--from", "nats://127.0.0.1:1", "--idle-exit", "-1"], "--idle-exit"),
        (["--from", "nats://127.0.0.1:1", "--max-messages", "-4"], "--max-messages"),
    ],
)
def test_ingest_refuses_bad_names_and_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str
) -> None:
    """A JetStream name with a '.', a wildcard in the prefix, negative limits: exit 2 naming it, no traceback."""
    assert main(["ingest", *args, "--to", f"duckdb:{tmp_path / 'x.duckdb'}"]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "-3"])
def test_feed_refuses_a_duration_that_is_not_a_positive_finite_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--duration nan / inf / negative: exit 2 with the option named (nan and inf were tracebacks)."""
    assert main(["feed", "--venue", "futures", "--symbols", "BTCUSDT", f"--duration={value}"]) == 2
    assert "--duration" in capsys.readouterr().err


def test_probe_refuses_an_unwritable_output_before_measuring(capsys: pytest.CaptureFixture[str]) -> None:
    """-o under /proc: exit 2 before any probe runs (it used to measure, then lose the result)."""
    assert main(["probe", "--rest-url", "http://127.0.0.1:1", "-m", "rest", "-o", "/proc/x/probe.json"]) == 2
    assert "cannot write /proc/x/probe.json" in capsys.readouterr().err


@pytest.mark.integration  # runs `python -m tickpath.cli.main` as a process of its own
def test_a_closed_stdout_is_one_line_not_a_traceback() -> None:
    """`tickpath ... --help | head -1`-style: the reader goes away; no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickpath.cli.main", "sim", "--help"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "80"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it writes: every write hits a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "Traceback" not in err and "BrokenPipeError" not in err
