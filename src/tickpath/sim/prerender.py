"""Pre-rendered playback (``sim --prerender SECONDS``): the market rendered once up front, then sent as bytes.

The live hub spends most of its time building events: a market step, the depth window's aggregate,
orjson, the combined envelope and the WebSocket header, per frame. On a machine where the simulator
shares the cores with the client it drives, that cost sets the rate the client sees. Here the venue's
hub (the same code, seed and configuration as the live market) first runs ``SECONDS`` of market
time on a :class:`~tickpath.clock.VirtualClock` (no waiting) with a recorder subscribed to every
stream of :data:`RECORDED_KINDS`; each frame is built and framed once. The listener then serves
that timeline: frame ``i`` goes at ``start + t_i / speed`` to the subscribers of its stream, the
same bytes to each, with no per-frame work beyond a dict lookup and a write. With ``warmup_s`` the
first seconds play at real time whatever the speed, so a client's books sync as they would against
the live market before the fast part begins.

What a client sees is what the live market would have sent it at the same moments: the same
updates, depth windows, trades and tickers (tests/sim/test_prerender.py holds a feed over both to
that). A REST depth snapshot is the exact book at the update id the playback has reached (the
rendered market keeps its whole history), so books sync by the usual rules. Exchange times in the
frames run from the render's start, so the venue's clock (``serverTime``, snapshot times) is set
back by however long the render took, and the two agree.

With ``wait`` (``--prerender-wait``) the timeline starts at the first subscription rather than at
start-up (a load generator playing faster than real time would otherwise be half through before its
client has connected), and once it has ended and every subscriber has left, the next subscription
starts it over: one render serves one client run after another, each from the beginning.

A reader that falls more than :data:`HOLD_BYTES` behind holds the playback instead of being
disconnected: at a speed above what a client can take, the delivered rate is the client's, and
:attr:`Playback.held_s` says for how long the timeline waited (0 when the client kept up). When the
timeline ends the streams go quiet (the connections stay open).

Not available with pre-rendering: listing changes, faults and chaos (they act on the live hub),
kline/ticker/mark-price channels, and depth speeds other than 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickpath.clock import VirtualClock, run_virtual
from tickpath.errors import UnknownSymbolError
from tickpath.logs import log_event
from tickpath.sim import payloads

if TYPE_CHECKING:
    from tickpath.sim.context import ListenerContext
    from tickpath.sim.hub import Hub, Subscriber

log = logging.getLogger(__name__)

RECORDED_KINDS = ("depth@100ms", "trade", "aggTrade", "bookTicker")
HOLD_BYTES = 4 << 20  # a subscriber this far behind holds the playback
_TICK_S = 0.005  # longest sleep between two looks at the timeline


@dataclass
class Timeline:
    """Every recorded frame in send order, and when each symbol's update ids happened."""

    times: array[float] = field(default_factory=lambda: array("d"))  # seconds from the render's start
    names: list[str] = field(default_factory=list)  # stream of each frame
    frames: list[bytes] = field(default_factory=list)  # combined-envelope WebSocket frame
    steps: dict[str, array[float]] = field(default_factory=dict)  # symbol -> time of each update id
    base_uid: dict[str, int] = field(default_factory=dict)  # symbol -> last update id before the render
    recorded: set[str] = field(default_factory=set)  # every stream recorded (some may have sent nothing)
    render_wall_ns: int = 0  # exchange wall time of the render's start, before the venue's offset
    render_cpu_s: float = 0.0


class _Recorder:
    """A subscriber of one stream that appends what the hub sends it to the timeline."""

    combined = True

    def __init__(self, name: str, timeline: Timeline, now: Callable[[], float]) -> None:
        self.name = name
        self._tl = timeline
        self._now = now

    def push(self, frame: bytes) -> None:
        self._tl.times.append(self._now())
        self._tl.names.append(self.name)
        self._tl.frames.append(frame)

    def flush(self) -> None:
        pass


def recorded_names(hub: Hub, symbol: str) -> list[str]:
    """The stream names of ``symbol`` that a render records (both spellings of a default depth)."""
    lower = symbol.lower()
    depth = list(hub._depth_names(lower, 100)) if 100 in hub.speeds else []
    return [*depth, f"{lower}@trade", f"{lower}@aggTrade", f"{lower}@bookTicker"]


def render(hub: Hub, clock: VirtualClock, seconds: float) -> Timeline:
    """Run ``hub`` (built on ``clock``) for ``seconds`` of market time with every recorded stream
    subscribed; returns the frames it sent. Call it in a thread of its own when a loop is running."""
    tl = Timeline(render_wall_ns=clock.wall_ns())
    tl.base_uid = {s: m.last_uid for s, m in hub.markets.items()}
    tl.steps = {s: array("d") for s in hub.markets}
    cpu0 = time.process_time()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        def now() -> float:
            return loop.time() - start

        for symbol in hub.markets:
            for name in recorded_names(hub, symbol):
                hub.subscribe(_Recorder(name, tl, now), name)
                tl.recorded.add(name)
        step = hub.step

        def recording_step(symbol: str, now_ms: int | None = None) -> int:
            tl.steps[symbol].append(now())
            return step(symbol, now_ms)

        setattr(hub, "step", recording_step)  # noqa: B010 - the hub's run() calls self.step
        task = loop.create_task(hub.run())
        try:
            await asyncio.sleep(seconds)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            delattr(hub, "step")
            hub.subs.clear()
            hub.dirty.clear()

    run_virtual(go, clock)
    tl.render_cpu_s = time.process_time() - cpu0
    return tl


class Playback:
    """Serves one venue's :class:`Timeline` to the subscribers of its (rendered) hub."""

    def __init__(
        self, hub: Hub, timeline: Timeline, speed: float = 1.0, *, wait: bool = False, warmup_s: float = 0.0
    ) -> None:
        self.hub = hub
        self.tl = timeline
        self.speed = speed
        self.warmup_s = warmup_s  # the timeline's first seconds play at real time, the rest at speed
        self.wait = wait  # the timeline starts at the first subscription instead of run()'s start
        self.contexts: list[ListenerContext] = []  # listeners whose clock follows the timeline
        self._subscribed = asyncio.Event()
        self.position = 0.0  # seconds of the timeline played so far
        self.held_s = 0.0  # time the timeline waited for slow readers
        self.sent = 0  # timeline frames played (each to however many subscribers)
        self.plays = 0  # times the timeline started over (``wait`` only)
        self.started_at: float | None = None  # loop time the timeline's 0 maps to (default: run()'s start)

    # ---- the source interface of sim/ws.py ------------------------------------------------------
    def validate(self, name: str) -> None:
        if name not in self.tl.recorded:
            self.hub.validate(name)  # the hub's own error for a malformed or unknown stream
            raise UnknownSymbolError(f"stream {name!r} is not pre-rendered (recorded: {', '.join(RECORDED_KINDS)})")

    def subscribe(self, sub: Subscriber, name: str) -> None:
        self.hub.subscribe(sub, name)
        self._subscribed.set()

    def unsubscribe(self, sub: Subscriber, name: str) -> None:
        self.hub.unsubscribe(sub, name)

    def drop_subscriber(self, sub: Subscriber) -> None:
        self.hub.drop_subscriber(sub)

    # ---- REST -----------------------------------------------------------------------------------
    def uid_now(self, symbol: str) -> int:
        """The symbol's update id at the playback's position (what a live snapshot would read)."""
        steps = self.tl.steps.get(symbol)
        base = self.tl.base_uid.get(symbol, 0)
        return base + (bisect_right(steps, self.position) if steps is not None else 0)

    # ---- playing --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Play the timeline (with ``wait``: from each first subscription, again once it has ended
        and every subscriber has left, so consecutive clients each get the whole of it)."""
        loop = asyncio.get_running_loop()
        start = self.started_at if self.started_at is not None else loop.time()
        try:
            while True:
                if self.wait:
                    await self._subscribed.wait()
                    for ctx in self.contexts:  # the venue's clock set back by the wait, as by the render
                        ctx.offset_ns -= int((loop.time() - start) * 1e9)
                    start = loop.time()
                await self._play(start)
                log_event(
                    log, logging.INFO, "sim_playback_ended", venue=self.hub.venue, frames=self.sent, held_s=self.held_s
                )
                if not self.wait:
                    return
                while self.hub.subs:  # the clients of this play are still connected
                    await asyncio.sleep(0.05)
                self._subscribed.clear()
                self.position = self.held_s = 0.0
                self.plays += 1
        except asyncio.CancelledError:
            log_event(log, logging.INFO, "sim_playback_stopped", venue=self.hub.venue, frames=self.sent)
            raise

    async def _play(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        times, n, i = self.tl.times, len(self.tl.times), 0
        warm, speed = self.warmup_s, self.speed
        while i < n:
            elapsed = loop.time() - start - self.held_s
            self.position = pos = elapsed if elapsed < warm else warm + (elapsed - warm) * speed
            j = bisect_right(times, pos + 1e-9, i)  # woken at a frame's due time, pos can fall a hair short
            if j > i:
                touched = self._deliver(i, j)
                i = j
                if await self._hold_for(touched):
                    continue
            if i < n:
                t = times[i]
                due = start + self.held_s + (t if t < warm else warm + (t - warm) / speed)
                # never sleep(0) here: in virtual time that spins with time standing still
                await asyncio.sleep(min(max(due - loop.time(), 1e-4), _TICK_S))
        self.position = times[-1] if n else 0.0

    def _deliver(self, i: int, j: int) -> set[Subscriber]:
        """Frames ``i`` to ``j - 1`` to their streams' subscribers; returns the subscribers written to."""
        hub, names, frames = self.hub, self.tl.names, self.tl.frames
        subs_of, dirty = hub.subs, hub.dirty
        sent = 0
        for k in range(i, j):
            subs = subs_of.get(names[k])
            if not subs:
                continue
            frame = frames[k]
            for sub in subs:
                sub.push(frame if sub.combined else _raw(frame, names[k]))
                dirty.add(sub)
            sent += len(subs)
        self.sent += j - i
        hub.frames_sent += sent
        touched = hub.dirty
        hub.flush()  # swaps in a new dirty set
        return touched

    async def _hold_for(self, subs: set[Subscriber]) -> bool:
        """Wait while one of ``subs`` has more than HOLD_BYTES unsent; True if the playback waited."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while any(_backlog(s) > HOLD_BYTES for s in subs):
            await asyncio.sleep(0.001)
        waited = loop.time() - began
        self.held_s += waited
        return waited > 0


def _backlog(sub: Subscriber) -> int:
    transport = getattr(sub, "transport", None)
    if transport is None or transport.is_closing():
        return 0
    return int(transport.get_write_buffer_size())


def _raw(frame: bytes, name: str) -> bytes:
    """The raw-stream frame (``data`` member only) of a combined frame: for ``/ws/<stream>`` readers."""
    n = frame[1] & 0x7F
    head = 2 if n < 126 else 4 if n == 126 else 10
    body = frame[head + len('{"stream":"') + len(name) + len('","data":') : -1]
    return payloads.ws_frame(body)
