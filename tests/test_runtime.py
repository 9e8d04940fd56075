"""The CLI runtime: signals become cancellation with cleanup; streaming GC settings are restored."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

import pytest

from tickpath.errors import InterruptedRunError
from tickpath.runtime import run, streaming_gc


def test_streaming_gc_freezes_and_restores() -> None:
    """Inside, start-up objects are frozen and gen-0 collections are rarer; outside, all is as before."""
    before = gc.get_threshold()
    with streaming_gc(12_345):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_sigterm_cancels_and_cleanup_runs() -> None:
    """SIGTERM cancels the main task, its finally block runs, and the run ends as InterruptedRunError."""
    cleaned: list[bool] = []

    async def main() -> None:
        try:
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    with pytest.raises(InterruptedRunError, match="SIGTERM"):
        run(main())
    assert cleaned == [True]
