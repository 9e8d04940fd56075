"""The lean HTTP/WebSocket client: framing, masking, parsing, upgrade and ping/pong."""

from __future__ import annotations

import asyncio
import struct

import pytest

from tickpath.clock import ManualClock, SystemClock
from tickpath.errors import HandshakeError
from tickpath.probe.wire import WireProtocol, encode_frame, mask_payload, open_wire, ws_upgrade


class _Sink(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.data += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes([b0, n]) + payload
    if n < 65536:
        return bytes([b0, 126]) + struct.pack("!H", n) + payload
    return bytes([b0, 127]) + struct.pack("!Q", n) + payload


def _decode_client_frame(frame: bytes) -> tuple[int, bytes]:
    n = frame[1] & 0x7F
    pos = 2
    if n == 126:
        n, pos = struct.unpack("!H", frame[2:4])[0], 4
    elif n == 127:
        n, pos = struct.unpack("!Q", frame[2:10])[0], 10
    assert frame[1] & 0x80, "client frames must be masked"
    mask = frame[pos : pos + 4]
    return frame[0] & 0x0F, mask_payload(frame[pos + 4 : pos + 4 + n], mask)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536])
def test_client_frames_are_masked_and_length_encoded(size: int) -> None:
    """Client frames carry a mask and the right 7/16/64-bit length for any payload size."""
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    opcode, decoded = _decode_client_frame(encode_frame(0x1, payload))
    assert opcode == 0x1 and decoded == payload


async def _ws_proto(clock: ManualClock) -> tuple[WireProtocol, _Sink]:
    proto = WireProtocol(clock)
    sink = _Sink()
    proto.connection_made(sink)
    proto._ws = True
    return proto, sink


async def test_text_frames_fragmented_and_split_reach_the_handler_with_receipt_time() -> None:
    """Messages split across reads and across continuation frames arrive whole, stamped on arrival."""
    clock = ManualClock(start_ns=10, wall_offset_ns=1_000)
    proto, _ = await _ws_proto(clock)
    got: list[tuple[bytes, int]] = []
    proto.on_message = lambda payload, wall: got.append((payload, wall))
    data = _server_frame(0x1, b'{"a":', fin=False) + _server_frame(0x0, b"1}") + _server_frame(0x1, b"x" * 300)
    proto.data_received(data[:3])
    clock.advance(5)
    proto.data_received(data[3:])
    assert got == [(b'{"a":1}', 1_015), (b"x" * 300, 1_015)]
    assert proto.messages == 2


async def test_server_ping_is_answered_and_pong_resolves_matching_ping() -> None:
    """A server ping gets a pong with its payload; our ping resolves only on its own payload."""
    clock = ManualClock(start_ns=100)
    proto, sink = await _ws_proto(clock)
    proto.data_received(_server_frame(0x9, b"hb"))
    assert _decode_client_frame(bytes(sink.data)) == (0xA, b"hb")
    sink.data.clear()
    task = asyncio.create_task(proto.ping(b"\x00" * 7 + b"\x07"))
    await asyncio.sleep(0)
    assert _decode_client_frame(bytes(sink.data)) == (0x9, b"\x00" * 7 + b"\x07")
    clock.advance(42)
    proto.data_received(_server_frame(0xA, b"other"))
    assert not task.done()
    proto.data_received(_server_frame(0xA, b"\x00" * 7 + b"\x07"))
    assert await task == 142


async def test_chunked_http_response_is_parsed() -> None:
    """A chunked HTTP/1.1 body is reassembled and the response resolves the pending request."""
    proto = WireProtocol(SystemClock())
    sink = _Sink()
    proto.connection_made(sink)
    task = asyncio.create_task(proto.request("GET", "/x", "h"))
    await asyncio.sleep(0)
    assert bytes(sink.data).startswith(b"GET /x HTTP/1.1\r\nHost: h\r\n")
    proto.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab")
    proto.data_received(b"cd\r\n2\r\nef\r\n0\r\n\r\n")
    resp = await task
    assert resp.status == 200 and resp.body == b"abcdef"


async def test_connection_loss_fails_pending_ping() -> None:
    """A ping waiting when the link drops fails with ConnectionClosedError instead of hanging."""
    proto, _ = await _ws_proto(ManualClock())
    task = asyncio.create_task(proto.ping(b"12345678"))
    await asyncio.sleep(0)
    proto.connection_lost(None)
    with pytest.raises(Exception, match="closed"):
        await task


async def test_ping_pong_against_real_server(local_venue) -> None:  # type: ignore[no-untyped-def]
    """Upgrade and ping/pong work against an independent WebSocket server (aiohttp)."""
    clock = SystemClock()
    proto = await open_wire(clock, "127.0.0.1", local_venue.port, tls=None, server_hostname="127.0.0.1")
    await ws_upgrade(proto, f"127.0.0.1:{local_venue.port}", "/ws")
    for i in range(5):
        sent = clock.monotonic_ns()
        done = await asyncio.wait_for(proto.ping(i.to_bytes(8, "big")), 2)
        assert done > sent
    proto.close()


async def test_refused_upgrade_is_a_handshake_error(local_venue) -> None:  # type: ignore[no-untyped-def]
    """A non-101 answer to the upgrade raises HandshakeError naming the status."""
    local_venue.ws_refuse = True
    proto = await open_wire(SystemClock(), "127.0.0.1", local_venue.port, tls=None, server_hostname="x")
    with pytest.raises(HandshakeError, match="403"):
        await ws_upgrade(proto, "127.0.0.1", "/ws/btcusdt@trade")
