"""Frames per second the simulator pushes to one client (target: 50,000 depth frames/s on one core).

The simulator runs in its own process (``tickpath sim``, uvloop, one core) with a market rate far
above what it can serve, so it runs flat out; the client is a raw socket in this process that
only splits WebSocket frames and counts them, so the client is not what is measured. Each frame is
a futures ``btcusdt@depth@0ms`` event (one update id per frame, generated, serialised and framed by
the simulator). The first second is warm-up and is discarded; frames are then counted for
``SECONDS``; ``u`` of the first and last frame checks that no update id was skipped.

Part *playback* (``sim --prerender``, issue 19): the simulator's CPU per frame when it plays a
pre-rendered spot universe (``UNIVERSE`` symbols) flat out to two readers paced like feeds
(``PACES``: one four times slower), each with its share of the streams (SUBSCRIBE), raw sockets that
only store the bytes; the frames are split and checked after the end (complete, and each stream's
depth ids in order). The figure is the
simulator process's CPU over the frames received from the moment both readers stream (1 MB each:
the SUBSCRIBE handling is before it) to the last byte: the cost the load generator adds to a client
sharing its cores (bench_exchange).
``BENCH_SIM_PARTS=live,playback`` picks parts.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit

from bench.common import chosen_parts, proc_cpu_s

TARGET_FPS = 50_000
WARMUP_S = 1.0
SECONDS = 4.0
UNIVERSE = 600  # spot symbols pre-rendered for the playback part
PLAY_S = 40.0  # seconds of market rendered
# bytes a second each reader takes: a feed worker's pace (~110,000 frames/s), and one four times slower
PACES = (20e6, 5e6)


def _start_sim(rate: float, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "tickpath.cli.main", "sim", "--rate", str(rate), "--json"]
    cmd += list(extra) or ["--venue", "futures", "--symbols", "BTCUSDT"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("tickpath sim did not start")
    return proc, json.loads(line)["endpoints"][0]["ws_url"]


def _handshake(ws_url: str, path: str, rcvbuf: int | None = 4 << 20) -> tuple[socket.socket, bytes]:
    u = urlsplit(ws_url)
    sock = socket.create_connection((u.hostname, u.port))
    if rcvbuf is not None:  # None: the kernel's autotuning, as a feed's connection has
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
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


def live() -> dict[str, object]:
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


def _split(data: bytes, after: int = 0) -> tuple[int, bool]:
    """(text frames starting at byte ``after`` or later, every depth stream's ids in order) of a
    received byte run; raises if a frame is cut or malformed."""
    n, pos, size = 0, 0, len(data)
    last_u: dict[str, int] = {}
    ordered = True
    while pos < size:
        ln, hdr = data[pos + 1] & 0x7F, 2
        if ln == 126:
            ln, hdr = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        elif ln == 127:
            ln, hdr = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
        if pos + hdr + ln > size:
            raise RuntimeError(f"frame cut at byte {pos} of {size}")
        if data[pos] & 0x0F == 0x1:
            msg = json.loads(data[pos + hdr : pos + hdr + ln])
            if "stream" in msg and "@depth" in msg["stream"]:
                u = msg["data"]["u"]
                ordered = ordered and u > last_u.get(msg["stream"], -1)
                last_u[msg["stream"]] = u
            n += "stream" in msg and pos >= after
        pos += hdr + ln
    return n, ordered


def _reader(
    sock: socket.socket, rest: bytes, out: list[bytes], idle_s: float, pace: float, progress: list[int], k: int
) -> None:
    """Store everything until ``idle_s`` without a byte, taking at most ``pace`` bytes a second (a
    feed's pace, not a socket's); out[-1] is the arrival of the last byte, progress[k] the bytes so far."""
    chunks = [rest]
    sock.settimeout(idle_s)
    t0 = last = time.monotonic()
    got = 0
    try:
        while True:
            b = sock.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
            last = time.monotonic()
            got += len(b)
            progress[k] = len(rest) + got
            ahead = got / pace - (last - t0)
            if ahead > 0.001:
                time.sleep(ahead)
    except TimeoutError:
        pass
    out.extend([b"".join(chunks), str(last).encode()])


def playback() -> dict[str, object]:
    """The simulator's CPU per frame playing a pre-rendered universe flat out to readers of PACES."""
    extra = ("--venue", "spot", "--universe", "binance", "--universe-size", str(UNIVERSE), "--seed", "5")
    extra += ("--prerender", str(PLAY_S), "--speed", "10000", "--prerender-wait")
    proc, ws_url = _start_sim(rate=20, extra=extra)
    try:
        rest_url = ws_url.replace("ws://", "http://")
        with urllib.request.urlopen(f"{rest_url}/api/v3/exchangeInfo", timeout=30) as r:
            symbols = [s["symbol"].lower() for s in json.load(r)["symbols"]]
        streams = [f"{s}@{k}" for s in symbols for k in ("depth@100ms", "trade", "bookTicker")]
        socks = [_handshake(ws_url, "/stream", None) for _ in PACES]
        t0 = time.monotonic()
        outs: list[list[bytes]] = [[] for _ in socks]
        progress = [0 for _ in socks]
        threads = []
        for k, ((sock, rest), out) in enumerate(zip(socks, outs, strict=True)):
            share = streams[k :: len(PACES)]
            sub = json.dumps({"method": "SUBSCRIBE", "params": share, "id": 1}).encode()
            sock.sendall(_client_frame(sub))
            threads.append(threading.Thread(target=_reader, args=(sock, rest, out, 2.0, PACES[k], progress, k)))
            threads[-1].start()
        # the window opens once both readers stream (the SUBSCRIBE handling, a one-off, is before it)
        while min(progress) < 1 << 20 and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        cpu0, sys0, from_bytes = proc_cpu_s(proc.pid), _sys_cpu_s(proc.pid), list(progress)
        for t in threads:
            t.join()
        cpu, sys_cpu = proc_cpu_s(proc.pid) - cpu0, _sys_cpu_s(proc.pid) - sys0
        walls = [float(o[1]) - t0 for o in outs]
        wall = max(walls)
        for sock, _ in socks:
            sock.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    counts = [_split(o[0]) for o in outs]
    frames = sum(n for n, _ in counts)
    in_window = sum(_split(o[0], b)[0] for o, b in zip(outs, from_bytes, strict=True))
    us = cpu / in_window * 1e6 if in_window else float("nan")
    rates = [round(n / w) for (n, _), w in zip(counts, walls, strict=True)]
    sys_share = sys_cpu / cpu if cpu > 0 else float("nan")
    print(
        f"sim --prerender -> {len(PACES)} readers: {frames:,} frames in {wall:.2f} s, simulator {us:.2f} CPU-us "
        f"per frame ({sys_share:.0%} in the kernel); reader frames/s {rates} "
        f"(paced at {[p / 1e6 for p in PACES]} MB/s); depth ids in order: {all(o for _, o in counts)}"
    )
    return {
        "frames": frames,
        "sim_cpu_us_per_frame": round(us, 3),
        "sim_kernel_share": round(sys_share, 2),
        "ordered": all(o for _, o in counts),
        "per_reader_frames": [n for n, _ in counts],
        "per_reader_frames_per_s": rates,
        "fast_over_slow": round(rates[0] / rates[1], 2) if rates[1] else None,
    }


def _sys_cpu_s(pid: int) -> float:
    """System (kernel) CPU seconds of ``pid`` so far, from /proc."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        return int(fields[12]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _client_frame(payload: bytes) -> bytes:
    """A masked client text frame (mask 0: the payload goes as is)."""
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big"))
    if n >= 1 << 16:
        head = bytes([0x81, 0xFF]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def main() -> dict[str, object]:
    parts = chosen_parts("BENCH_SIM_PARTS", ("live", "playback"))
    out: dict[str, object] = {}
    if "live" in parts:
        out.update(live())
    if "playback" in parts:
        out["playback"] = playback()
    return out


if __name__ == "__main__":
    main()
