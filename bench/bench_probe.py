"""The probe's own overhead: WebSocket ping/pong p50 against a raw TCP echo round trip, same run.

Both run on loopback, under uvloop, on the same open-loop schedule, against minimal asyncio servers
in this process, so the difference is what the probe's client adds (framing, masking, matching,
scheduling). Target: probe WS ping/pong p50 <= 1.5 x raw TCP echo p50, so the tool's overhead does
not hide the network it measures. Clock: the monotonic clock of this machine.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from typing import Any, cast

from tickpath.clock import SystemClock
from tickpath.probe import ProbeConfig, run_probe
from tickpath.probe.schedule import MethodStats, OpenLoopSchedule
from tickpath.runtime import run

SAMPLES = 3000
ROUNDS = 5
WARMUP = 50
RATE = 200.0
TARGET_RATIO = 1.5
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class EchoServer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class MiniWsServer(asyncio.Protocol):
    """Just enough WebSocket server: the upgrade, then a pong for every (masked) client ping."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buf = bytearray()
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode()
            del self.buf[: end + 4]
            key = next(
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
            self.transport.write(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            self.upgraded = True
        while len(self.buf) >= 6:
            n = self.buf[1] & 0x7F  # pings are short: 7-bit length, masked
            if len(self.buf) < 6 + n:
                return
            opcode = self.buf[0] & 0x0F
            mask = self.buf[2:6]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.buf[6 : 6 + n]))
            del self.buf[: 6 + n]
            if opcode == 0x9:
                self.transport.write(struct.pack("!BB", 0x8A, n) + payload)
            elif opcode == 0x8:
                self.transport.close()


class EchoClient(asyncio.Protocol):
    """Raw TCP round trips of 8-byte counters, matched by value (several may be in flight)."""

    def __init__(self, clock: SystemClock) -> None:
        self.clock = clock
        self.buf = bytearray()
        self.waiters: dict[bytes, asyncio.Future[int]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = self.clock.monotonic_ns()
        self.buf += data
        while len(self.buf) >= 8:
            fut = self.waiters.pop(bytes(self.buf[:8]), None)
            del self.buf[:8]
            if fut is not None and not fut.done():
                fut.set_result(now)

    async def round_trip(self, payload: bytes) -> int:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiters[payload] = fut
        self.transport.write(payload)
        return await fut


async def _tcp_round(clock: SystemClock, port: int, n: int) -> MethodStats:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: EchoClient(clock), "127.0.0.1", port)
    stats = MethodStats.new("tcp-echo", ["127.0.0.1"])

    async def op(i: int, _t: str) -> int:
        return await client.round_trip(i.to_bytes(8, "big"))

    await OpenLoopSchedule(clock, rate=RATE, count=n, warmup=WARMUP, timeout=1.0).run(stats, op)
    client.transport.close()
    return stats


async def _ws_round(clock: SystemClock, port: int, n: int) -> MethodStats:
    # The probe itself, end to end, through the library API.
    result = await run_probe(
        ProbeConfig(
            venue="futures",
            methods=("ws",),
            rest_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}",
            samples=n,
            warmup=WARMUP,
            rate=RATE,
            timeout=1.0,
            imds=False,
            chrony=False,
        ),
        clock=clock,
    )
    if result.errors:
        raise RuntimeError(f"probe failed: {result.errors}")
    return result.stats["ws"]


async def _measure() -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    clock = SystemClock()
    echo = await loop.create_server(EchoServer, "127.0.0.1", 0)
    ws = await loop.create_server(MiniWsServer, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]
    ws_port = ws.sockets[0].getsockname()[1]
    tcp_p50: list[int] = []
    ws_p50: list[int] = []
    tcp_all = MethodStats.new("tcp-echo", ["all"])
    ws_all = MethodStats.new("ws", ["all"])
    try:
        # Alternate short rounds so background load on a shared machine hits both alike.
        for _ in range(ROUNDS):
            t = await _tcp_round(clock, echo_port, SAMPLES // ROUNDS)
            w = await _ws_round(clock, ws_port, SAMPLES // ROUNDS)
            tcp_p50.append(t.overall.latency.percentile(50))
            ws_p50.append(w.overall.latency.percentile(50))
            for dst, src in ((tcp_all, t), (ws_all, w)):
                dst.overall.latency.merge(src.overall.latency)
                dst.overall.total_ns += src.overall.total_ns
    finally:
        echo.close()
        ws.close()
    tcp_s = tcp_all.overall.summary()
    ws_s = ws_all.overall.summary()
    ratio = ws_s.p50_ns / tcp_s.p50_ns if tcp_s.p50_ns else float("inf")
    return {
        "samples": SAMPLES,
        "rounds": ROUNDS,
        "rate_per_s": RATE,
        "clock": "monotonic (loopback, uvloop)",
        "tcp_echo_p50_us": round(tcp_s.p50_ns / 1e3, 2),
        "tcp_echo_p99_us": round(tcp_s.p99_ns / 1e3, 2),
        "ws_ping_p50_us": round(ws_s.p50_ns / 1e3, 2),
        "ws_ping_p99_us": round(ws_s.p99_ns / 1e3, 2),
        "tcp_round_p50s_us": [round(v / 1e3, 1) for v in tcp_p50],
        "ws_round_p50s_us": [round(v / 1e3, 1) for v in ws_p50],
        "ws_losses": ws_s.losses,
        "tcp_losses": tcp_s.losses,
        "ratio_p50": round(ratio, 3),
        "target": f"ws ping/pong p50 <= {TARGET_RATIO} x raw TCP echo p50",
        "ok": ratio <= TARGET_RATIO,
    }


def main() -> dict[str, Any]:
    figures = run(_measure(), handle_signals=False)
    print(f"raw TCP echo RTT   p50 {figures['tcp_echo_p50_us']:>8.1f} µs  p99 {figures['tcp_echo_p99_us']:>8.1f} µs")
    print(f"probe WS ping/pong p50 {figures['ws_ping_p50_us']:>8.1f} µs  p99 {figures['ws_ping_p99_us']:>8.1f} µs")
    print(f"ratio p50 {figures['ratio_p50']:.2f} (target <= {TARGET_RATIO}): {'ok' if figures['ok'] else 'MISSED'}")
    return figures


if __name__ == "__main__":
    main()
