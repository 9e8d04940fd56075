"""External programs: output and exit code come back; a timeout or cancel never leaves the child running."""

from __future__ import annotations

import asyncio
import os

import pytest

from tickpath.errors import ToolMissingError
from tickpath.procs import run_command


async def test_output_and_exit_code() -> None:
    """stdout, stderr and a non-zero exit code are returned, not raised."""
    done = await run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=5)
    assert (done.code, done.out.strip(), done.err.strip()) == (3, "out", "err")


async def test_timeout_kills_the_child() -> None:
    """On timeout the child is killed and reaped before TimeoutError propagates."""
    task = asyncio.create_task(run_command(["sh", "-c", "echo $$; exec sleep 30"], timeout=0.5))
    with pytest.raises(TimeoutError):
        await task
    # the shell exec'd sleep under the same pid; it must be gone (reaped, so not even a zombie)
    procs = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    assert all("sleep 30" not in _cmdline(p) for p in procs)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def test_missing_program_is_tool_missing() -> None:
    """A program that is not installed is a ToolMissingError naming it."""
    with pytest.raises(ToolMissingError, match="no-such-tool-here"):
        await run_command(["no-such-tool-here"], timeout=1)
