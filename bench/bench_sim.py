"""Frames per second the simulator pushes to one client (target: 50,000 depth frames/s on one core).

The simulator runs in its own process (``tickpath sim``, uvloop, one core) with a market rate far
above what it can serve, so it runs flat out; the client is a raw socket in this process that
only splits WebSocket frames and counts them, so the client is not what is measured. Each frame is
a futures ``btcusdt@depth@0ms`` event (one update id per frame, generated, serialised and framed by
the simulator). The first second is warm-up and is discarded; frames are then counted for
``SECONDS``; ``u`` of the first and last frame checks that no update id was skipped.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

TARGET_FPS = 50_000
WARMUP_S = 1.0
SECONDS = 4.0


def _start_sim(rate: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "tickpath.cli.main",
        "sim",
        "--venue",
        "futures",
        "--symbols",
        "BTCUSDT",
        "--rate",
        str(rate),
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("tickpath sim did not start")
    return proc, json.loads(line)["endpoints"][0]["ws_url"]


def _handshake(ws_url: str, path: str) -> tuple[socket.socket, bytes]:
    u = urlsplit(ws_url)
    sock = socket.create_connection((u.hostname, u.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (
        f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"upgrade refused: {head[:200]!r}")
    return sock, rest


def _count_frames(sock: socket.socket, buf: bytes, seconds: float) -> tuple[int, bytes, bytes, bytes]:
    """Count complete frames for ``seconds``; returns (count, first payload, last payload, leftover)."""
    n = 0
    first = last = b""
    end = time.monotonic() + seconds
    view = buf
    while time.monotonic() < end:
        pos = 0
        size = len(view)
        while size - pos >= 2:
            ln = view[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if size - pos < 4:
                    break
                ln = int.from_bytes(view[pos + 2 : pos + 4], "big")
                hdr = 4
            elif ln == 127:
                if size - pos < 10:
                    break
                ln = int.from_bytes(view[pos + 2 : pos + 10], "big")
                hdr = 10
            if size - pos < hdr + ln:
                break
            if view[pos] & 0x0F == 0x1:
                n += 1
                if not first:
                    first = view[pos + hdr : pos + hdr + ln]
                last = view[pos + hdr : pos + hdr + ln]
            pos += hdr + ln
        view = view[pos:] + sock.recv(1 << 20)
    return n, first, last, view


def main() -> dict[str, object]:
    proc, ws_url = _start_sim(rate=400_000)
    try:
        sock, rest = _handshake(ws_url, "/ws/btcusdt@depth@0ms")
        _, _, _, rest = _count_frames(sock, rest, WARMUP_S)
        t0 = time.monotonic()
        n, first, last, _ = _count_frames(sock, rest, SECONDS)
        elapsed = time.monotonic() - t0
        sock.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    fps = n / elapsed
    u_first, u_last = json.loads(first)["u"], json.loads(last)["u"]
    contiguous = (u_last - u_first + 1) == n
    print(
        f"sim -> 1 client: {fps:,.0f} depth frames/s over {elapsed:.1f} s ({n:,} frames, "
        f"{'no' if contiguous else 'SOME'} update ids skipped; warm-up {WARMUP_S:.0f} s discarded)"
    )
    print(
        f"target >= {TARGET_FPS:,} frames/s: {'ok' if fps >= TARGET_FPS else 'MISSED'} "
        f"(machine shared with other work: figures are noisy)"
    )
    return {
        "frames_per_s": round(fps),
        "frames": n,
        "seconds": round(elapsed, 2),
        "contiguous_ids": contiguous,
        "stream": "futures btcusdt@depth@0ms",
        "target": TARGET_FPS,
        "ok": fps >= TARGET_FPS,
    }


if __name__ == "__main__":
    main()
