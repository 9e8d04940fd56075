"""WebSockets and HTTP over aiohttp: the transport every command used before the others existed."""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Callable

import aiohttp

from tickpath.transports.base import HttpReply, WsSocket


class AiohttpWsTransport:
    """WebSockets over an aiohttp session (created on first use unless one is given)."""

    def __init__(
        self, session: aiohttp.ClientSession | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._session = session
        self._own = session is None
        self.ssl_context = ssl_context  # None: the session's (the system trust store by default)

    async def connect(self, url: str) -> WsSocket:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own = True
        # max_msg_size=0: snapshots-in-stream and big depth frames must never be refused.
        ssl_arg: ssl.SSLContext | bool = self.ssl_context if self.ssl_context is not None else True
        return await self._session.ws_connect(url, autoping=True, max_msg_size=0, compress=0, ssl=ssl_arg)

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()


def aiohttp_text_ready(ws: object) -> Callable[[], bool] | None:
    """For an aiohttp WebSocket: a check that its next ``receive()`` returns a text frame already read
    (the head of its reader's queue), so the feed can take it without suspending. Reads aiohttp's
    private queue (``_reader._buffer``, public in its Cython reader too); None for any other layout."""
    buf = getattr(getattr(ws, "_reader", None), "_buffer", None)
    if not isinstance(buf, deque):
        return None
    text = aiohttp.WSMsgType.TEXT

    def ready() -> bool:
        return bool(buf) and buf[0][0].type is text

    return ready


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
