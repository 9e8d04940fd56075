"""One WebSocket connection to a Binance stream endpoint, kept alive.

- Frames are handed to ``on_frame`` with the receipt time read the moment ``receive()`` returns
  (wall clock for the event, monotonic for latency), before any parsing. With ``on_frames``, the
  text frames already waiting behind the first (parsed from the same socket reads) are handed over
  with it in one call, under the same receipt time, taken without awaiting (``take_text`` of the
  own, picows and memory transports; aiohttp's buffered messages through ``receive()``, which then
  does not suspend).
- Bytes come through a :class:`tickpath.transports.WsTransport`: aiohttp by default (tickpath's
  own framing or picows by ``--ws-transport``; each answers the venue's pings as soon as they are
  read), in memory in tests.
- A watchdog closes a connection that delivered no frame for ``stale_after_s`` (a silent TCP
  connection looks alive for minutes otherwise); the read loop then reconnects.
- Reconnects back off exponentially with "equal jitter" (half fixed, half random) so a fleet of
  clients does not reconnect in lock-step; the backoff resets after a connection that lived long.
- ``subscribe=True`` opens ``/stream`` and subscribes with ``SUBSCRIBE`` messages, paced under the
  venue's incoming-message limit; otherwise the streams go in the combined-stream URL.

The connection knows nothing about Binance payloads: bytes in, callbacks out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.feed.clocks import clock_readers
from tickpath.logs import log_event
from tickpath.transports import WsKind, WsMessageLike, WsSocket, WsTransport, make_ws_transport, text_taker

log = logging.getLogger(__name__)

# on_frame(text, receipt_wall_ns, receipt_mono_ns, connection) -> None, or an awaitable when the
# feed needs the reader to wait (back-pressure).
FrameHandler = Callable[[str, int, int, "FeedConnection"], Awaitable[None] | None]
EventHandler = Callable[["FeedConnection"], None]
# on_frames(texts, receipt_wall_ns, receipt_mono_ns, connection): frames that arrived together, in order.
FramesHandler = Callable[[list[str], int, int, "FeedConnection"], Awaitable[None] | None]
MAX_BATCH = 512  # frames per on_frames call: bounds the time one call keeps the loop


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect backoff with equal jitter."""

    base_s: float = 0.1
    max_s: float = 30.0
    # A connection that lived this long resets the attempt counter: under brief, frequent faults (a drop, a
    # 503 for a second) a longer threshold let the delay climb to max_s and kept every stream dark for it.
    reset_after_s: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.max_s, self.base_s * 2.0 ** max(0, attempt - 1))
        return cap / 2 + rng.uniform(0, cap / 2)


class FeedConnection:
    """Reads one combined stream; reconnects until :meth:`stop`."""

    def __init__(
        self,
        conn_id: str,
        base_url: str,
        streams: list[str],
        on_frame: FrameHandler,
        *,
        clock: Clock = DEFAULT_CLOCK,
        session: aiohttp.ClientSession | None = None,
        transport: WsTransport | None = None,
        stale_after_s: float = 30.0,
        backoff: Backoff = Backoff(),
        subscribe: bool = False,
        max_messages_per_s: int = 5,
        streams_per_subscribe: int = 100,
        on_open: EventHandler | None = None,
        on_close: EventHandler | None = None,
        seed: int | None = None,
        on_frames: FramesHandler | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.base_url = base_url.rstrip("/")
        self.streams = list(streams)
        self.on_frame = on_frame
        self.on_frames = on_frames
        self.clock = clock
        # One transport per connection unless shared; the client is --ws-transport's (TLS context
        # taken from the feed's aiohttp session), see docs/transports.md.
        self._transport = transport or make_ws_transport(session=session)
        self._own_transport = transport is None
        self.stale_after_s = stale_after_s
        self.backoff = backoff
        self.subscribe = subscribe
        self.max_messages_per_s = max(1, max_messages_per_s)
        self.streams_per_subscribe = max(1, streams_per_subscribe)
        self.on_open = on_open
        self.on_close = on_close
        self._rng = random.Random(seed)
        self._ws: WsSocket | None = None
        self._stopping = False
        self.connected = asyncio.Event()
        self.first_frame = asyncio.Event()
        # counters (read by metrics and the summary)
        self.frames = 0
        self.connects = 0
        self.reconnects = 0
        self.stale_closes = 0
        self.ws_errors = 0  # connections ended by a WebSocket error (protocol violation, broken link)
        self.connect_failures = 0
        self.opened_mono_ns = 0
        self.last_frame_mono_ns = 0
        self.last_error = ""

    @property
    def url(self) -> str:
        if self.subscribe:
            return f"{self.base_url}/stream"
        return f"{self.base_url}/stream?streams=" + "/".join(self.streams)

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def _send_subscriptions(self, ws: WsSocket) -> None:
        # 1.25x the limit's interval (5/s: 4 a second): a message the venue reads late, or a
        # network that bunches two, still leaves at most the limit in any second of arrivals
        gap_ns = int(1.25e9 / self.max_messages_per_s)
        for i in range(0, len(self.streams), self.streams_per_subscribe):
            chunk = self.streams[i : i + self.streams_per_subscribe]
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": chunk, "id": i + 1}))
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + gap_ns)

    async def _watchdog(self, ws: WsSocket) -> None:
        period_ns = max(int(self.stale_after_s * 1e9 / 4), 10_000_000)
        limit_ns = int(self.stale_after_s * 1e9)
        while not ws.closed:
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + period_ns)
            if self.clock.monotonic_ns() - self.last_frame_mono_ns > limit_ns and not ws.closed:
                self.stale_closes += 1
                log_event(
                    log,
                    logging.WARNING,
                    "connection_stale",
                    conn=self.conn_id,
                    silent_s=round((self.clock.monotonic_ns() - self.last_frame_mono_ns) / 1e9, 2),
                )
                await ws.close()
                return

    async def _read(self, ws: WsSocket) -> None:
        on_frame = self.on_frame
        wall_ns, mono_ns = clock_readers(self.clock)
        text_t, bin_t = WsKind.TEXT, WsKind.BINARY
        receive = ws.receive
        first: asyncio.Event | None = self.first_frame
        take, ready = text_taker(ws) if self.on_frames is not None else (None, None)
        held: WsMessageLike | None = None  # a message met while draining (aiohttp): the next one read
        while True:
            msg = held if held is not None else await receive()
            held = None
            mono = mono_ns()
            wall = wall_ns()
            kind = msg.type
            if kind == text_t:
                data = msg.data
            elif kind == bin_t:
                data = msg.data.decode("utf-8", "replace")
            else:
                if kind == WsKind.ERROR:
                    self.ws_errors += 1
                    self.last_error = str(ws.exception() or "websocket error")
                return  # CLOSE / CLOSING / CLOSED
            self.frames += 1
            self.last_frame_mono_ns = mono
            if first is not None:
                first.set()
                first = None  # set once per connection: no method call per frame after that
            more: list[str] | None = None
            if take is not None:
                more = take(MAX_BATCH - 1)
            elif ready is not None and ready():
                more = []
                while len(more) < MAX_BATCH - 1 and ready():
                    m = await receive()  # buffered: returns without suspending
                    if m.type != text_t:
                        held = m
                        break
                    more.append(m.data)
            if more:
                self.frames += len(more)
                wait = self.on_frames([data, *more], wall, mono, self)  # type: ignore[misc]
            else:
                wait = on_frame(data, wall, mono, self)
            if wait is not None:
                await wait

    async def run(self) -> None:
        """Connect, read, reconnect with backoff; returns after :meth:`stop`."""
        attempt = 0
        try:
            while not self._stopping:
                try:
                    ws = await self._transport.connect(self.url)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.connect_failures += 1
                    self.last_error = str(exc) or type(exc).__name__
                    attempt += 1
                    await self._back_off(attempt, "connect_failed", error=self.last_error)
                    continue
                await self._serve(ws)
                if self._stopping:
                    break
                lived_s = (self.clock.monotonic_ns() - self.opened_mono_ns) / 1e9
                attempt = 1 if lived_s >= self.backoff.reset_after_s else attempt + 1
                error = self.last_error or "closed by peer"
                await self._back_off(attempt, "connection_lost", lived_s=round(lived_s, 2), error=error)
        finally:
            if self._own_transport:
                await self._transport.close()

    async def _serve(self, ws: WsSocket) -> None:
        """One connection's life: open callbacks, subscribe, read until it closes, close callbacks."""
        self._ws = ws
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
        self.opened_mono_ns = self.last_frame_mono_ns = self.clock.monotonic_ns()
        self.connected.set()
        if self.on_open is not None:
            self.on_open(self)
        watchdog = asyncio.create_task(self._watchdog(ws))
        try:
            if self.subscribe:
                await self._send_subscriptions(ws)
            await self._read(ws)
        except (aiohttp.ClientError, OSError) as exc:
            self.last_error = str(exc) or type(exc).__name__
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await ws.close()
            self._ws = None
            self.connected.clear()
            if self.on_close is not None:
                self.on_close(self)

    async def _back_off(self, attempt: int, event: str, **fields: object) -> None:
        delay = self.backoff.delay(attempt, self._rng)
        log_event(log, logging.WARNING, event, conn=self.conn_id, **fields, retry_in_s=round(delay, 3))
        await self.clock.sleep_until_ns(self.clock.monotonic_ns() + int(delay * 1e9))

    async def stop(self) -> None:
        """Close the socket and end :meth:`run` (no reconnect)."""
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
