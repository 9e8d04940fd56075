"""Start-up progress: how many books have synced, how fast, and when all of them will have.

With hundreds of symbols the snapshots are what a start waits for (each is paced by the venue's
request weight), so "all books synced" can be minutes away; the feed says how far it is: a bar and
an ETA in the status line on a terminal, a ``sync_progress`` log line every few seconds otherwise,
one ``all_books_synced`` line when the last one syncs, and ``startup`` in the ``--json`` summary.
The ETA is the remaining books over the rate of the last ``window_s`` seconds, or over the average
since start while that is zero (snapshots paced by the minute come in bursts with pauses).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.logs import log_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressReport:
    synced: int
    total: int
    elapsed_s: float
    eta_s: float | None  # None until a rate is known, 0 when done
    all_synced_s: float | None  # seconds from start to the first time every book had synced

    @property
    def done(self) -> bool:
        return self.total > 0 and self.synced >= self.total

    def bar(self, width: int = 20) -> str:
        """``[########------------] 160/400 books synced, ETA 42 s``."""
        frac = self.synced / self.total if self.total else 1.0
        fill = min(width, int(frac * width))
        text = f"[{'#' * fill}{'-' * (width - fill)}] {self.synced}/{self.total} books synced"
        if self.done:
            return text + (f" in {self.all_synced_s:.1f} s" if self.all_synced_s is not None else "")
        return text + (f", ETA {self.eta_s:.0f} s" if self.eta_s is not None else ", ETA ?")

    def as_dict(self) -> dict[str, object]:
        return {
            "symbols": self.total,
            "synced": self.synced,
            "elapsed_s": round(self.elapsed_s, 3),
            "all_synced_s": round(self.all_synced_s, 3) if self.all_synced_s is not None else None,
        }


class SyncProgress:
    """Turns (synced, total) readings over time into a :class:`ProgressReport` (injectable clock)."""

    def __init__(self, *, clock: Clock = DEFAULT_CLOCK, window_s: float = 10.0) -> None:
        self.clock = clock
        self.start_ns = clock.monotonic_ns()
        self.window_ns = int(window_s * 1e9)
        self.all_synced_ns: int | None = None
        self._samples: deque[tuple[int, int]] = deque()  # (monotonic ns, synced)
        self.last = ProgressReport(0, 0, 0.0, None, None)

    def update(self, synced: int, total: int) -> ProgressReport:
        now = self.clock.monotonic_ns()
        self._samples.append((now, synced))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_ns:
            self._samples.popleft()
        if self.all_synced_ns is None and total > 0 and synced >= total:
            self.all_synced_ns = now
        t0, s0 = self._samples[0]
        rate = (synced - s0) / ((now - t0) / 1e9) if now > t0 and synced > s0 else 0.0
        if rate <= 0 and synced and now > self.start_ns:  # waiting for the next weight minute: the average
            rate = synced / ((now - self.start_ns) / 1e9)
        left = max(0, total - synced)
        eta = 0.0 if left == 0 else (left / rate if rate > 0 else None)
        done_s = (self.all_synced_ns - self.start_ns) / 1e9 if self.all_synced_ns is not None else None
        self.last = ProgressReport(synced, total, (now - self.start_ns) / 1e9, eta, done_s)
        return self.last

    def line(self) -> str:
        """The status line's part (empty once every book has synced)."""
        return "" if self.last.done else self.last.bar() + "  "


async def run_progress(
    progress: SyncProgress,
    read: Callable[[], tuple[int, int]],
    *,
    log_every_s: float = 5.0,
    period_s: float = 1.0,
) -> None:
    """Update ``progress`` from ``read() -> (synced, total)`` every ``period_s``; log a
    ``sync_progress`` line every ``log_every_s`` while books are missing and ``all_books_synced``
    each time the last one syncs (again after new listings). Runs until cancelled."""
    clock = progress.clock
    next_log = clock.monotonic_ns()
    was_done = False
    while True:
        await clock.sleep_until_ns(clock.monotonic_ns() + int(period_s * 1e9))
        rep = progress.update(*read())
        if rep.done and not was_done:
            log_event(log, logging.INFO, "all_books_synced", books=rep.total, seconds=round(rep.elapsed_s, 3))
        elif not rep.done and clock.monotonic_ns() >= next_log:
            next_log = clock.monotonic_ns() + int(log_every_s * 1e9)
            eta = round(rep.eta_s, 1) if rep.eta_s is not None else None
            log_event(log, logging.INFO, "sync_progress", synced=rep.synced, books=rep.total, eta_s=eta)
        was_done = rep.done
