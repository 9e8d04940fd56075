"""The live status line for humans: one line on stderr, refreshed every second.

Shows rates and the counters that matter when something goes wrong (resyncs, gaps, reconnects,
malformed frames, queue depth, back-pressure). Only drawn when stderr is a terminal (or when asked),
so logs and ``--json`` output stay clean. It reads the feed's snapshots only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from tickpath.feed.snapshot import FeedSnapshot


def status_text(snap: FeedSnapshot, frames_per_s: float, events_per_s: float) -> Text:
    books = snap.books
    t = Text()
    t.append(f"{snap.venue} ", style="bold")
    t.append(f"books {books.synced}/{books.symbols} synced  ")
    t.append(f"{frames_per_s:,.0f} frames/s  {events_per_s:,.0f} events/s  ")
    t.append(f"events {snap.pipeline.emitted:,}  ")
    for label, value in (
        ("resyncs", books.resyncs),
        ("gaps", books.gaps),
        ("reconnects", snap.connections.reconnects),
        ("malformed", snap.frames.malformed_total),
    ):
        t.append(f"{label} {value}  ", style="yellow" if value else "")
    t.append(f"queued batches {snap.pipeline.queued_batches}  backpressure {snap.pipeline.backpressure_waits}")
    lag = snap.engine_report.get("event_loop_lag") or {}
    if lag.get("samples"):
        slow = lag["max_ms"] >= 100  # a tenth of a second blocked: every stream waited that long
        t.append(f"  loop lag p99 {lag['p99_ms']:.1f} ms max {lag['max_ms']:.1f} ms", style="yellow" if slow else "")
    return t


async def run_status(
    snapshot: Callable[[], FeedSnapshot],
    *,
    console: Console | None = None,
    period_s: float = 1.0,
    extra: Callable[[], str] | None = None,
) -> None:
    """Redraw the status line from a fresh ``snapshot()`` every ``period_s`` until cancelled;
    ``extra()`` (the start-up progress bar) goes first on the line."""
    con = console or Console(stderr=True)
    last_frames = last_events = 0
    loop = asyncio.get_running_loop()
    last_t = loop.time()
    with Live(Text("starting..."), console=con, refresh_per_second=4, transient=True) as live:
        while True:
            await asyncio.sleep(period_s)
            now = loop.time()
            dt = max(now - last_t, 1e-9)
            snap = snapshot()
            frames, events = snap.frames.total, snap.pipeline.emitted
            line = status_text(snap, (frames - last_frames) / dt, (events - last_events) / dt)
            live.update(Text(extra()) + line if extra is not None else line)
            last_frames, last_events, last_t = frames, events, now


def workers_status_text(merged: dict[str, Any], events_per_s: float) -> Text:
    """The status line of ``feed --workers N`` from the supervisor's merged summary."""
    workers = merged.get("workers", [])
    up = sum(1 for w in workers if w["up"])
    t = Text()
    t.append(f"{merged.get('venue', '')} workers {up}/{len(workers)} up  ", style="bold")
    t.append(f"{events_per_s:,.0f} events/s  events {merged.get('emitted', 0):,}  ")
    for label, value in (
        ("restarts", merged.get("restarts", 0)),
        ("resyncs", merged.get("resyncs", 0)),
        ("gaps", merged.get("gaps", 0)),
        ("reconnects", merged.get("reconnects", 0)),
        ("malformed", merged.get("malformed", 0)),
    ):
        t.append(f"{label} {value}  ", style="yellow" if value else "")
    return t


async def run_workers_status(summary: Callable[[], dict[str, Any]], *, period_s: float = 1.0) -> None:
    """Redraw the merged status line every ``period_s`` until cancelled."""
    con = Console(stderr=True)
    last, loop = 0, asyncio.get_running_loop()
    last_t = loop.time()
    with Live(Text("starting workers..."), console=con, refresh_per_second=4, transient=True) as live:
        while True:
            await asyncio.sleep(period_s)
            merged, now = summary(), loop.time()
            events = merged.get("emitted", 0) or 0
            live.update(workers_status_text(merged, (events - last) / max(now - last_t, 1e-9)))
            last, last_t = events, now
