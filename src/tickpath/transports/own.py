"""tickpath's own WebSocket client: an ``asyncio.Protocol`` over :mod:`tickpath.transports.framing`.

What it does, and no more (a market-data client needs no extensions): the HTTP/1.1 upgrade with a
``Sec-WebSocket-Key`` whose ``Sec-WebSocket-Accept`` is checked, no extension offered (so
permessage-deflate is off, and a server that answers with one is refused), masked client frames,
fragmented messages reassembled, pings answered at once with a pong, the close handshake with
codes both ways, a maximum frame/message size, and TLS through ``loop.create_connection(ssl=...)``
with the caller's context (a default verifying one for ``wss://`` when none is given).

Frames are parsed in ``data_received`` straight into a deque of messages that ``receive()`` pops
without suspending while it is not empty: one Python-level call per frame on the steady path.
Reading pauses when ``PAUSE_AT`` messages wait unread (the feed's back-pressure reaches TCP).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import cast
from urllib.parse import urlsplit

from tickpath.transports.base import WsKind, WsMessage
from tickpath.transports.framing import (
    CLOSE_NO_STATUS,
    CLOSE_OK,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameParser,
    WsProtocolError,
    accept_for,
    close_payload,
    encode_frame,
    new_key,
    parse_close,
)

PAUSE_AT = 4096  # unread messages: stop reading the socket
RESUME_AT = 1024
MAX_HANDSHAKE = 65536
_CLOSED = WsMessage(WsKind.CLOSED, None)


def _drop(text: str) -> None:
    return None


class WsHandshakeError(ConnectionError):
    """The server did not upgrade the connection as RFC 6455 requires."""


def split_ws_url(url: str) -> tuple[bool, str, int, str]:
    """(secure, host, port, resource) of a ``ws://`` or ``wss://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return secure, parts.hostname, port, resource


class OwnWsSocket(asyncio.Protocol):
    """One connection: the asyncio protocol and the feed's :class:`WsSocket` in one object."""

    def __init__(self, owner: OwnWsTransport, host_header: str, resource: str) -> None:
        self._owner = owner
        self._key = new_key()
        self._request = (
            f"GET {resource} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._head = bytearray()
        self._upgraded = False
        self._transport: asyncio.Transport | None = None
        self._queue: deque[WsMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._closed = False
        self._close_sent = False
        self._final: WsMessage | None = None  # what receive() returns once the queue is drained
        self._error: BaseException | None = None
        self.close_code: int | None = None  # the code the server closed with
        text_kind = WsKind.TEXT
        append = self._queue.append
        self._parser = FrameParser(
            self._on_message, self._on_control, owner.max_size, on_text=lambda t: append(WsMessage(text_kind, t))
        )

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not an isinstance check: uvloop's TCPTransport does not subclass asyncio.Transport
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self._upgraded:
            data = self._handshake_bytes(data)
            if not data:
                return
        try:
            self._parser.feed(data)
        except WsProtocolError as exc:
            self._protocol_error(exc)
        self._wake()
        if not self._paused and len(self._queue) >= PAUSE_AT and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(WsHandshakeError(f"connection closed during the handshake: {exc}"))
        if not self._lost.done():
            self._lost.set_result(None)
        if self._final is None:
            self._error = exc or ConnectionResetError("connection closed without a close frame")
            self._finish(WsMessage(WsKind.ERROR, None))
        self._closed = True
        self._wake()

    # -- the handshake ---------------------------------------------------------------------------

    def _handshake_bytes(self, data: bytes) -> bytes:
        """Collect the upgrade response; returns the bytes after it (the first frames)."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HANDSHAKE:
                self._fail_handshake("upgrade response headers over 64 KiB")
            return b""
        head, rest = bytes(self._head[:end]).decode("latin-1"), bytes(self._head[end + 4 :])
        self._head.clear()
        problem = self._check_upgrade(head)
        if problem:
            self._fail_handshake(problem)
            return b""
        self._upgraded = True
        self.handshake.set_result(None)
        return rest

    def _check_upgrade(self, head: str) -> str:
        status, *lines = head.split("\r\n")
        fields: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if status.split(" ", 2)[1:2] != ["101"]:
            return f"server answered {status!r}, not 101 Switching Protocols"
        if fields.get("upgrade", "").lower() != "websocket" or "upgrade" not in fields.get("connection", "").lower():
            return "response lacks Upgrade: websocket / Connection: Upgrade"
        if fields.get("sec-websocket-accept") != accept_for(self._key):
            return "Sec-WebSocket-Accept does not match the key sent"
        if fields.get("sec-websocket-extensions"):
            return f"server chose extensions not offered: {fields['sec-websocket-extensions']}"
        return ""

    def _fail_handshake(self, why: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(WsHandshakeError(why))
        if self._transport is not None:
            self._transport.abort()

    # -- frames ----------------------------------------------------------------------------------

    def _on_message(self, opcode: int, data: str | bytes) -> None:
        if self._final is None:
            self._queue.append(WsMessage(WsKind.TEXT if opcode == OP_TEXT else WsKind.BINARY, data))

    def _on_control(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if opcode == OP_PING:
            if transport is not None and not self._close_sent:
                transport.write(encode_frame(0xA, payload))
                self._owner.pongs_sent += 1
        elif opcode == OP_CLOSE:
            code, _reason = parse_close(payload)
            self.close_code = code
            self._send_close(CLOSE_OK if code == CLOSE_NO_STATUS else code)
            self._finish(WsMessage(WsKind.CLOSE, code))
            self._parser.stopped = True  # frames after a close frame are not delivered
            if transport is not None:
                transport.close()  # both close frames are out: the TCP connection has no more use

    def _protocol_error(self, exc: WsProtocolError) -> None:
        self._owner.protocol_errors += 1
        self._error = exc
        self._send_close(exc.code, exc.reason)
        self._finish(WsMessage(WsKind.ERROR, None))
        if self._transport is not None:
            self._transport.close()

    def _send_close(self, code: int, reason: str = "") -> None:
        if not self._close_sent and self._transport is not None and not self._transport.is_closing():
            self._close_sent = True
            self._transport.write(encode_frame(OP_CLOSE, close_payload(code, reason)))

    def _finish(self, last: WsMessage) -> None:
        if self._final is None:
            self._queue.append(last)
            self._final = _CLOSED
            self._closed = True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the feed's WsSocket ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def receive(self) -> WsMessage:
        queue = self._queue
        while not queue:
            if self._final is not None:
                return self._final
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        msg = queue.popleft()
        if self._paused and len(queue) <= RESUME_AT and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return msg

    def take_text(self, limit: int) -> list[str]:
        """The text frames at the head of the queue (at most ``limit``), popped without waiting."""
        queue, text = self._queue, WsKind.TEXT
        out: list[str] = []
        while queue and len(out) < limit and queue[0].type == text:
            out.append(queue.popleft().data)  # type: ignore[arg-type]
        if out and self._paused and len(queue) <= RESUME_AT and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return out

    async def send_str(self, text: str) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("websocket is closed")
        self._transport.write(encode_frame(OP_TEXT, text.encode()))

    async def close(self, code: int = CLOSE_OK) -> bool:
        """Start the close handshake, wait briefly for the server's end, then drop the connection."""
        if self._final is None:
            self._queue.clear()
            self._parser.on_text = _drop  # from now on only the server's close frame matters
            self._final = _CLOSED
            self._closed = True
            self._wake()
            self._send_close(code)
        if self._transport is not None and not self._lost.done():
            try:
                async with asyncio.timeout(self._owner.close_timeout_s):
                    await asyncio.shield(self._lost)
            except TimeoutError:
                self._transport.abort()
        return True

    def exception(self) -> BaseException | None:
        return self._error


class OwnWsTransport:
    """Opens :class:`OwnWsSocket` connections; counts protocol errors and pongs across them."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        max_size: int = 0,
        handshake_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.ssl_context = ssl_context
        self.max_size = max_size  # 0: no limit (the feed must take big snapshot-in-stream frames)
        self.handshake_timeout_s = handshake_timeout_s
        self.close_timeout_s = close_timeout_s
        self.protocol_errors = 0
        self.pongs_sent = 0

    async def connect(self, url: str) -> OwnWsSocket:
        secure, host, port, resource = split_ws_url(url)
        ctx = (self.ssl_context or ssl.create_default_context()) if secure else None
        default_port = 443 if secure else 80
        host_header = host if port == default_port else f"{host}:{port}"
        loop = asyncio.get_running_loop()
        sock = OwnWsSocket(self, host_header, resource)
        transport: asyncio.BaseTransport | None = None
        try:
            async with asyncio.timeout(self.handshake_timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: sock, host, port, ssl=ctx, server_hostname=host if ctx else None
                )
                await sock.handshake
        except BaseException:
            if transport is not None:
                cast(asyncio.Transport, transport).abort()
            raise
        return sock

    async def close(self) -> None:
        return None
