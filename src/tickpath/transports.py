"""How bytes reach the feed: a small WebSocket and HTTP protocol, over aiohttp or in memory.

The feed's connection and the REST client are written against :class:`WsTransport` and
:class:`HttpTransport`, not against aiohttp, so their reconnect, watchdog, pacing and retry logic
runs in tests over :class:`MemoryWsTransport` / :class:`MemoryHttpTransport`: no socket, and with
:class:`tickpath.clock.VirtualClock` no wall time either.

A received WebSocket message is anything with ``.type`` and ``.data`` whose type compares equal to
the :class:`WsKind` values. They are aiohttp's own ``WSMsgType`` numbers, so the aiohttp transport
hands its messages over as they are: no wrapper object per frame on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple, Protocol

import aiohttp


class WsKind(IntEnum):
    """Message kinds, numbered as aiohttp's ``WSMsgType``."""

    TEXT = 1
    BINARY = 2
    CLOSE = 8
    CLOSED = 257
    ERROR = 258


class WsMessage(NamedTuple):
    type: int
    data: str | bytes | None


class WsMessageLike(Protocol):
    @property
    def type(self) -> int: ...
    @property
    def data(self) -> Any: ...  # str for TEXT, bytes for BINARY


class WsSocket(Protocol):
    """One open WebSocket, as the feed uses it."""

    @property
    def closed(self) -> bool: ...
    async def receive(self) -> WsMessageLike: ...
    async def send_str(self, text: str) -> None: ...
    async def close(self) -> object: ...
    def exception(self) -> BaseException | None: ...


class WsTransport(Protocol):
    async def connect(self, url: str) -> WsSocket:
        """Open ``url``; raise ``OSError`` (or ``aiohttp.ClientError``) when it cannot be opened."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class HttpReply:
    """One HTTP answer; ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpTransport(Protocol):
    async def get(self, url: str) -> HttpReply:
        """GET ``url``; raise ``OSError``/``TimeoutError``/``aiohttp.ClientError`` on transport failure."""
        ...

    async def close(self) -> None: ...


class AiohttpWsTransport:
    """WebSockets over an aiohttp session (created on first use unless one is given)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._own = session is None

    async def connect(self, url: str) -> WsSocket:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own = True
        # max_msg_size=0: snapshots-in-stream and big depth frames must never be refused.
        return await self._session.ws_connect(url, autoping=True, max_msg_size=0, compress=0)

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()


class AiohttpHttpTransport:
    """HTTP GETs over one aiohttp session with a total timeout and an optional TLS context."""

    def __init__(self, timeout_s: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def get(self, url: str) -> HttpReply:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.ssl_context) if self.ssl_context is not None else None
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), connector=connector
            )
        async with self._session.get(url) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return HttpReply(resp.status, headers, await resp.read())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# -- in memory -------------------------------------------------------------------------------------


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
