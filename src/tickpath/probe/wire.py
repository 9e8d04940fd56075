"""A lean HTTP/1.1 and WebSocket client on one asyncio Protocol, aimed at one IP.

Why not aiohttp or websockets: the probe must (a) talk to a chosen IP while sending the venue's
host name as SNI and ``Host``, (b) stamp the receive time where bytes arrive, and (c) add as little
of its own overhead as possible to a ping/pong round trip, or the tool hides the network it
measures. This client does just enough: keep-alive GET with Content-Length or chunked bodies, the
WebSocket upgrade, masked client frames, ping/pong matched by payload, and text frames delivered
with their receipt time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from tickpath.clock import Clock
from tickpath.errors import ConnectionClosedError, ConnectionFailedError, ExchangeError, HandshakeError

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BIN, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# Called with (payload, receipt wall-clock ns) for every complete text/binary message.
MessageHandler = Callable[[bytes, int], None]


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    done_ns: int  # monotonic time the last byte arrived


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (RFC 6455 section 5.3), fast for any length."""
    n = len(payload)
    if not n:
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + mask_payload(payload, mask)


class WireProtocol(asyncio.Protocol):
    """Parses HTTP responses, then (after an upgrade) WebSocket frames, stamping receipt times."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._ws = False
        self._http_waiter: asyncio.Future[HttpResponse] | None = None
        self._pings: dict[bytes, asyncio.Future[int]] = {}
        self._frag: bytearray | None = None
        self.on_message: MessageHandler | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_reason = "connection closed"
        self.messages = 0

    # -- asyncio callbacks --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but offer the same API.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.close_reason = f"connection lost: {exc}"
        err = ConnectionClosedError(self.close_reason)
        if self._http_waiter is not None and not self._http_waiter.done():
            self._http_waiter.set_exception(err)
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(err)
        self._pings.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = self.clock.monotonic_ns()
        self._buf += data
        if self._ws:
            self._parse_frames(now, self.clock.wall_ns() if self.on_message else 0)
        else:
            self._parse_http(now)

    # -- HTTP ---------------------------------------------------------------------------------
    def _parse_http(self, now: int) -> None:
        waiter = self._http_waiter
        if waiter is None or waiter.done():
            return
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            waiter.set_exception(ExchangeError(f"malformed HTTP status line {head[0]!r}"))
            return
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body_start = end + 4
        if status == 101:
            body, consumed = b"", body_start
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if len(self._buf) < body_start + n:
                return
            body, consumed = bytes(self._buf[body_start : body_start + n]), body_start + n
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = _parse_chunked(self._buf, body_start)
            if parsed is None:
                return
            body, consumed = parsed
        else:
            body, consumed = b"", body_start
        del self._buf[:consumed]
        if status == 101:
            self._ws = True
        waiter.set_result(HttpResponse(status, headers, body, now))
        if self._ws and self._buf:
            self._parse_frames(now, self.clock.wall_ns())

    async def request(
        self, method: str, path: str, host: str, extra: dict[str, str] | None = None, body: bytes = b""
    ) -> HttpResponse:
        """Send one request on this kept-alive connection and wait for its response."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionClosedError(self.close_reason)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: tickpath-probe", "Accept: */*"]
        lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self._http_waiter = asyncio.get_running_loop().create_future()
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return await self._http_waiter

    # -- WebSocket ----------------------------------------------------------------------------
    def _parse_frames(self, now: int, wall: int) -> None:
        buf = self._buf
        while True:
            if len(buf) < 2:
                return
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = int.from_bytes(buf[2:10], "big")
                pos = 10
            if b1 & 0x80:  # servers must not mask, but tolerate it
                if len(buf) < pos + 4 + n:
                    return
                payload = mask_payload(bytes(buf[pos + 4 : pos + 4 + n]), bytes(buf[pos : pos + 4]))
                pos += 4
            else:
                if len(buf) < pos + n:
                    return
                payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            self._on_frame(b0 & 0x80 != 0, b0 & 0x0F, payload, now, wall)

    def _on_frame(self, fin: bool, opcode: int, payload: bytes, now: int, wall: int) -> None:
        if opcode == _OP_PONG:
            fut = self._pings.pop(payload, None)
            if fut is not None and not fut.done():
                fut.set_result(now)
        elif opcode == _OP_PING:
            self._send(_OP_PONG, payload)
        elif opcode == _OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.close_reason = f"server closed the WebSocket (code {code} {payload[2:].decode(errors='replace')})"
            self._send(_OP_CLOSE, payload[:2])
            if self.transport is not None:
                self.transport.close()
        elif opcode in (_OP_TEXT, _OP_BIN, _OP_CONT):
            if opcode != _OP_CONT:
                self._frag = None if fin else bytearray(payload)
            elif self._frag is not None:
                self._frag += payload
            if not fin:
                return
            if opcode == _OP_CONT:
                if self._frag is None:
                    return
                payload, self._frag = bytes(self._frag), None
            self.messages += 1
            if self.on_message is not None:
                self.on_message(payload, wall)

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self._send(_OP_TEXT, text.encode())

    async def ping(self, payload: bytes) -> int:
        """Send a ping with ``payload``; return the monotonic ns its pong arrived."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionClosedError(self.close_reason)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pings[payload] = fut
        try:
            self.transport.write(encode_frame(_OP_PING, payload))
            return await fut
        finally:
            self._pings.pop(payload, None)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self._ws:
                self._send(_OP_CLOSE, struct.pack("!H", 1000))
            self.transport.close()


def _parse_chunked(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            if end < 0:
                return None if buf.find(b"\r\n", eol + 2) < 0 else (bytes(body), eol + 4)
            return bytes(body), end + 4
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


async def tcp_connect(ip: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to ``ip:port`` (TCP_NODELAY set)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except OSError as exc:
        sock.close()
        raise ConnectionFailedError(f"TCP connect to {ip}:{port} failed: {exc.strerror or exc}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


async def open_wire(
    clock: Clock, ip: str, port: int, *, tls: ssl.SSLContext | None, server_hostname: str
) -> WireProtocol:
    """Connect to ``ip:port`` (TLS with SNI ``server_hostname`` when ``tls`` is given)."""
    sock = await tcp_connect(ip, port)
    loop = asyncio.get_running_loop()
    try:
        _, proto = await loop.create_connection(
            lambda: WireProtocol(clock), sock=sock, ssl=tls, server_hostname=server_hostname if tls else None
        )
    except ssl.SSLError as exc:
        sock.close()
        raise HandshakeError(f"TLS handshake with {server_hostname} at {ip}:{port} failed: {exc}") from exc
    except OSError as exc:
        sock.close()
        raise ConnectionFailedError(f"connection to {ip}:{port} failed: {exc}") from exc
    return proto


async def ws_upgrade(proto: WireProtocol, host: str, path: str) -> None:
    """Upgrade an open connection to a WebSocket; raise HandshakeError when refused."""
    key = base64.b64encode(os.urandom(16)).decode()
    resp = await proto.request(
        "GET",
        path,
        host,
        {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        },
    )
    if resp.status != 101:
        proto.close()
        detail = resp.body[:200].decode(errors="replace")
        raise HandshakeError(f"WebSocket upgrade to {host}{path} refused: HTTP {resp.status} {detail}".rstrip())
    expect = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
    if resp.headers.get("sec-websocket-accept") != expect:
        proto.close()
        raise HandshakeError(f"WebSocket upgrade to {host}{path}: bad Sec-WebSocket-Accept")
