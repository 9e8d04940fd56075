"""The WebSocket transport's per-frame cost (#17): aiohttp, picows and tickpath's own framing.

Frames: the shared USD-M futures capture followed by ``MESSAGES`` depth/bookTicker/aggTrade frames
continuing it (``bench_feed``'s stream), all three transports receiving the same ones.

Sources, each in its own process:
- ``blast``: a raw local server that upgrades the connection and writes every frame, pre-encoded,
  in one ``sendall``: the server costs next to nothing, so the client is the bound. Yardstick: a
  client that reads the same bytes with an ``asyncio.Protocol`` and does not parse them at all (the
  event loop's own ceiling); each transport's ratio is to it, in the same run; best of 3 interleaved rounds.
- ``sim``: ``tickpath sim --replay --speed 0``, the frames the feed benchmarks use; here the
  simulator is usually the bound, its CPU seconds are reported next to the client's.
For each: frames per wall second from first to last frame and the client's CPU-µs per frame
(``time.process_time()`` of this process over that window).

``feed``: the whole feed (``tickpath.feed.Feed``) over each transport from ``sim --replay --speed 0``
into the DuckDB sink (``bench_feed``'s part (c)), with the feed's and the simulator's CPU seconds.

``BENCH_WS_PARTS`` (comma-separated, default ``blast,sim,feed``) runs only the named parts.
The machine is shared: compare ratios, not absolute figures, across runs.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_feed import _over_ws, _start_sim, _write_capture
from bench.common import calibration_ns, chosen_parts, proc_cpu_s
from tickpath.runtime import streaming_gc
from tickpath.transports import WS_TRANSPORTS, WsKind, make_ws_transport
from tickpath.venues.binance.capture import read_ws_capture

MESSAGES = 150_000
PARTS = ("blast", "sim", "feed")
ROUNDS = 3  # blast part: best of 3 interleaved rounds per transport
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _texts(capture: Path) -> list[str]:
    return [f.text for f in read_ws_capture(capture).frames if "@kline" not in f.text[:40]]


def _encode(texts: list[str]) -> bytes:
    """The server frames for ``texts``: final, unmasked text frames."""
    out = bytearray()
    for t in texts:
        b = t.encode()
        n = len(b)
        if n < 126:
            out += bytes((0x81, n))
        elif n < 65536:
            out += bytes((0x81, 126)) + n.to_bytes(2, "big")
        else:
            out += bytes((0x81, 127)) + n.to_bytes(8, "big")
        out += b
    return bytes(out)


UPGRADE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "


def blast_server(capture: str) -> None:
    """``python -m bench.bench_ws --blast CAPTURE``: prints its port, then per connection upgrades it
    and writes every frame at once; serves connections one after another until killed."""
    blob = _encode(_texts(Path(capture)))
    srv = socket.create_server(("127.0.0.1", 0))
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            key = next(
                ln.split(b":", 1)[1].strip()
                for ln in head.split(b"\r\n")
                if ln.lower().startswith(b"sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(UPGRADE + accept + b"\r\n\r\n" + blob)
            while conn.recv(65536):  # until the client closes
                pass


class _RawReader(asyncio.Protocol):
    """The yardstick: reads the bytes and counts them, no framing."""

    def __init__(self, want: int, done: asyncio.Future[tuple[float, float]]) -> None:
        self.want, self.got, self.done = want, 0, done
        self.t0 = self.c0 = 0.0

    def data_received(self, data: bytes) -> None:
        if not self.got:
            self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.got += len(data)
        if self.got >= self.want and not self.done.done():
            self.done.set_result((time.perf_counter() - self.t0, time.process_time() - self.c0))


async def _raw(port: int, want: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[float, float]] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _RawReader(want, done), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    transport.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
    transport.write(b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        return await asyncio.wait_for(done, 60)
    finally:
        transport.close()


async def _receive(name: str, url: str, count: int, server_pid: int | None) -> dict[str, Any]:
    """``count`` messages over transport ``name``: wall and client CPU from the first to the last."""
    gc.collect()
    with streaming_gc():  # the collector settings the feed runs with
        return await _receive_counted(name, url, count, server_pid)


async def _receive_counted(name: str, url: str, count: int, server_pid: int | None) -> dict[str, Any]:
    transport = make_ws_transport(name)
    ws = await transport.connect(url)
    try:
        msg = await ws.receive()
        t0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu_s(server_pid)
        n = 1
        text = WsKind.TEXT
        while n < count:
            msg = await ws.receive()
            if msg.type != text:
                raise RuntimeError(f"{name}: connection ended after {n} frames ({msg.type})")
            n += 1
        wall, cpu, server = time.perf_counter() - t0, time.process_time() - c0, proc_cpu_s(server_pid) - s0
    finally:
        await ws.close()
        await transport.close()
    return {
        "frames": n,
        "frames_per_s": round((n - 1) / wall),
        "cpu_us_per_frame": round(cpu / (n - 1) * 1e6, 2),
        "server_cpu_s": round(server, 3),
        "client_cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
    }


def _available() -> tuple[str, ...]:
    from tickpath.transports.picows_ws import available

    return tuple(n for n in WS_TRANSPORTS if n != "picows" or available())


async def _part_blast(capture: Path, names: tuple[str, ...]) -> dict[str, Any]:
    texts = _texts(capture)
    want = len(_encode(texts)) + len(UPGRADE) + 28 + 4  # the frames and the 101 response
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_ws", "--blast", str(capture)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        wall, cpu = min([await _raw(port, want) for _ in range(ROUNDS)], key=lambda wc: wc[1])
        raw = {"frames_per_s": round(len(texts) / wall), "cpu_us_per_frame": round(cpu / len(texts) * 1e6, 2)}
        out: dict[str, Any] = {"frames": len(texts), "raw_read": raw}
        for _ in range(ROUNDS):  # interleaved rounds, best of each: the machine is shared
            for name in names:
                r = await _receive(name, f"ws://127.0.0.1:{port}/", len(texts), proc.pid)
                if name not in out or r["cpu_us_per_frame"] < out[name]["cpu_us_per_frame"]:
                    out[name] = r
        for name in names:
            out[name]["ratio_to_raw_read"] = round(out[name]["frames_per_s"] / raw["frames_per_s"], 3)
        return out
    finally:
        proc.kill()
        proc.wait()


async def _part_sim(capture: Path, names: tuple[str, ...]) -> dict[str, Any]:
    url = read_ws_capture(capture).url
    streams = [s for s in url.split("streams=", 1)[1].split("/") if "@kline" not in s]
    count = len(_texts(capture))
    out: dict[str, Any] = {"frames": count}
    for name in names:
        proc, ep = _start_sim(capture, 0.0)
        try:
            out[name] = await _receive(name, f"{ep['ws_url']}/stream?streams={'/'.join(streams)}", count, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return out


async def _part_feed(capture: Path, expected: int, tmp: Path, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        os.environ["TICKPATH_WS_TRANSPORT"] = name  # FeedConnection builds its transport from it
        try:
            r = await _over_ws(capture, expected, 0.0, tmp / name, latency=False)
        finally:
            os.environ.pop("TICKPATH_WS_TRANSPORT", None)
        r.pop("receipt_to_enqueue_us", None)
        r["feed_cpu_us_per_frame"] = round(r["feed_cpu_s"] / max(1, r["frames"]) * 1e6, 2)
        out[name] = r
    return out


def _print(label: str, part: dict[str, Any], names: tuple[str, ...], key: str = "frames_per_s") -> None:
    rows = "; ".join(
        f"{n} {part[n][key]:,}/s, {part[n].get('cpu_us_per_frame', part[n].get('feed_cpu_us_per_frame'))} CPU-µs/frame"
        for n in names
    )
    print(f"{label}: {rows}")


async def _run() -> dict[str, Any]:
    parts = chosen_parts("BENCH_WS_PARTS", PARTS)
    names = _available()
    calib = calibration_ns()
    print(f"machine: {calib} CPU-ns per plain loop iteration; transports {', '.join(names)}")
    result: dict[str, Any] = {"calibration_ns": calib, "messages": MESSAGES}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        capture, expected, _ = _write_capture(tmp, MESSAGES, None)
        for name in names:
            (tmp / name).mkdir()
        if "blast" in parts:
            b = result["blast"] = await _part_blast(capture, names)
            print(f"raw read (yardstick): {b['raw_read']['frames_per_s']:,} frames/s")
            _print("blast server", b, names)
        if "sim" in parts:
            _print("sim --replay --speed 0", s := await _part_sim(capture, names), names)
            result["sim"] = s
        if "feed" in parts:
            f = result["feed"] = await _part_feed(capture, expected, tmp, names)
            _print("feed end to end into DuckDB", f, names, key="msgs_per_s")
    fastest = max(names, key=lambda n: result.get("blast", result.get("sim", {})).get(n, {}).get("frames_per_s", 0))
    result["fastest_receive"] = fastest
    result["ok"] = True
    return result


def main() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--blast"]:
        blast_server(sys.argv[2])
    else:
        print(main())
