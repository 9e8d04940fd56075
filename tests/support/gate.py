"""Hold a method that runs in a worker thread until the test lets it go.

A thread cannot be cancelled, so tests of what a sink does when a write is cancelled or closed
*while its thread runs* stop the write there: the sink's own call waits on the gate.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class ThreadGate:
    """Replaces ``obj.<name>`` with a wrapper that signals :meth:`started` and waits for :meth:`release`."""

    def __init__(self, obj: Any, name: str, timeout_s: float = 10.0) -> None:
        self._started, self._release, self.timeout_s = threading.Event(), threading.Event(), timeout_s
        real = getattr(obj, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            self._started.set()
            self._release.wait(timeout_s)
            return real(*args, **kwargs)

        setattr(obj, name, held)

    async def started(self) -> None:
        """Until the held call is running in its thread."""
        await asyncio.wait_for(asyncio.to_thread(self._started.wait, self.timeout_s), self.timeout_s)

    def release(self) -> None:
        self._release.set()
