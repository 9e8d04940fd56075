"""Run an ``async def`` test on a :class:`tickpath.clock.VirtualClock` loop: its sleeps, timeouts and
the simulator's and feed's timers take no wall time, and what they measure is exact.

    @virtual_time
    async def test_x(virtual_clock: VirtualClock, tmp_path: Path) -> None: ...

The test asks for the ``virtual_clock`` fixture (tests/conftest.py) and hands it to what it builds
(``Simulator(cfg, clock=virtual_clock)``, ``Feed(cfg, clock=virtual_clock)``); anything reading
``loop.time()`` runs on it by itself. Async fixtures run on pytest-asyncio's own loop, so a test in
virtual time builds its servers in its body.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from tickpath.clock import VirtualClock, run_virtual


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """``test`` run to completion by :func:`run_virtual` on its ``virtual_clock`` argument."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        clock = kwargs.get("virtual_clock")
        if not isinstance(clock, VirtualClock):
            raise TypeError(f"{test.__name__} must take the virtual_clock fixture")
        run_virtual(lambda: test(*args, **kwargs), clock)

    return run
