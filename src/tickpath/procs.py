"""Running external programs (traceroute, mtr, chronyc, ip, terraform, ssh) from async code.

One rule everywhere: a child never outlives the wait for it. On a timeout or a cancellation the
child is killed and reaped before the exception propagates, so Ctrl-C leaves no stray process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tickpath.errors import ToolMissingError


@dataclass(frozen=True)
class Completed:
    code: int
    out: str
    err: str


async def run_command(argv: Sequence[str], *, timeout: float, cwd: Path | None = None) -> Completed:
    """Run ``argv`` to completion with ``timeout`` seconds; a missing program is ToolMissingError."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise ToolMissingError(f"{argv[0]} not found: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return Completed(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
