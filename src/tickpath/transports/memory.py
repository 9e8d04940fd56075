"""In-memory WebSockets and HTTP for tests: no socket, and with a VirtualClock no wall time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tickpath.transports.base import HttpReply, WsKind, WsMessage, WsSocket


class MemoryWsPeer:
    """The server's end of one in-memory WebSocket: what a test (or an in-memory venue) drives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._to_client: asyncio.Queue[WsMessage] = asyncio.Queue()
        self.from_client: asyncio.Queue[str] = asyncio.Queue()
        self.closed = False
        self.task: asyncio.Task[None] | None = None  # the handler serving this peer

    async def send(self, data: str | bytes) -> None:
        if not self.closed:
            kind = WsKind.TEXT if isinstance(data, str) else WsKind.BINARY
            await self._to_client.put(WsMessage(kind, data))

    async def close(self, error: str | None = None) -> None:
        """Close from the server's side (``error``: the connection breaks instead)."""
        if not self.closed:
            self.closed = True
            self._to_client.put_nowait(WsMessage(WsKind.ERROR if error else WsKind.CLOSE, error))


class _MemoryWsSocket:
    def __init__(self, peer: MemoryWsPeer) -> None:
        self._peer = peer
        self._closed = False
        self._error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def receive(self) -> WsMessage:
        if self._closed:
            return WsMessage(WsKind.CLOSED, None)
        msg = await self._peer._to_client.get()
        if msg.type in (WsKind.CLOSE, WsKind.ERROR):
            self._closed = True
            if msg.type == WsKind.ERROR:
                self._error = ConnectionResetError(str(msg.data))
        return msg

    def take_text(self, limit: int) -> list[str]:
        """The text frames the peer already sent behind the last one (at most ``limit``), without waiting."""
        queue = self._peer._to_client
        waiting = getattr(queue, "_queue", None)  # asyncio.Queue's deque: peeked, never popped directly
        out: list[str] = []
        while not self._closed and waiting and len(out) < limit and waiting[0].type == WsKind.TEXT:
            out.append(queue.get_nowait().data)  # type: ignore[arg-type]
        return out

    async def send_str(self, text: str) -> None:
        if self._closed:
            raise ConnectionResetError("in-memory websocket is closed")
        await self._peer.from_client.put(text)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._peer.closed = True
            self._peer._to_client.put_nowait(WsMessage(WsKind.CLOSED, None))
            if self._peer.task is not None:
                self._peer.task.cancel()  # the server's end sees the close as its handler ending

    def exception(self) -> BaseException | None:
        return self._error


WsHandler = Callable[[MemoryWsPeer], Awaitable[None]]


@dataclass
class MemoryWsTransport:
    """WebSockets to ``handler``, one task per connection; ``refuse`` connects fail first.

    ``peers`` records every connection's server end, in order, for assertions.
    """

    handler: WsHandler
    refuse: int = 0
    peers: list[MemoryWsPeer] = field(default_factory=list)
    attempts: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def connect(self, url: str) -> WsSocket:
        self.attempts += 1
        await asyncio.sleep(0)  # a connect is a suspension point, as a real one is
        if self.refuse > 0:
            self.refuse -= 1
            raise ConnectionRefusedError(f"in-memory connect to {url} refused")
        peer = MemoryWsPeer(url)
        self.peers.append(peer)
        peer.task = task = asyncio.create_task(self._serve(peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _MemoryWsSocket(peer)

    async def _serve(self, peer: MemoryWsPeer) -> None:
        try:
            await self.handler(peer)
        finally:
            await peer.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


HttpHandler = Callable[[str], Awaitable[HttpReply]]


@dataclass
class MemoryHttpTransport:
    """HTTP GETs answered by ``handler(url)``; ``requests`` records every URL asked for."""

    handler: HttpHandler
    requests: list[str] = field(default_factory=list)

    async def get(self, url: str) -> HttpReply:
        self.requests.append(url)
        await asyncio.sleep(0)
        return await self.handler(url)

    async def close(self) -> None:
        return None
