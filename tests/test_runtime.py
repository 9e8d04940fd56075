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


def test_tasks_left_pending_are_cancelled_and_unwound_before_the_loop_closes(caplog: pytest.LogCaptureFixture) -> None:
    """A background task still waiting when the main task ends (a library's reader after a close that
    could not reach its server) is cancelled while the loop runs and unwinds; before, it was destroyed
    with the loop ("Task was destroyed but it is pending!" and tracebacks on stderr)."""
    seen: list[str] = []

    async def reader() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("unwound")

    async def main() -> int:
        asyncio.get_running_loop().create_task(reader())
        await asyncio.sleep(0)
        return 7

    with caplog.at_level("ERROR", logger="asyncio"):
        assert run(main(), handle_signals=False) == 7
        gc.collect()
    assert seen == ["cancelled", "unwound"]
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()]
