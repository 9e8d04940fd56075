"""WebSockets over picows (a Cython client, ``pip install tickpath[picows]``), as a :class:`WsSocket`.

picows calls a listener per *frame*; the feed awaits ``receive()`` per *message*. The listener turns
frames into messages (continuations reassembled) in a deque that ``receive()`` pops without
suspending while it is not empty. picows answers pings itself (``enable_auto_pong``), offers no
extension (permessage-deflate off), verifies TLS with the context given (a default verifying one
for ``wss://`` when none is), and enforces ``max_frame_size``; a frame that breaks the protocol
makes picows send close 1002 and disconnect, which is counted here and surfaces as an ERROR message,
so the feed reconnects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any

from tickpath.transports.base import WsKind, WsMessage

try:  # optional: the default transport does not need it
    import picows
except ImportError:  # pragma: no cover - exercised only without the extra installed
    picows = None  # type: ignore[assignment]

PAUSE_AT = 4096
RESUME_AT = 1024
_CLOSED = WsMessage(WsKind.CLOSED, None)
PICOWS_MAX_FRAME = 1 << 31  # picows needs a bound; a depth snapshot-in-stream is far below it


def available() -> bool:
    return picows is not None


class PicowsSocket(picows.WSListener if picows is not None else object):  # type: ignore[misc]
    """The picows listener and the feed's socket in one object."""

    def __init__(self, owner: PicowsWsTransport) -> None:
        self._owner = owner
        self._ws: Any = None
        self._queue: deque[WsMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._final: WsMessage | None = None
        self._error: BaseException | None = None
        self._paused = False
        self._parts: list[bytes] = []
        self._part_kind = 0
        self.close_code: int | None = None

    # -- picows callbacks -------------------------------------------------------------------------

    def on_ws_connected(self, transport: Any) -> None:
        self._ws = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        mt = frame.msg_type
        if frame.rsv1 or frame.rsv2 or frame.rsv3:  # picows leaves RSV checks to the user (for deflate)
            self._break(1002, "RSV bits set with no extension negotiated")
        elif mt == _TEXT and frame.fin and not self._parts:
            self._push(WsMessage(WsKind.TEXT, frame.get_payload_as_utf8_text()))
        elif mt in (_TEXT, _BINARY, _CONT):
            self._fragment(mt, frame)
        elif mt == _CLOSE:
            self.close_code = code = frame.get_close_code().value
            transport.send_close(frame.get_close_code() if code else _CLOSE_OK)
            transport.disconnect()
            self._finish(WsMessage(WsKind.CLOSE, code))
        # PING: answered by picows (enable_auto_pong); PONG: nothing to do
        if not self._paused and len(self._queue) >= PAUSE_AT:
            self._paused = True
            transport.underlying_transport.pause_reading()

    def _fragment(self, mt: Any, frame: Any) -> None:
        if (mt == _CONT) != bool(self._parts):  # picows hands frames over unchecked for this rule
            self._break(1002, "continuation of nothing, or a new message inside a fragmented one")
            return
        if mt != _CONT:
            self._part_kind = WsKind.TEXT if mt == _TEXT else WsKind.BINARY
        self._parts.append(frame.get_payload_as_bytes())
        if frame.fin:
            whole = b"".join(self._parts)
            self._parts = []
            if self._part_kind == WsKind.TEXT:
                try:
                    self._push(WsMessage(WsKind.TEXT, whole.decode("utf-8")))
                except UnicodeDecodeError:
                    self._break(1007, "invalid UTF-8 in a text message")
            else:
                self._push(WsMessage(WsKind.BINARY, whole))

    def _break(self, code: int, reason: str) -> None:
        """A protocol error picows did not catch: counted, close ``code`` sent, connection dropped."""
        if self._final is not None:
            return
        self._owner.protocol_errors += 1
        self._error = ConnectionError(f"websocket protocol error {code}: {reason}")
        self._ws.send_close(picows.WSCloseCode(code), reason.encode())
        self._ws.disconnect()
        self._finish(WsMessage(WsKind.ERROR, None))

    def on_ws_disconnected(self, transport: Any) -> None:
        if self._final is None:
            sent = transport.close_handshake.sent if transport.close_handshake is not None else None
            if sent is not None and sent.code != _CLOSE_OK:
                self._owner.protocol_errors += 1  # picows closed on a protocol error
                self._error = ConnectionError(f"websocket protocol error {sent.code.value}: {sent.reason}")
            else:
                self._error = ConnectionResetError("connection closed without a close frame")
            self._finish(WsMessage(WsKind.ERROR, None))
        self._wake()

    def _push(self, msg: WsMessage) -> None:
        if self._final is None:
            self._queue.append(msg)
            self._wake()

    def _finish(self, last: WsMessage) -> None:
        if self._final is None:
            self._queue.append(last)
            self._final = _CLOSED
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the feed's WsSocket ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._final is not None

    async def receive(self) -> WsMessage:
        queue = self._queue
        while not queue:
            if self._final is not None:
                return self._final
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        msg = queue.popleft()
        if self._paused and len(queue) <= RESUME_AT:
            self._paused = False
            self._ws.underlying_transport.resume_reading()
        return msg

    def take_text(self, limit: int) -> list[str]:
        """The text frames at the head of the queue (at most ``limit``), popped without waiting."""
        queue, text = self._queue, WsKind.TEXT
        out: list[str] = []
        while queue and len(out) < limit and queue[0].type == text:
            out.append(queue.popleft().data)  # type: ignore[arg-type]
        if out and self._paused and len(queue) <= RESUME_AT:
            self._paused = False
            self._ws.underlying_transport.resume_reading()
        return out

    async def send_str(self, text: str) -> None:
        if self._final is not None or self._ws is None or self._ws.is_disconnected:
            raise ConnectionResetError("websocket is closed")
        self._ws.send(_TEXT, text.encode())

    async def close(self) -> bool:
        ws = self._ws
        if self._final is None:
            self._queue.clear()
            self._final = _CLOSED
            self._wake()
            if ws is not None and not ws.is_disconnected:
                ws.send_close(_CLOSE_OK)
                ws.disconnect()
        if ws is not None and not ws.is_disconnected:
            try:
                async with asyncio.timeout(self._owner.close_timeout_s):
                    await ws.wait_disconnected()
            except TimeoutError:
                ws.disconnect(graceful=False)
        return True

    def exception(self) -> BaseException | None:
        return self._error


if picows is not None:
    _TEXT, _BINARY, _CONT, _CLOSE = (
        picows.WSMsgType.TEXT,
        picows.WSMsgType.BINARY,
        picows.WSMsgType.CONTINUATION,
        picows.WSMsgType.CLOSE,
    )
    _CLOSE_OK = picows.WSCloseCode.OK


class PicowsWsTransport:
    """Opens picows connections; ``protocol_errors`` counts the ones closed for breaking the protocol."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        max_size: int = 0,
        handshake_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        if picows is None:
            raise ImportError("the picows transport needs picows: pip install 'tickpath[picows]'")
        self.ssl_context = ssl_context
        self.max_size = max_size or PICOWS_MAX_FRAME
        self.handshake_timeout_s = handshake_timeout_s
        self.close_timeout_s = close_timeout_s
        self.protocol_errors = 0

    async def connect(self, url: str) -> PicowsSocket:
        try:
            _, sock = await picows.ws_connect(
                lambda: PicowsSocket(self),
                url,
                ssl_context=self.ssl_context,
                websocket_handshake_timeout=self.handshake_timeout_s,
                enable_auto_pong=True,
                max_frame_size=self.max_size,
                use_aiofastnet=False,  # plain asyncio transports, as the other clients use
            )
        except picows.WSError as exc:  # handshake refused: a connection failure to the feed
            raise ConnectionError(str(exc)) from exc
        assert isinstance(sock, PicowsSocket)
        return sock

    async def close(self) -> None:
        return None
