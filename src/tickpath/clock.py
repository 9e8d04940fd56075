"""Injectable clocks.

Anything in tickpath that waits or reads the time takes a :class:`Clock`. Production code uses
:class:`SystemClock`; tests use :class:`ManualClock`, whose time only moves when told to, so latency
logic is testable to the nanosecond.

Two time bases are kept apart on purpose: ``monotonic_ns`` for intervals (never jumps) and
``wall_ns`` for comparing with exchange timestamps (Unix epoch, may be stepped by NTP).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """The time source every timing-sensitive component takes."""

    def monotonic_ns(self) -> int:
        """Nanoseconds on a clock that never goes backwards (for intervals)."""
        ...

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch (for comparison with exchange time)."""
        ...

    async def sleep_until_ns(self, deadline_monotonic_ns: int) -> None:
        """Sleep until the monotonic clock reaches ``deadline_monotonic_ns``."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return time.time_ns()

    async def sleep_until_ns(self, deadline_monotonic_ns: int) -> None:
        delay = (deadline_monotonic_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """A clock that moves only when :meth:`advance` is called (or a sleeper is released).

    ``sleep_until_ns`` with ``autojump=True`` jumps time forward to the deadline, like trio's
    autojump clock, so schedules run instantly and deterministically in tests.
    """

    def __init__(
        self, start_ns: int = 0, wall_offset_ns: int = 1_700_000_000_000_000_000, *, autojump: bool = True
    ) -> None:
        self._now = start_ns
        self._wall_offset = wall_offset_ns
        self.autojump = autojump

    def monotonic_ns(self) -> int:
        return self._now

    def wall_ns(self) -> int:
        return self._now + self._wall_offset

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError("a clock cannot move backwards")
        self._now += ns

    async def sleep_until_ns(self, deadline_monotonic_ns: int) -> None:
        if self.autojump:
            if deadline_monotonic_ns > self._now:
                self._now = deadline_monotonic_ns
            await asyncio.sleep(0)
            return
        while self._now < deadline_monotonic_ns:
            await asyncio.sleep(0)


DEFAULT_CLOCK: Clock = SystemClock()
