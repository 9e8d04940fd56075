"""Progress for the demo: one rich bar per step on a terminal, plain step lines otherwise.

Steps whose amount of work is known (messages sent, seconds of feed) report it; the others advance
with elapsed time against their expected duration and never reach 100 % before they finish, so a
slow step shows a bar that has stalled near the end rather than a bar that lies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

TIME_FILL = 0.97  # a time-driven bar stops here until its step really ends


class Step:
    """Handle of one running step: change its text, or report real progress."""

    def __init__(self, owner: DemoProgress, name: str, task: TaskID | None, expected_s: float) -> None:
        self._owner = owner
        self.name = name
        self._task = task
        self.expected_s = max(expected_s, 0.1)
        self.started = time.monotonic()
        self.counted = False  # set once real progress arrives; stops the time-driven advance

    def note(self, text: str) -> None:
        """Replace the step's description (what it is doing now)."""
        if self._task is not None and self._owner.bars is not None:
            self._owner.bars.update(self._task, description=f"{self.name}: {text}")

    def advance_to(self, done: float, total: float) -> None:
        """Real progress: ``done`` of ``total`` units."""
        self.counted = True
        if self._task is not None and self._owner.bars is not None and total > 0:
            self._owner.bars.update(self._task, completed=min(done, total) * 100.0 / total)

    def _tick(self) -> None:
        if self.counted or self._task is None or self._owner.bars is None:
            return
        frac = min((time.monotonic() - self.started) / self.expected_s, TIME_FILL)
        self._owner.bars.update(self._task, completed=100.0 * frac)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class DemoProgress:
    """Context manager owning the live display; ``step()`` opens one bar per step."""

    def __init__(self, console: Console | None = None, *, live: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.bars: Progress | None = None

    def __enter__(self) -> DemoProgress:
        if self.live:
            self.bars = Progress(
                TextColumn("{task.description:<58}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.bars.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None

    def say(self, text: str) -> None:
        """A line above the bars (or on its own without them)."""
        self.console.print(text, highlight=False)

    @contextlib.asynccontextmanager
    async def step(self, name: str, text: str, expected_s: float) -> AsyncIterator[Step]:
        task = self.bars.add_task(f"{name}: {text}", total=100.0) if self.bars is not None else None
        st = Step(self, name, task, expected_s)
        if self.bars is None:
            self.say(f"[dim]demo[/] {name}: {text}")

        async def ticker() -> None:
            while True:
                st._tick()
                await asyncio.sleep(0.25)

        tick = asyncio.create_task(ticker(), name=f"progress-{name}")
        ok = False
        try:
            yield st
            ok = True
        finally:
            tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick
            if self.bars is not None and task is not None:
                if ok:
                    self.bars.update(task, completed=100.0)
                else:
                    current = next(t for t in self.bars.tasks if t.id == task)
                    self.bars.update(task, description=f"{current.description} (stopped)")
            elif not ok:
                self.say(f"[dim]demo[/] {name}: stopped after {st.elapsed_s:.1f} s")
            else:
                self.say(f"[dim]demo[/] {name}: done in {st.elapsed_s:.1f} s")
