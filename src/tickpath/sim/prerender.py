"""Pre-rendered playback (``sim --prerender SECONDS``): the market rendered once up front, then sent as bytes.

The live hub spends most of its time building events: a market step, the depth window's aggregate,
orjson, the combined envelope and the WebSocket header, per frame. On a machine where the simulator
shares the cores with the client it drives, that cost sets the rate the client sees. Here the venue's
hub (the same code, seed and configuration as the live market) first runs ``SECONDS`` of market
time on a :class:`~tickpath.clock.VirtualClock` (no waiting) with a recorder subscribed to every
stream of :data:`RECORDED_KINDS`; each frame is built and framed once. The listener then serves
that timeline: frame ``i`` is due at ``start + t_i / speed`` to the subscribers of its stream, the
same bytes to each. Each connection reads from a cursor of its own over the frames of its streams
(their timeline indices merged once per subscription change), and what is due to it goes as one
write of the frames joined (at most :data:`RUN_BYTES`): no per-frame Python work. With
``warmup_s`` the first seconds play at real time whatever the speed, so a client's books sync as
they would against the live market before the fast part begins.

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

Backpressure is per connection: one whose transport holds more than :data:`HOLD_BYTES` unsent is
sent nothing more until it drains, rather than being disconnected, and only it waits: the clock
and every other connection go on. At a speed above what a client can take, each connection is
sent as fast as its own reader takes it, its frames in timeline order (so each symbol's are in
order), and :attr:`Playback.held_s` says for how long the most held one waited (0 when every
reader kept up). A REST snapshot reads the book where the connection carrying the symbol's depth
stream is, so a held connection's books sync by the usual rules. A new connection starts at the
clock, as on the live market; a stream subscribed later starts at its connection's position, and
an unsubscribed one stops at once: a connection whose streams changed is sent nothing until it is
re-indexed (one connection per look at the timeline, so many SUBSCRIBEs at start-up never block the
loop together). When the timeline ends the streams go quiet (the connections stay open).

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
from typing import TYPE_CHECKING, Any

import numpy as np

from tickpath.clock import VirtualClock, run_virtual
from tickpath.errors import UnknownSymbolError
from tickpath.logs import log_event
from tickpath.sim import payloads

if TYPE_CHECKING:
    from tickpath.sim.context import ListenerContext
    from tickpath.sim.hub import Hub, Subscriber

log = logging.getLogger(__name__)

RECORDED_KINDS = ("depth@100ms", "trade", "aggTrade", "bookTicker")
HOLD_BYTES = 4 << 20  # a reader this far behind (its transport's buffer) is sent nothing more until it drains
RUN_BYTES = 1 << 20  # at most this much of one reader's due frames per write
_TICK_S = 0.005  # longest sleep between two looks at the timeline (and at held readers)
_FAST_BATCH_S = 0.001  # above real time: shortest sleep between two looks


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


class _Reader:
    """One subscriber's own cursor over the frames of its streams: ``idx`` are the timeline indices
    of those frames from ``pos_g`` on, in send order, ``k`` the next one to send."""

    __slots__ = ("added", "cum", "full", "held_s", "held_since", "idx", "k", "pos_g", "sent", "streams", "sub")

    def __init__(self, sub: Subscriber, pos_g: int) -> None:
        self.sub = sub
        self.streams: set[str] = set()
        self.idx: np.ndarray[Any, np.dtype[np.int64]] = np.zeros(0, np.int64)
        self.cum: np.ndarray[Any, np.dtype[np.int64]] = np.zeros(0, np.int64)  # bytes up to idx[i]
        self.k = 0
        self.pos_g = pos_g  # every frame of its streams before this timeline index is sent (or predates it)
        self.added: list[str] = []  # streams subscribed since idx was built: merged in from pos_g
        self.full = False  # a stream was dropped (or the timeline starts over): idx is built anew from pos_g
        self.held_s = 0.0  # loop time it had due frames it could not take (over HOLD_BYTES behind)
        self.held_since: float | None = None
        self.sent = 0  # frames sent to it

    def pending(self, g: int) -> bool:
        """Frames of its streams due (timeline index below ``g``) and not sent yet."""
        return self.k < len(self.idx) and int(self.idx[self.k]) < g


class Playback:
    """Serves one venue's :class:`Timeline` to the subscribers of its (rendered) hub, each
    connection from a cursor of its own (a slow reader holds only itself)."""

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
        self.due = 0.0  # seconds of the timeline due by the clock
        self._g = 0  # frames of the timeline due by the clock (index of the first one not due)
        self.sent = 0  # timeline frames due so far (each sent to its streams' readers)
        self.plays = 0  # times the timeline started over (``wait`` only)
        self.started_at: float | None = None  # loop time the timeline's 0 maps to (default: run()'s start)
        self._readers: dict[Subscriber, _Reader] = {}
        self._gone_held = 0.0  # the longest hold of a reader that has left (this play)
        self._looked = 0.0  # loop time of the last look at the readers
        self._times = np.frombuffer(timeline.times, dtype=np.float64) if timeline.times else np.zeros(0)
        self._frames = np.empty(len(timeline.frames), dtype=object)
        self._frames[:] = timeline.frames
        self._lens = np.fromiter(map(len, timeline.frames), np.int64, len(timeline.frames))
        self._of_stream = _index_streams(timeline.names)

    # ---- the source interface of sim/ws.py ------------------------------------------------------
    def validate(self, name: str) -> None:
        if name not in self.tl.recorded:
            self.hub.validate(name)  # the hub's own error for a malformed or unknown stream
            raise UnknownSymbolError(f"stream {name!r} is not pre-rendered (recorded: {', '.join(RECORDED_KINDS)})")

    def subscribe(self, sub: Subscriber, name: str) -> None:
        self.hub.subscribe(sub, name)
        r = self._readers.get(sub)
        if r is None:  # a new connection starts where the clock is, as on the live market
            r = self._readers[sub] = _Reader(sub, self._g)
        if name not in r.streams:
            r.streams.add(name)
            r.added.append(name)
        self._subscribed.set()

    def unsubscribe(self, sub: Subscriber, name: str) -> None:
        self.hub.unsubscribe(sub, name)
        r = self._readers.get(sub)
        if r is not None and name in r.streams:
            r.streams.discard(name)
            r.full = True

    def drop_subscriber(self, sub: Subscriber) -> None:
        self.hub.drop_subscriber(sub)
        r = self._readers.pop(sub, None)
        if r is not None:
            since = r.held_since
            self._gone_held = max(self._gone_held, r.held_s + (self._looked - since if since is not None else 0.0))

    # ---- where the readers are ------------------------------------------------------------------
    def _reader_position(self, r: _Reader) -> float:
        """Seconds of the timeline this reader has been sent (all of it up to the clock if caught up)."""
        if r.pending(self._g):
            return float(self._times[int(r.idx[r.k])]) - 1e-9  # just short of its next unsent frame
        return self.due

    @property
    def position(self) -> float:
        """Seconds of the timeline every reader has been sent (the slowest reader's position)."""
        return min((self._reader_position(r) for r in self._readers.values()), default=self.due)

    @property
    def held_s(self) -> float:
        """The longest time one reader of this play had due frames it could not take (a hold under
        way counted to the last look)."""
        now = self._looked
        held = [r.held_s + (now - r.held_since if r.held_since is not None else 0.0) for r in self._readers.values()]
        return max([*held, self._gone_held])

    def reader_stats(self, sub: Subscriber) -> tuple[int, int]:
        """(frames sent, frames of its streams due by the clock) of one connection."""
        r = self._readers[sub]
        return r.sent, r.sent + int(np.searchsorted(r.idx, self._g, "left")) - r.k

    # ---- REST -----------------------------------------------------------------------------------
    def uid_now(self, symbol: str) -> int:
        """The symbol's update id where its depth stream's reader is (what a live snapshot would read
        when its diffs arrive), or at the clock when nobody reads it."""
        steps = self.tl.steps.get(symbol)
        base = self.tl.base_uid.get(symbol, 0)
        if steps is None:
            return base
        lower = symbol.lower()
        names = self.hub._depth_names(lower, 100) if 100 in self.hub.speeds else ()
        readers = [self._readers[s] for n in names for s in self.hub.subs.get(n, ()) if s in self._readers]
        at = max((self._reader_position(r) for r in readers), default=self.due)
        return base + bisect_right(steps, at)

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
                self._restart()
        except asyncio.CancelledError:
            log_event(log, logging.INFO, "sim_playback_stopped", venue=self.hub.venue, frames=self.sent)
            raise

    def _restart(self) -> None:
        self._subscribed.clear()
        self.due, self._g, self._gone_held = 0.0, 0, 0.0
        for r in self._readers.values():  # connected, with nothing subscribed: from the start again
            r.pos_g, r.full, r.held_s, r.held_since, r.sent = 0, True, 0.0, None, 0
        self.plays += 1

    async def _play(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        times, n = self.tl.times, len(self.tl.times)
        warm, speed = self.warmup_s, self.speed
        while True:
            elapsed = loop.time() - start
            self.due = elapsed if elapsed < warm else warm + (elapsed - warm) * speed
            if self._g < n:  # woken at a frame's due time, the clock can fall a hair short
                self._g = bisect_right(times, self.due + 1e-9, self._g)
                self.sent = self._g
            held, caught_up = self._serve(loop.time())
            if self._g >= n:
                self.due = times[-1] if n else 0.0
                if not held:
                    return
            wait = _TICK_S  # held readers are looked at again then (4 MB lasts far longer)
            if self._g < n and (caught_up or not self._readers):
                t = times[self._g]
                due = start + (t if t < warm else warm + (t - warm) / speed)
                wait = min(due - loop.time(), _TICK_S)
            # never sleep(0) here: in virtual time that spins with time standing still. Faster than
            # real time, frames due within a millisecond go together (fewer, larger writes).
            await asyncio.sleep(max(wait, 1e-4 if speed <= 1.0 or self.due < warm else _FAST_BATCH_S))

    def _serve(self, now: float) -> tuple[bool, bool]:
        """Send every reader the frames now due to it, as far as its own backlog allows. Returns
        (one of them still has due frames it could not take: it is held, the others are not;
        one of them has taken everything due, so the next frame's due time matters)."""
        held = caught_up = False
        self._looked = now
        # one re-index per look (a few ms for a SUBSCRIBE of 200 streams, ~20 ms for 1,000 at once):
        # six connections subscribing together must not block the loop for all of them at once
        reindex = True
        for r in self._readers.values():
            if r.full or r.added:  # its streams changed: nothing more goes to it before it is re-indexed
                if not reindex:  # (its old index would send a dropped stream, or move it past the
                    held = True  # position its new streams start at); it stays put, looked at again soon
                    continue
                if r.full:
                    self._rebuild(r)
                else:
                    self._merge(r)
                reindex = False
            while r.pending(self._g) and _backlog(r.sub) <= HOLD_BYTES:
                self._send_run(r)
            if r.pending(self._g):
                held = True
                if r.held_since is None:
                    r.held_since = now
                continue
            caught_up = True
            r.pos_g = self._g
            if r.held_since is not None:
                r.held_s += now - r.held_since
                r.held_since = None
        return held, caught_up

    def _rebuild(self, r: _Reader) -> None:
        """The reader's frames from ``pos_g`` on: its streams' frame indices merged in send order."""
        self._set_frames(r, [self._tail(name, r.pos_g) for name in r.streams])
        r.full = False
        r.added.clear()

    def _merge(self, r: _Reader) -> None:
        """The frames of streams just subscribed (from ``pos_g`` on) merged into those still to send
        (all at ``pos_g`` or later); a merge of sorted runs, a few ms for 200 streams."""
        self._set_frames(r, [r.idx[r.k :], *(self._tail(name, r.pos_g) for name in r.added)])
        r.added.clear()

    def _tail(self, name: str, pos_g: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        a = self._of_stream.get(name)
        return a[np.searchsorted(a, pos_g) :] if a is not None else np.zeros(0, np.int64)

    def _set_frames(self, r: _Reader, parts: list[np.ndarray[Any, np.dtype[np.int64]]]) -> None:
        r.idx = np.sort(np.concatenate(parts), kind="stable") if parts else np.zeros(0, np.int64)  # runs: a merge
        r.cum = np.cumsum(self._lens[r.idx])
        r.k = 0

    def _send_run(self, r: _Reader) -> None:
        """The reader's next due frames, at most about RUN_BYTES, as one write."""
        k = r.k
        j = int(np.searchsorted(r.idx, self._g, "left"))  # frames with index below _g are due
        if j - k > 1:
            budget = (int(r.cum[k - 1]) if k else 0) + RUN_BYTES
            j = max(k + 1, min(j, int(np.searchsorted(r.cum, budget, "right"))))
        chosen = r.idx[k:j]
        frames: list[bytes] = self._frames[chosen].tolist()
        sub = r.sub
        if not sub.combined:  # /ws/<stream> readers: the data member cut out, frame by frame
            names = self.tl.names
            frames = [_raw(f, names[i]) for f, i in zip(frames, chosen.tolist(), strict=True)]
        sub.push(b"".join(frames) if len(frames) > 1 else frames[0])
        sub.flush()
        self.hub.frames_sent += j - k
        r.sent += j - k
        r.k = j
        r.pos_g = int(chosen[-1]) + 1


def _index_streams(names: list[str]) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
    """Per stream, the timeline indices of its frames (ascending)."""
    of: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        lst = of.get(name)
        if lst is None:
            of[name] = [i]
        else:
            lst.append(i)
    return {name: np.array(lst, dtype=np.int64) for name, lst in of.items()}


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
