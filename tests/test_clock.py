"""The virtual clock: time moves only when every task is blocked, in the order real time would give."""

from __future__ import annotations

import asyncio
import time

import pytest

from tickpath.clock import VirtualClock, run_virtual


def test_time_jumps_only_when_all_tasks_wait() -> None:
    clock = VirtualClock()
    order: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        order.append((name, clock.monotonic_ns()))

    async def busy() -> None:
        # Ready work keeps time still: 1,000 yields never let a 1 ms timer fire early.
        for _ in range(1000):
            await asyncio.sleep(0)
        order.append(("busy", clock.monotonic_ns()))

    async def main() -> None:
        await asyncio.gather(sleeper("late", 3600.0), sleeper("soon", 0.001), busy())

    started = time.monotonic()
    run_virtual(main, clock)
    assert order == [("busy", 0), ("soon", 1_000_000), ("late", 3_600_000_000_000)]
    assert time.monotonic() - started < 5.0  # an hour of virtual time, not of wall time
    assert clock.jumps == 2


def test_sleep_until_ns_wakes_at_the_deadline_exactly() -> None:
    clock = VirtualClock(start_ns=5)

    async def main() -> list[int]:
        seen = []
        for deadline in (10, 1_000_000_007, 1_000_000_007, 2_500_000_000):
            await clock.sleep_until_ns(deadline)
            seen.append(clock.monotonic_ns())
        return seen

    assert run_virtual(main, clock) == [10, 1_000_000_007, 1_000_000_007, 2_500_000_000]
    assert clock.wall_ns() - clock.monotonic_ns() == 1_700_000_000_000_000_000


def test_wait_for_timeout_and_backoff_are_exact() -> None:
    clock = VirtualClock()

    async def never() -> None:
        await asyncio.Event().wait()

    async def main() -> list[int]:
        stamps = []
        for attempt in range(4):  # an exponential backoff: 0.1, 0.2, 0.4, 0.8 s
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(never(), timeout=0.1 * 2**attempt)
            stamps.append(clock.monotonic_ns())
        return stamps

    assert run_virtual(main, clock) == [100_000_000, 300_000_000, 700_000_000, 1_500_000_000]


def test_real_io_still_flows_and_threads_wake_the_loop() -> None:
    clock = VirtualClock()

    async def main() -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection(*await _echo_server())
        writer.write(b"ping\n")
        await writer.drain()
        line = await reader.readline()
        writer.close()
        await asyncio.to_thread(time.sleep, 0.05)  # a thread's result arrives through the loop's wake-up
        return line, clock.monotonic_ns()

    line, now = run_virtual(main, clock)
    assert line == b"ping\n"
    assert now == 0  # nothing waited on a timer, so no virtual time passed


async def _echo_server() -> tuple[str, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


def test_negative_jump_is_refused() -> None:
    with pytest.raises(ValueError, match="backwards"):
        VirtualClock().jump(-1.0)


def test_executor_work_takes_no_virtual_time_while_timers_wait() -> None:
    """A thread's job (a sink's flush) holds time: a timer due in 1 ms does not fire while a 50 ms job
    runs, and the job's result comes back at virtual time 0."""
    clock = VirtualClock()
    fired: list[int] = []

    async def timer() -> None:
        while True:
            await asyncio.sleep(0.001)
            fired.append(clock.monotonic_ns())

    async def main() -> tuple[int, int]:
        ticker = asyncio.create_task(timer())
        await asyncio.sleep(0)
        await asyncio.to_thread(time.sleep, 0.05)
        done_at, ticks = clock.monotonic_ns(), len(fired)
        ticker.cancel()
        return done_at, ticks

    assert run_virtual(main, clock) == (0, 0)
