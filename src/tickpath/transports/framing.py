"""RFC 6455 client framing in pure Python: the upgrade handshake's key/accept, masked client frames,
and an incremental parser of the server's (unmasked) frames.

The parser is written for the feed's steady path: a ``data_received`` chunk usually holds whole
frames, so it is parsed in place (one slice and one decode per frame, no intermediate buffer copy);
only a frame split across chunks is carried over. Everything the RFC makes a protocol error (a
masked server frame, RSV bits with no extension negotiated, an unknown opcode, a fragmented or
oversized control frame, a continuation with nothing to continue, invalid UTF-8 in a text message,
a frame over ``max_size``) raises :class:`WsProtocolError` with the close code to send.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

CLOSE_OK = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006
CLOSE_INVALID_TEXT = 1007
CLOSE_TOO_BIG = 1009


class WsProtocolError(ConnectionError):
    """The server broke the WebSocket protocol; ``code`` is the close code the client sends.

    A ``ConnectionError`` (an ``OSError``), so the feed's reconnect loop treats it like a reset."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"websocket protocol error {code}: {reason}")
        self.code = code
        self.reason = reason


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final client frame, masked (RFC 6455 5.3: a client masks everything it sends)."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + mask + apply_mask(payload, mask)


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte mask, as one big-integer operation (no per-byte loop)."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()[:123]


# on_message(opcode, payload): TEXT gets a str, BINARY bytes; control frames go to on_control.
MessageSink = Callable[[int, "str | bytes"], None]
ControlSink = Callable[[int, bytes], None]


class FrameParser:
    """Feeds server bytes in, calls ``on_message`` per complete data message and ``on_control``
    per control frame (close, ping, pong). Raises :class:`WsProtocolError`."""

    def __init__(
        self,
        on_message: MessageSink,
        on_control: ControlSink,
        max_size: int = 0,
        on_text: Callable[[str], None] | None = None,
    ) -> None:
        self.on_message = on_message
        self.on_control = on_control
        # the steady path's sink for an unfragmented text frame: one call, no opcode argument
        self.on_text = on_text or (lambda text: on_message(OP_TEXT, text))
        self.max_size = max_size or (1 << 62)  # 0: no limit but the 63-bit length field
        self.stopped = False  # set by the owner on a close frame: nothing after it is delivered
        self._rest = b""  # bytes of a frame not complete yet
        self._parts: list[bytes] = []  # a fragmented message so far
        self._part_op = -1  # its opcode; -1: no message in progress
        self._part_len = 0
        self.frames = 0

    def feed(self, data: bytes) -> None:
        buf = self._rest + data if self._rest else data
        view = memoryview(buf)
        end = len(buf)
        pos = 0
        count = 0
        max_size = self.max_size
        on_text = self.on_text
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (buf[head] << 8) | buf[head + 1]
                head += 2
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            if b1 & 0x80:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "the server masked a frame")
            if length > max_size:
                raise WsProtocolError(CLOSE_TOO_BIG, f"frame of {length} bytes over the {max_size} limit")
            stop = head + length
            if stop > end:
                break
            pos = stop
            count += 1
            if b0 == 0x81 and self._part_op < 0:  # the steady path: one final unfragmented text frame
                try:
                    text = str(view[head:stop], "utf-8")
                except UnicodeDecodeError:
                    raise WsProtocolError(CLOSE_INVALID_TEXT, "invalid UTF-8 in a text message") from None
                on_text(text)
            else:
                self._frame(b0, buf[head:stop])
                if self.stopped:
                    break
        self.frames += count
        self._rest = buf[pos:] if pos < end and not self.stopped else b""

    def _frame(self, b0: int, payload: bytes) -> None:
        if b0 & 0x70:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "RSV bits set with no extension negotiated")
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        if opcode >= 8:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown control opcode {opcode}")
            if not fin or len(payload) > 125:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented or oversized control frame")
            self.on_control(opcode, payload)
            return
        if opcode == OP_CONT:
            if self._part_op < 0:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "continuation frame with no message to continue")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._part_op >= 0:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "new data frame inside a fragmented message")
            self._part_op = opcode
        else:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown data opcode {opcode}")
        self._part_len += len(payload)
        if self._part_len > self.max_size:
            raise WsProtocolError(CLOSE_TOO_BIG, f"message over the {self.max_size} byte limit")
        self._parts.append(payload)
        if fin:
            op, whole = self._part_op, b"".join(self._parts)
            self._parts, self._part_op, self._part_len = [], -1, 0
            if op == OP_BINARY:
                self.on_message(op, whole)
                return
            try:
                text = whole.decode("utf-8")
            except UnicodeDecodeError:
                raise WsProtocolError(CLOSE_INVALID_TEXT, "invalid UTF-8 in a text message") from None
            self.on_message(op, text)


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame; 1005 when it carries none."""
    if not payload:
        return CLOSE_NO_STATUS, ""
    if len(payload) == 1:
        raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code < 1000 or code in (1004, 1005, 1006) or 1015 <= code < 3000 or code >= 5000:
        raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WsProtocolError(CLOSE_INVALID_TEXT, "invalid UTF-8 in a close reason") from None
