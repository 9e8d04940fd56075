"""Worker-thread calls that a sink must see to their end, whatever cancels its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def to_thread_to_the_end(fn: Callable[..., T], *args: Any) -> tuple[asyncio.Future[T], bool]:
    """``fn`` in a worker thread, awaited to its end even if the caller is cancelled meanwhile, once
    or many times: a thread cannot be stopped, and what it did (a commit, a file) must be accounted
    before the sink's lock is released, or its rows would be written twice. Returns the finished
    future (the caller reads ``fn``'s result or error from it) and whether the caller was cancelled
    (it re-raises CancelledError after its accounting)."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    cancelled = False
    while not work.done():
        try:
            await asyncio.wait([work])  # wait() never cancels the work itself
        except asyncio.CancelledError:
            cancelled = True
    return work, cancelled


async def stop_timer(timer: asyncio.Task[None], lock: asyncio.Lock) -> BaseException | None:
    """Cancel a sink's flush timer between its writes (under the sink's ``lock``: a write it has
    under way finishes first) and wait for it to end. Returns what it had died of, if anything else
    than this cancel: the caller still flushes and closes, and reports that after."""
    async with lock:
        timer.cancel()
    await asyncio.wait([timer])
    return None if timer.cancelled() else timer.exception()
