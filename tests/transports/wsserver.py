"""A scripted WebSocket server on a free local port: it does the upgrade, then sends exactly the
bytes a test gives (well-formed or not) and records what the client sent, unmasked. The three
client transports are driven by the same bytes, so each RFC 6455 rule is checked on all of them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = False) -> bytes:
    """One server frame, built by hand (so a test can also build a wrong one)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes((b0, m | n))
    elif n < 65536:
        head = bytes((b0, m | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, m | 127)) + n.to_bytes(8, "big")
    if mask:
        key = b"\x01\x02\x03\x04"
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(8, code.to_bytes(2, "big") + reason.encode())


@dataclass
class Peer:
    """The server's end of one connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: list[tuple[int, bytes]] = field(default_factory=list)  # (opcode, unmasked payload)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self, timeout: float = 3.0) -> tuple[int, bytes]:
        """The client's next frame; asserts it is masked, as RFC 6455 requires of a client."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        assert head[1] & 0x80, "client frame not masked"
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        key = await self.reader.readexactly(4)
        data = await self.reader.readexactly(n)
        got = (head[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(data)))
        self.received.append(got)
        return got


Script = Callable[[Peer], Awaitable[None]]


class ScriptedServer:
    """``async with ScriptedServer(script) as srv``: ``srv.url``; each connection runs the next script
    of ``scripts`` (the last one repeats); ``srv.peers`` in connection order."""

    def __init__(self, *scripts: Script, tls: ssl.SSLContext | None = None, accept: str | None = None) -> None:
        self.scripts = scripts
        self.tls = tls
        self.accept = accept  # a wrong Sec-WebSocket-Accept to answer, for the handshake check
        self.peers: list[Peer] = []
        self.done: list[asyncio.Future[None]] = []
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'wss' if self.tls else 'ws'}://localhost:{port}/ws/test"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._stop.set()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=3)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in head.split("\r\n")[1:] if ln)
        )
        key = fields["sec-websocket-key"]
        accept = self.accept or base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        peer = Peer(reader, writer)
        self.peers.append(peer)
        script = self.scripts[min(len(self.peers), len(self.scripts)) - 1]
        try:
            await script(peer)
            await self._answer_close(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer_close(self, peer: Peer) -> None:
        """Until the test ends: answer the client's close frame with the same code, as a server does."""
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                read = asyncio.ensure_future(peer.read_frame(timeout=3600))
                await asyncio.wait((read, stop), return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    return
                opcode, payload = read.result()
                if opcode == 8:
                    await peer.send(frame(8, payload[:2]))
                    return
        finally:
            stop.cancel()
