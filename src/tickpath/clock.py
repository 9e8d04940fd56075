"""Injectable clocks.

Anything in tickpath that waits or reads the time takes a :class:`Clock`. Production code uses
:class:`SystemClock`; tests use :class:`ManualClock`, whose time only moves when told to, so latency
logic is testable to the nanosecond.

Two time bases are kept apart on purpose: ``monotonic_ns`` for intervals (never jumps) and
``wall_ns`` for comparing with exchange timestamps (Unix epoch, may be stepped by NTP).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


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

    ``sleep_until_ns`` with ``autojump=True`` jumps time to the sleeper's deadline at once: exact for
    one task stepping through a schedule, but with several tasks the first sleeper moves time for
    all of them. Where several tasks wait on each other, use :class:`VirtualClock`.
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


class VirtualClock:
    """Virtual time that moves only when every task is blocked, as trio's autojump clock does.

    It drives an event loop of its own (:meth:`new_event_loop`, or :func:`run_virtual`): the loop's
    ``time()`` is this clock, and when the loop would wait for its next timer with nothing ready to
    run and no I/O pending, time jumps to that timer instead. So a retry's backoff, a stale-stream
    timeout or a 24 h rollover runs in microseconds, and in exactly the order real time would give,
    because a jump happens only when no task can make progress without it.

    Real I/O still works (it is polled before every jump), but it is instantaneous in virtual time;
    use in-memory transports where the time a byte takes matters. Work in the loop's executor
    (``asyncio.to_thread``, ``run_in_executor``: a DuckDB flush, a DNS lookup) takes no virtual time
    either: while any is running, time holds and the loop waits for it for real, up to
    ``thread_hold_s`` of wall time (a thread that itself waits on virtual time would otherwise hang).
    Without that hold, time ran on while a sink's thread worked: a DuckDB close at the end of a run
    let the simulator's timers run ~600 virtual seconds, by however long the thread took.
    """

    def __init__(
        self, start_ns: int = 0, wall_offset_ns: int = 1_700_000_000_000_000_000, *, thread_hold_s: float = 30.0
    ) -> None:
        self._now = start_ns
        self._wall_offset = wall_offset_ns
        self.thread_hold_s = thread_hold_s
        self.jumps = 0  # how often time moved because every task was blocked

    def monotonic_ns(self) -> int:
        return self._now

    def wall_ns(self) -> int:
        return self._now + self._wall_offset

    async def sleep_until_ns(self, deadline_monotonic_ns: int) -> None:
        # A real timer on the virtual loop: the sleeper is woken in deadline order with the rest.
        delay_ns = deadline_monotonic_ns - self._now
        await asyncio.sleep(delay_ns / 1e9 if delay_ns > 0 else 0)

    def jump(self, seconds: float) -> None:
        """Move time forward (the loop calls this when everything waits for a timer)."""
        if seconds < 0:
            raise ValueError("a clock cannot move backwards")
        # Rounded, not ceiled: the timeout is a float difference of float deadlines, and rounding
        # lands on the deadline asked for (a timer a hair later gets the next, 1 ns, jump).
        self._now += max(1, round(seconds * 1e9))
        self.jumps += 1

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop whose time is this clock."""
        return _VirtualLoop(self)


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """A selector that turns "wait ``timeout`` for I/O" into a poll plus a jump of virtual time.

    asyncio asks for a positive timeout only when no callback is ready: every task is blocked, and
    the nearest timer is ``timeout`` away. ``None`` means no timer at all: then only real I/O (a
    thread's wake-up included) can make progress, so that wait is real.
    """

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock
        self.in_threads = 0  # executor jobs running: their completion wakes the loop for real

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        if timeout is None:
            return list(super().select(None))
        if self.in_threads:  # a thread's result is the next thing to happen, not the timer
            events = super().select(self._clock.thread_hold_s)
            if events:
                return events
            # Still running after the hold: let time move (the thread may be waiting on it).
        self._clock.jump(timeout)
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        self._virtual = clock
        self._jumping = _JumpingSelector(clock)
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._virtual.monotonic_ns() / 1e9

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:  # type: ignore[override]
        fut = super().run_in_executor(executor, func, *args)
        self._jumping.in_threads += 1
        fut.add_done_callback(self._executor_done)
        return fut

    def _executor_done(self, _fut: asyncio.Future[Any]) -> None:
        self._jumping.in_threads -= 1


def run_virtual(main: Callable[[], Awaitable[T]], clock: VirtualClock | None = None) -> T:
    """Run ``main()`` to completion on a loop driven by ``clock`` (a new :class:`VirtualClock` if None)."""
    loop = (clock or VirtualClock()).new_event_loop()
    try:
        return loop.run_until_complete(_as_coroutine(main))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _as_coroutine(main: Callable[[], Awaitable[T]]) -> T:
    return await main()


DEFAULT_CLOCK: Clock = SystemClock()
