"""The live status line for humans: one line on stderr, refreshed every second.

Shows rates and the counters that matter when something goes wrong (resyncs, gaps, reconnects,
malformed frames, queue depth, back-pressure). Only drawn when stderr is a terminal (or when asked),
so logs and ``--json`` output stay clean.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from tickpath.feed.run import Feed


def status_text(feed: Feed, frames_per_s: float, events_per_s: float) -> Text:
    eng = feed.engine
    books = eng.book_totals() if eng is not None else {}
    synced = sum(1 for b in eng.books.values() if b.synced) if eng is not None else 0
    total = len(feed.config.symbols)
    conns = feed.connections()
    depths = feed.pipeline.queue_depths()
    queued = sum(v for k, v in depths.items() if k != "batch")
    t = Text()
    t.append(f"{feed.config.venue} ", style="bold")
    t.append(f"books {synced}/{total} synced  ")
    t.append(f"{frames_per_s:,.0f} frames/s  {events_per_s:,.0f} events/s  ")
    t.append(f"events {feed.pipeline.stats.emitted:,}  ")
    for label, value in (
        ("resyncs", books.get("resyncs", 0)),
        ("gaps", books.get("gaps", 0)),
        ("reconnects", sum(c.reconnects for c in conns)),
        ("malformed", eng.stats.malformed_total if eng is not None else 0),
    ):
        t.append(f"{label} {value}  ", style="yellow" if value else "")
    t.append(f"queued batches {queued}  backpressure {feed.pipeline.stats.backpressure_waits}")
    return t


async def run_status(feed: Feed, *, console: Console | None = None, period_s: float = 1.0) -> None:
    """Redraw the status line until cancelled."""
    con = console or Console(stderr=True)
    last_frames = last_events = 0
    loop = asyncio.get_running_loop()
    last_t = loop.time()
    with Live(Text("starting..."), console=con, refresh_per_second=4, transient=True) as live:
        while True:
            await asyncio.sleep(period_s)
            now = loop.time()
            dt = max(now - last_t, 1e-9)
            frames = feed.engine.stats.frames if feed.engine is not None else 0
            events = feed.pipeline.stats.emitted
            live.update(status_text(feed, (frames - last_frames) / dt, (events - last_events) / dt))
            last_frames, last_events, last_t = frames, events, now
