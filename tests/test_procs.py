"""External programs: output and exit code come back; a timeout or cancel never leaves the child running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tickpath.errors import ToolMissingError
from tickpath.procs import run_command


async def test_output_and_exit_code() -> None:
    """stdout, stderr and a non-zero exit code are returned, not raised."""
    done = await run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=5)
    assert (done.code, done.out.strip(), done.err.strip()) == (3, "out", "err")


async def test_timeout_kills_the_child(tmp_path: Path) -> None:
    """On timeout the child is killed and reaped before TimeoutError propagates."""
    pidfile = tmp_path / "pid"
    with pytest.raises(TimeoutError):
        await run_command(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], timeout=0.5)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # gone, and reaped: not even a zombie is left
        os.kill(pid, 0)


async def test_missing_program_is_tool_missing() -> None:
    """A program that is not installed is a ToolMissingError naming it."""
    with pytest.raises(ToolMissingError, match="no-such-tool-here"):
        await run_command(["no-such-tool-here"], timeout=1)
