"""The three WebSocket clients (tickpath's own framing, picows, aiohttp) against the same servers:
the simulator over TLS, and a scripted server for pings, close codes, fragmentation and protocol
errors. What the feed relies on is asserted the same way for each."""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest

from tickpath.errors import ConfigError
from tickpath.feed.connection import Backoff, FeedConnection
from tickpath.sim import SimConfig, Simulator
from tickpath.tlsclient import client_context
from tickpath.transports import WsKind, WsTransport, make_ws_transport, ws_transport_name
from tickpath.transports.picows_ws import available as picows_available

from .wsserver import Peer, ScriptedServer, close_frame, frame

NAMES = ["tickpath", "aiohttp"] + (["picows"] if picows_available() else [])
pytestmark = pytest.mark.timeout(30)


def _transport(name: str, ctx: ssl.SSLContext | None = None) -> WsTransport:
    return make_ws_transport(name, ssl_context=ctx)


async def _receive(ws: object, timeout: float = 3.0) -> object:
    return await asyncio.wait_for(ws.receive(), timeout)  # type: ignore[attr-defined]


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_simulator_frames_over_tls_verified_against_its_ca(name: str) -> None:
    cfg = SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=200.0, book_levels=50, tls=True)
    async with Simulator(cfg) as sim:
        ep = sim.endpoint("futures")
        assert ep.cafile and ep.ws_url.startswith("wss://")
        transport = _transport(name, client_context(ep.cafile))
        ws = await transport.connect(ep.raw_url("btcusdt@bookTicker"))
        try:
            for _ in range(5):
                msg = await _receive(ws)
                assert msg.type == WsKind.TEXT  # type: ignore[attr-defined]
                assert json.loads(msg.data)["e"] == "bookTicker"  # type: ignore[attr-defined]
        finally:
            await ws.close()
            await transport.close()
        assert ws.closed


async def test_a_certificate_from_an_unknown_ca_is_refused_by_default(name: str) -> None:
    cfg = SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=50.0, book_levels=20, tls=True)
    async with Simulator(cfg) as sim:
        transport = _transport(name)  # no context: the system trust store, verification on
        try:
            with pytest.raises((ssl.SSLCertVerificationError, aiohttp.ClientConnectorCertificateError)):
                await transport.connect(sim.endpoint("futures").raw_url("btcusdt@bookTicker"))
        finally:
            await transport.close()


async def test_a_ping_is_answered_with_its_payload_and_messages_keep_flowing(name: str) -> None:
    pongs: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    async def script(peer: Peer) -> None:
        await peer.send(frame(9, b"are-you-there") + frame(1, b'{"a":1}'))
        pongs.put_nowait(await peer.read_frame())

    async with ScriptedServer(script) as srv:
        transport = _transport(name)
        ws = await transport.connect(srv.url)
        msg = await _receive(ws)
        assert (msg.type, msg.data) == (WsKind.TEXT, '{"a":1}')  # type: ignore[attr-defined]
        assert await asyncio.wait_for(pongs.get(), 3) == (10, b"are-you-there")
        await ws.close()
        await transport.close()


async def test_fragmented_messages_are_reassembled_around_a_control_frame(name: str) -> None:
    big = ("x" * 70_000).encode()  # a 64-bit length field on the last fragment

    async def script(peer: Peer) -> None:
        await peer.send(frame(1, b'{"part":', fin=False) + frame(9, b"p") + frame(0, b'"one"}', fin=True))
        await peer.send(frame(2, b"\x00\x01", fin=False) + frame(0, b"\x02", fin=True))
        await peer.send(frame(1, b"", fin=False) + frame(0, big[:1000], fin=False) + frame(0, big[1000:]))

    async with ScriptedServer(script) as srv:
        transport = _transport(name)
        ws = await transport.connect(srv.url)
        got = [await _receive(ws) for _ in range(3)]
        assert [(m.type, m.data) for m in got] == [  # type: ignore[attr-defined]
            (WsKind.TEXT, '{"part":"one"}'),
            (WsKind.BINARY, b"\x00\x01\x02"),
            (WsKind.TEXT, big.decode()),
        ]
        await ws.close()
        await transport.close()


async def test_a_server_close_gives_its_code_and_is_echoed(name: str) -> None:
    echoed: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    async def script(peer: Peer) -> None:
        await peer.send(frame(1, b"last") + close_frame(4001, "maintenance"))
        echoed.put_nowait(await peer.read_frame())

    async with ScriptedServer(script) as srv:
        transport = _transport(name)
        ws = await transport.connect(srv.url)
        assert (await _receive(ws)).data == "last"  # type: ignore[attr-defined]
        msg = await _receive(ws)
        assert (msg.type, msg.data) == (WsKind.CLOSE, 4001)  # type: ignore[attr-defined]
        opcode, payload = await asyncio.wait_for(echoed.get(), 3)
        # RFC 6455 7.4 only says an endpoint "typically" echoes the code: ours and picows do, aiohttp sends 1000
        assert opcode == 8 and int.from_bytes(payload[:2], "big") == (1000 if name == "aiohttp" else 4001)
        await ws.close()
        await transport.close()


async def test_a_client_close_sends_1000(name: str) -> None:
    got: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    async def script(peer: Peer) -> None:
        opcode, payload = await peer.read_frame()
        got.put_nowait((opcode, payload))
        await peer.send(close_frame(int.from_bytes(payload[:2], "big")))

    async with ScriptedServer(script) as srv:
        transport = _transport(name)
        ws = await transport.connect(srv.url)
        await ws.close()
        opcode, payload = await asyncio.wait_for(got.get(), 3)
        assert opcode == 8 and int.from_bytes(payload[:2], "big") == 1000
        await transport.close()


BAD_FRAMES = {
    "masked by the server": frame(1, b"{}", mask=True),
    "rsv bits with no extension": frame(1, b"{}", rsv=0x40),
    "unknown opcode": frame(3, b"{}"),
    "continuation of nothing": frame(0, b"{}"),
    "fragmented ping": frame(9, b"p", fin=False),
}


@pytest.mark.parametrize("bad", list(BAD_FRAMES), ids=list(BAD_FRAMES))
async def test_a_protocol_error_is_counted_and_the_feed_reconnects(name: str, bad: str) -> None:
    if name == "aiohttp" and bad == "masked by the server":
        pytest.skip("aiohttp's client accepts masked server frames (it unmasks them)")

    async def broken(peer: Peer) -> None:
        await peer.send(frame(1, b'{"n":1}') + BAD_FRAMES[bad])

    async def good(peer: Peer) -> None:
        await peer.send(frame(1, b'{"n":2}'))

    received: list[str] = []

    def on_frame(text: str, wall: int, mono: int, conn: FeedConnection) -> None:
        received.append(text)

    async with ScriptedServer(broken, good) as srv:
        transport = _transport(name)
        conn = FeedConnection(
            "t", "", [], on_frame, transport=transport, backoff=Backoff(base_s=0.01, max_s=0.02), seed=1
        )
        conn.base_url = srv.url  # the scripted server serves any path
        task = asyncio.create_task(conn.run())
        for _ in range(300):
            if len(received) >= 2:
                break
            await asyncio.sleep(0.01)
        await conn.stop()
        await asyncio.wait_for(task, 5)
        await transport.close()
    assert received == ['{"n":1}', '{"n":2}']
    assert conn.reconnects == 1
    first = srv.peers[0]
    if name != "aiohttp":
        assert transport.protocol_errors == 1  # type: ignore[attr-defined]
    closes = [p for op, p in first.received if op == 8]
    assert not closes or int.from_bytes(closes[0][:2], "big") == 1002


async def test_a_wrong_accept_key_fails_the_connect() -> None:
    async def script(peer: Peer) -> None:
        await peer.send(frame(1, b"{}"))

    async with ScriptedServer(script, accept="d3Jvbmc=") as srv:
        for name in NAMES:
            transport = _transport(name)
            with pytest.raises((ConnectionError, aiohttp.ClientError)):
                await transport.connect(srv.url)
            await transport.close()


def test_the_transport_name_is_checked() -> None:
    assert ws_transport_name() in ("tickpath", "picows", "aiohttp")
    with pytest.raises(ConfigError, match="unknown WebSocket transport"):
        ws_transport_name("curl")


async def test_the_stale_watchdog_closes_a_silent_connection_and_the_feed_reconnects(name: str) -> None:
    async def silent(peer: Peer) -> None:
        await peer.send(frame(1, b'{"n":1}'))  # then nothing: a connection that looks alive

    received: list[str] = []

    def on_frame(text: str, wall: int, mono: int, conn: FeedConnection) -> None:
        received.append(text)

    async with ScriptedServer(silent) as srv:
        transport = _transport(name)
        conn = FeedConnection(
            "t", "", [], on_frame, transport=transport, stale_after_s=0.2, backoff=Backoff(0.01, 0.02), seed=1
        )
        conn.base_url = srv.url
        task = asyncio.create_task(conn.run())
        for _ in range(300):
            if conn.stale_closes >= 1 and len(received) >= 2:
                break
            await asyncio.sleep(0.01)
        await conn.stop()
        await asyncio.wait_for(task, 5)
        await transport.close()
    assert conn.stale_closes >= 1 and conn.reconnects >= 1 and received[:2] == ['{"n":1}', '{"n":1}']


@pytest.mark.parametrize("transport_name", [n for n in NAMES if n != "aiohttp"])
def test_tls_on_uvloop(transport_name: str) -> None:
    """The feed's CLI runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(test_simulator_frames_over_tls_verified_against_its_ca(transport_name))
