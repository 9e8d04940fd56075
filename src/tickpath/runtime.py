"""Running async work from the CLI: uvloop when present, and SIGINT/SIGTERM turned into
cancellation of the main task so every ``finally`` (flush sinks, destroy infrastructure, stop
child servers) runs before the process exits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from tickpath.errors import InterruptedRunError

T = TypeVar("T")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover - uvloop is a Linux dependency
        return asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T], *, handle_signals: bool = True) -> T:
    """Run ``coro`` to completion; a signal cancels it and raises :class:`InterruptedRunError`."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(coro)
    received: list[int] = []

    def _on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # not on the main thread (uvloop raises ValueError, asyncio RuntimeError): no handlers
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, _on_signal, sig)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if received:
            name = signal.Signals(received[0]).name
            raise InterruptedRunError(f"stopped by {name}; cleanup finished") from None
        raise
    finally:
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            _cancel_leftovers(loop)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


LEFTOVER_GRACE_S = 5.0


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending when the main task ends and let them unwind (as ``asyncio.run``
    does), e.g. a client library's subscription readers after a close that could not reach its server:
    closing the loop under them prints "Task was destroyed but it is pending" and their tracebacks."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for t in pending:
        t.cancel()
    loop.run_until_complete(asyncio.wait(pending, timeout=LEFTOVER_GRACE_S))
    for t in pending:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved, so a leftover's failure is not reported again at exit


@contextlib.contextmanager
def streaming_gc(gen0_threshold: int = 10_000) -> Iterator[None]:
    """Garbage-collector settings for long streaming commands (feed, ingest); the CLI opts in.

    Everything allocated at start-up (modules, configs, connections) is frozen out of the collector,
    and generation 0 runs every ``gen0_threshold`` allocations instead of 700: a stream allocates
    millions of short-lived, acyclic objects, and default settings spent a third of the feed's CPU
    re-scanning survivors. Settings are restored on exit.
    """
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for a short burst of acyclic, short-lived allocations (decoding a
    batch), so it does not scan them dozens of times; its previous state is restored."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
