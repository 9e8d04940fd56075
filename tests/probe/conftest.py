"""Local servers for probe tests: a minimal Binance-shaped venue (aiohttp) and a self-signed TLS cert."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import WSMsgType, web

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.sim.tls import generate as generate_tls


@dataclass
class LocalVenue:
    """What a test can steer and observe on the local venue."""

    port: int
    rest_url: str
    ws_url: str
    offset_ms: int = 0  # exchange clock minus local clock
    ws_refuse: bool = False
    time_status: int = 200
    stall_s: float = 0.0  # one REST ping answer held this long (then reset to 0)
    silent: bool = False  # streams accepted but no market data sent
    requests: dict[str, int] = field(default_factory=dict)


def make_app(state: LocalVenue, clock: Clock = DEFAULT_CLOCK) -> web.Application:
    async def ping(request: web.Request) -> web.Response:
        state.requests["ping"] = state.requests.get("ping", 0) + 1
        if state.stall_s:
            stall, state.stall_s = state.stall_s, 0.0
            await asyncio.sleep(stall)
        return web.json_response({})

    async def server_time(request: web.Request) -> web.Response:
        if state.time_status != 200:
            return web.json_response({"code": -1000, "msg": "boom"}, status=state.time_status)
        return web.json_response({"serverTime": clock.wall_ns() // 1_000_000 + state.offset_ms})

    async def ws(request: web.Request) -> web.StreamResponse:
        if state.ws_refuse:
            return web.Response(status=403, text="forbidden")
        sock = web.WebSocketResponse(autoping=True)
        await sock.prepare(request)
        streams = request.query.get("streams", "").split("/") if "streams" in request.query else []

        async def pump() -> None:
            n = 0
            while not sock.closed:
                now_ms = clock.wall_ns() // 1_000_000 + state.offset_ms
                for name in streams:
                    n += 1
                    data = {"e": name.split("@")[1], "E": now_ms, "T": now_ms, "s": "BTCUSDT", "u": n}
                    await sock.send_bytes(orjson.dumps({"stream": name, "data": data}))
                await asyncio.sleep(0.01)

        task = asyncio.create_task(pump()) if streams and not state.silent else None
        try:
            async for msg in sock:
                if msg.type == WSMsgType.CLOSE:
                    break
        finally:
            if task:
                task.cancel()
        return sock

    app = web.Application()
    for prefix in ("/api/v3", "/fapi/v1"):
        app.router.add_get(f"{prefix}/ping", ping)
        app.router.add_get(f"{prefix}/time", server_time)
    app.router.add_get("/ws", ws)
    app.router.add_get("/ws/{stream}", ws)
    app.router.add_get("/stream", ws)
    return app


@asynccontextmanager
async def serve_local_venue(clock: Clock = DEFAULT_CLOCK) -> AsyncIterator[LocalVenue]:
    """A Binance-shaped REST + WebSocket server on 127.0.0.1, free port, its times from ``clock``."""
    state = LocalVenue(0, "", "")
    runner = web.AppRunner(make_app(state, clock))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.port, state.rest_url, state.ws_url = port, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def local_venue() -> AsyncIterator[LocalVenue]:
    """The local venue on the real clock (tests in virtual time use serve_local_venue in their body)."""
    async with serve_local_venue() as state:
        yield state


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 'localhost' and 127.0.0.1 (the simulator's generator)."""
    material = generate_tls("127.0.0.1", tmp_path_factory.mktemp("tls"))
    return Cert(material.certfile, material.keyfile)


@pytest.fixture
async def tls_server(self_signed: Cert) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 that completes handshakes and closes; yields its port."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(self_signed.cert, self_signed.key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
        except (ConnectionError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
