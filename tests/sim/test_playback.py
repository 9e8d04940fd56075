"""``sim --prerender``: each connection is played from its own cursor, paced by its own reader.

Virtual time (tests/virtual_time.py) with real sockets: a reader that takes nothing is held at
its transport's high-water mark while another connection of the same playback is sent its whole
share at the timeline's pace; both get every frame of their streams, byte for byte and in order.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import itertools
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.sim import SimConfig, Simulator, payloads
from tickpath.sim import prerender as prerender_mod
from tickpath.sim.prerender import Playback, Timeline

_KINDS = ("depth@100ms", "trade", "bookTicker")


async def _raw_ws(url: str, path: str, rcvbuf: int | None = None) -> tuple[socket.socket, bytes]:
    """A WebSocket opened by hand on a bare socket: nothing reads it until the test does (a stream
    reader would drain it eagerly). Returns the socket and the bytes that came after the upgrade."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    sock = socket.socket()
    if rcvbuf is not None:  # a small fixed receive buffer: the kernel holds little for a reader that stalls
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode(),
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += await loop.sock_recv(sock, 1 << 16)
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    return sock, rest


def _split(data: bytes) -> list[bytes]:
    """Whole frames (header included); fails on a frame cut short."""
    out, pos = [], 0
    while pos < len(data):
        n, head = data[pos + 1] & 0x7F, 2
        if n == 126:
            n, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif n == 127:
            n, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        assert pos + head + n <= len(data), f"frame cut at byte {pos}"
        out.append(data[pos : pos + head + n])
        pos += head + n
    return out


def _expected(tl: Timeline, streams: set[str], start: int = 0) -> list[bytes]:
    """The frames of ``streams`` from timeline index ``start`` on."""
    return [f for i, (f, name) in enumerate(zip(tl.frames, tl.names, strict=True)) if name in streams and i >= start]


def _record_starts(pb: Playback, monkeypatch: pytest.MonkeyPatch) -> dict[Any, int]:
    """Per connection, the timeline index its cursor starts at (the clock's, at its first stream)."""
    starts: dict[Any, int] = {}
    subscribe = pb.subscribe

    def recording(sub: Any, name: str) -> None:
        starts.setdefault(sub, pb._g)
        subscribe(sub, name)

    monkeypatch.setattr(pb, "subscribe", recording)
    return starts


async def _until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait (virtual time) until ``cond()``: what comes over loopback can lag the clock's jumps."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.001)


async def _read_to(pb: Playback, sock: socket.socket, rest: bytes, last: bytes) -> list[bytes]:
    """The text frames up to ``last`` (read until it has come), then, once the playback has played
    to its end, whatever else the kernel holds (frames that should not have come)."""
    data, loop = rest, asyncio.get_running_loop()
    async with asyncio.timeout(600.0):
        while not data.endswith(last):
            b = await loop.sock_recv(sock, 1 << 16)
            assert b, "connection closed"
            data += b
    await _until(lambda: pb.position == pb.tl.times[-1])
    return [f for f in _split(data + _drain(sock)) if f[0] & 0x0F == 0x1]


async def _read_frames(sock: socket.socket, rest: bytes, nbytes: int) -> list[bytes]:
    """The text frames of the next ``nbytes`` (``rest`` first)."""
    chunks, got = [rest], len(rest)
    while got < nbytes:
        b = await asyncio.get_running_loop().sock_recv(sock, 1 << 16)
        assert b, "connection closed"
        chunks.append(b)
        got += len(b)
    return [f for f in _split(b"".join(chunks)) if f[0] & 0x0F == 0x1]


def _drain(sock: socket.socket) -> bytes:
    """Everything the kernel holds for ``sock`` now (it is non-blocking)."""
    chunks = []
    while True:
        try:
            b = sock.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        assert b, "connection closed"
        chunks.append(b)


def _first_of(frames: list[bytes], stream: str) -> bytes:
    key = f'{{"stream":"{stream}"'.encode()
    return next(f for f in frames if key in f[:60])


def _conn(sim: Simulator, path_part: str) -> Any:
    return next(c for c in sim._conns[("spot", "local")] if path_part in c.path)


@virtual_time
async def test_a_reader_that_takes_nothing_does_not_hold_another(
    virtual_clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 50x, one connection's reader stalls: it is held at the high-water mark (sent only part of
    its share) while the other is sent all of its share by the time the timeline has played, as
    fast as the clock says, not gated by the stalled one. Then the stalled one reads: it gets the
    rest, every frame of its streams in order, and its snapshot (taken while held) syncs with them."""
    monkeypatch.setattr(prerender_mod, "HOLD_BYTES", 16 << 10)
    monkeypatch.setattr(prerender_mod, "RUN_BYTES", 4 << 10)  # several writes per look
    cfg = SimConfig(
        venues=("spot",), universe="binance", universe_size=30, rate=40.0, book_levels=40, seed=3,
        prerender_s=20.0, prerender_speed=50.0, prerender_wait=True,
        ping_interval_s=3600.0, pong_timeout_s=3600.0,  # these bare clients answer no ping
    )  # fmt: skip
    async with Simulator(cfg, clock=virtual_clock) as sim:
        pb = sim.playbacks["spot"]
        starts = _record_starts(pb, monkeypatch)
        symbols = sorted(pb.hub.markets)
        shares = [{f"{s.lower()}@{k}" for s in symbols[i::2] for k in _KINDS} for i in (0, 1)]
        ep = sim.endpoint("spot")
        paths = ["/stream?streams=" + "/".join(sorted(share)) for share in shares]
        slow, slow_rest = await _raw_ws(ep.ws_url, paths[1], rcvbuf=8192)
        await _until(lambda: len(starts) == 1)  # the 101 goes before the server subscribes it
        slow_conn = _conn(sim, paths[1][:60])
        # small fixed kernel buffers on the stalled path (autotuning would absorb megabytes)
        slow_conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        fast, fast_rest = await _raw_ws(ep.ws_url, paths[0])
        await _until(lambda: len(starts) == 2)
        fast_conn = _conn(sim, paths[0][:60])
        # each connection's cursor starts where the clock was at its subscription: the first one at the
        # timeline's start, the second a little later if the clock moved while it connected (its
        # frames from there on are its share)
        assert starts[slow_conn] == 0
        expected = [_expected(pb.tl, share, starts[c]) for share, c in zip(shares, (fast_conn, slow_conn), strict=True)]
        sizes = [sum(map(len, e)) for e in expected]
        assert min(sizes) > 1 << 20  # far more than the high-water mark and the kernel's buffers
        # (a long virtual timeout: on a loaded machine loopback bytes can lag the virtual clock's jumps)
        got_fast = await asyncio.wait_for(_read_frames(fast, fast_rest, sizes[0]), 600.0)
        assert got_fast == expected[0]
        sent, due = pb.reader_stats(slow_conn)
        # the fast one has all of its share while the stalled one is held at the mark with most of its
        # share unsent: it held nobody else (with one playback gated by its slowest reader, the fast
        # one could not have finished)
        assert due == len(expected[1]) and sent < due // 4
        assert pb.held_s > 0 and pb.position < pb.tl.times[-1]
        symbol = symbols[1]
        snap_uid = pb.uid_now(symbol)  # what a REST snapshot reads for a symbol of the held reader
        assert snap_uid < pb.tl.base_uid[symbol] + len(pb.tl.steps[symbol])
        got_slow = await asyncio.wait_for(_read_frames(slow, slow_rest, sizes[1]), 600.0)
        assert got_slow == expected[1]
        await asyncio.sleep(0.05)
        assert pb.position == pb.tl.times[-1]
        _assert_syncs(got_slow, symbol.lower(), snap_uid)
        for sock in (slow, fast):
            sock.close()


def _assert_syncs(frames: list[bytes], lower: str, snap_uid: int) -> None:
    """A depth diff of ``lower`` on the connection bridges the snapshot (U <= id + 1 <= u)."""
    import orjson

    diffs = []
    for f in frames:
        head = 2 if f[1] & 0x7F < 126 else 4 if f[1] & 0x7F == 126 else 10
        msg = orjson.loads(f[head:])
        if msg["stream"] == f"{lower}@depth@100ms":
            diffs.append((msg["data"]["U"], msg["data"]["u"]))
    assert any(first <= snap_uid + 1 <= last for first, last in diffs), (snap_uid, diffs[:5])
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(diffs))  # in order, no gap


@virtual_time
async def test_a_stream_subscribed_later_starts_where_its_connection_is(
    virtual_clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SUBSCRIBE on a connection adds that stream's frames from the connection's own position on,
    merged in timeline order with what it already reads: the connection's frames stay in order."""
    cfg = SimConfig(
        venues=("spot",), universe="binance", universe_size=6, rate=20.0, book_levels=40, seed=4,
        prerender_s=4.0, prerender_speed=1.0, prerender_wait=True,
    )  # fmt: skip
    async with Simulator(cfg, clock=virtual_clock) as sim:
        pb: Playback = sim.playbacks["spot"]
        a, b = sorted(pb.hub.markets)[:2]
        first = {f"{a.lower()}@{k}" for k in _KINDS}
        later = f"{b.lower()}@depth@100ms"
        positions: list[int] = []  # the connection's position when the SUBSCRIBE reaches the playback
        subscribe = pb.subscribe

        def recording(sub: Any, name: str) -> None:
            if name == later:
                positions.append(pb._readers[sub].pos_g)
            subscribe(sub, name)

        monkeypatch.setattr(pb, "subscribe", recording)
        sock, rest = await _raw_ws(sim.endpoint("spot").ws_url, "/stream?streams=" + "/".join(sorted(first)))
        loop = asyncio.get_running_loop()
        await asyncio.sleep(2.0)
        at = pb.sent  # frames of the timeline due when the SUBSCRIBE is sent
        body = b'{"method":"SUBSCRIBE","params":["' + later.encode() + b'"],"id":1}'
        await loop.sock_sendall(sock, bytes([0x81, 0x80 | len(body)]) + b"\0\0\0\0" + body)  # a zero mask
        await _until(lambda: bool(positions))  # (loopback bytes can lag the clock's jumps)
        names = pb.tl.names
        (start,) = positions
        assert start >= at  # not before the SUBSCRIBE
        want = [f for i, f in enumerate(pb.tl.frames) if names[i] in first or (names[i] == later and i >= start)]
        got = await _read_to(pb, sock, rest, want[-1])
        reply = payloads.ws_frame(b'{"result":null,"id":1}')
        assert got.count(reply) == 1
        got.remove(reply)
        assert got == want and sum(names[i] == later for i in range(start, len(names))) > 5
        sock.close()


@virtual_time
async def test_an_unsubscribed_stream_stops_and_the_others_go_on(virtual_clock: VirtualClock) -> None:
    """UNSUBSCRIBE mid-play: that stream's frames stop (none after the answer), the connection's
    other streams carry on from where it was, every frame of theirs in order."""
    cfg = SimConfig(
        venues=("spot",), universe="binance", universe_size=6, rate=20.0, book_levels=40, seed=4,
        prerender_s=4.0, prerender_speed=1.0, prerender_wait=True,
    )  # fmt: skip
    async with Simulator(cfg, clock=virtual_clock) as sim:
        pb: Playback = sim.playbacks["spot"]
        a, b = sorted(pb.hub.markets)[:2]
        keep = {f"{a.lower()}@{k}" for k in _KINDS}
        dropped = f"{b.lower()}@bookTicker"
        path = "/stream?streams=" + "/".join(sorted({*keep, dropped}))
        sock, rest = await _raw_ws(sim.endpoint("spot").ws_url, path)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(2.0)
        body = b'{"method":"UNSUBSCRIBE","params":["' + dropped.encode() + b'"],"id":7}'
        await loop.sock_sendall(sock, bytes([0x81, 0x80 | len(body)]) + b"\0\0\0\0" + body)
        got = await _read_to(pb, sock, rest, _expected(pb.tl, keep)[-1])  # (loopback can lag the clock)
        reply = payloads.ws_frame(b'{"result":null,"id":7}')
        cut = got.index(reply)
        names = pb.tl.names
        assert [f for f in got if f != reply and dropped.encode() not in f[:40]] == _expected(pb.tl, keep)
        assert not any(dropped.encode() in f[:40] for f in got[cut:])  # nothing of it after the answer
        assert sum(dropped.encode() in f[:40] for f in got[:cut]) > 3 and dropped in names
        sock.close()


class _Hub:
    """What Playback asks of a hub, for driving it look by look."""

    venue = "spot"
    speeds = (100,)
    frames_sent = 0

    def __init__(self) -> None:
        self.subs: dict[str, set[Any]] = {}

    def subscribe(self, sub: Any, name: str) -> None:
        self.subs.setdefault(name, set()).add(sub)

    def unsubscribe(self, sub: Any, name: str) -> None:
        self.subs.get(name, set()).discard(sub)

    def drop_subscriber(self, sub: Any) -> None:
        pass


class _Sub:
    combined = True
    transport = None  # no backlog: only the re-indexing decides what it is sent

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def push(self, data: bytes) -> None:
        self.got.append(data)

    def flush(self) -> None:
        pass


def _two_streams() -> Timeline:
    """40 frames 10 ms apart, ``x@trade`` and ``y@trade`` in turn; each frame is its own bytes."""
    tl = Timeline()
    for i in range(40):
        name = "x@trade" if i % 2 else "y@trade"
        tl.times.append(i * 0.01)
        tl.names.append(name)
        tl.frames.append(f"{name}:{i};".encode())
    tl.recorded = {"x@trade", "y@trade"}
    return tl


def _look(pb: Playback, t: float) -> None:
    """One look of the playback with the clock at ``t`` (what Playback._play does per wake-up)."""
    pb.due = t
    pb._g = bisect.bisect_right(pb.tl.times, t + 1e-9)
    pb._serve(t)


def _frames_of(tl: Timeline, streams: set[str], lo: int = 0, hi: int | None = None) -> bytes:
    return b"".join(
        f
        for i, (f, n) in enumerate(zip(tl.frames, tl.names, strict=True))
        if n in streams and lo <= i < (hi or len(tl.frames))
    )


def test_connections_unsubscribing_in_the_same_tick_each_stop_at_once() -> None:
    """Two connections UNSUBSCRIBE the same stream between two looks: neither is sent one more frame
    of it (one re-index per look: the one not re-indexed yet is sent nothing until it is), and each
    still gets every frame of its other stream, in order."""
    tl = _two_streams()
    pb = Playback(_Hub(), tl)  # type: ignore[arg-type]
    a, b = _Sub(), _Sub()
    for s in (a, b):
        pb.subscribe(s, "x@trade")
        pb.subscribe(s, "y@trade")
    for t in (0.0, 0.0, 0.05, 0.10):
        _look(pb, t)
    cut = pb._g  # frames due when the UNSUBSCRIBEs arrive: both have been sent all of them
    assert [b"".join(s.got) for s in (a, b)] == [_frames_of(tl, {"x@trade", "y@trade"}, hi=cut)] * 2
    before = [len(a.got), len(b.got)]
    for s in (b, a):
        pb.unsubscribe(s, "y@trade")
    for t in (0.15, 0.16, 0.20, 0.39, 0.39):
        _look(pb, t)
    for s, n in zip((a, b), before, strict=True):
        after = b"".join(s.got[n:])
        assert b"y@trade" not in after
        assert after == _frames_of(tl, {"x@trade"}, lo=cut)  # the other stream complete, in order


def test_connections_subscribing_in_the_same_tick_each_start_where_they_are() -> None:
    """Two connections SUBSCRIBE a stream between two looks: each gets it from its own position at
    the SUBSCRIBE on (the one re-indexed a look later is not moved past that position meanwhile),
    merged in timeline order with what it already reads."""
    tl = _two_streams()
    pb = Playback(_Hub(), tl)  # type: ignore[arg-type]
    a, b = _Sub(), _Sub()
    for s in (a, b):
        pb.subscribe(s, "x@trade")
    for t in (0.0, 0.0, 0.05, 0.10):
        _look(pb, t)
    at = pb._g
    assert [b"".join(s.got) for s in (a, b)] == [_frames_of(tl, {"x@trade"}, hi=at)] * 2
    for s in (a, b):
        pb.subscribe(s, "y@trade")
    for t in (0.15, 0.16, 0.20, 0.39, 0.39):
        _look(pb, t)
    for s in (a, b):
        want = _frames_of(tl, {"x@trade"}, hi=at) + _frames_of(tl, {"x@trade", "y@trade"}, lo=at)
        assert b"".join(s.got) == want
        n = sum(1 for i, name in enumerate(tl.names) if name == "x@trade" or i >= at)
        assert pb.reader_stats(s) == (n, n)  # every frame of its streams due is sent
