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
    code = main(["feed", "--venue", "spot", "--symbols", "BTCUSDT", "--base-url", f"ws://127.0.0.1:{port}",
                 "--rest-url", f"http://127.0.0.1:{port}", "--duration", "1.5", "--no-status", "--json",
                 "--sink", f"duckdb:{tmp_path / 't.duckdb'}"])
    out, err = capsys.readouterr()
    assert code == 4
    assert '"connects": 0' in out and '"connect_failures": ' in out
    assert "never connected to ws://127.0.0.1:" in err and "nothing was received" in err
