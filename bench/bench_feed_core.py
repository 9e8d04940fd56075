"""Feed core benchmarks: (a) decode + sync + book + normalize in process, (d) memory of many books.

(a) The stream is built from the shared USD-M futures capture: the capture is replayed once (books
synced from its real snapshots, untimed warm-up), then its depth frames are repeated with update ids
shifted so the ``pu`` chain stays valid, each repetition continuing where the previous ended. Every
frame goes through ``decode_frame`` -> ``Normalizer.on_message`` (BookSync rules, book update,
crossed check, BookDelta) with a receipt timestamp taken per frame, as the engine does. CPU time is
``time.process_time()``; the target is 300,000 messages per CPU-second. A second figure runs the
whole capture mix (depth, bookTicker, aggTrade, kline) the same way, for reference.

(d) A subprocess loads 300 symbols with 1,000 levels per side from JSON snapshot bodies (as the feed
would, via ``decode_snapshot``) and reports its resident set size (``VmRSS``); target 200 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import calibration_ns
from tickpath.venues.binance.capture import read_http_capture, read_ws_capture
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.parse import decode_frame, decode_snapshot

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
TARGET_MSGS_PER_CPU_S = 300_000
TARGET_RSS_MB = 200.0
MESSAGES = 200_000


def _warm_normalizer() -> tuple[Normalizer, list[dict[str, Any]], dict[str, Any]]:
    """A Normalizer whose four books are synced by replaying the capture with its snapshots.

    Returns it, the capture's frames as JSON objects, and each symbol's snapshot (JSON)."""
    cap = read_ws_capture(SHARED / "usdm_futures.ws.txt")
    records = read_http_capture(SHARED / "usdm_futures.http.txt")
    pending = sorted((r.receipt, r.params["symbol"], r.body) for r in records)
    norm = Normalizer("futures", session="bench")
    for f in cap.frames:
        while pending and pending[0][0] <= f.receipt:
            receipt, sym, body = pending.pop(0)
            norm.on_snapshot(sym, decode_snapshot(body), int(receipt * 1e9))
        norm.on_message(decode_frame(f.text), int(f.receipt * 1e9))
    for receipt, sym, body in pending:
        norm.on_snapshot(sym, decode_snapshot(body), int(receipt * 1e9))
    snaps = {r.params["symbol"]: json.loads(r.body) for r in records}
    return norm, [json.loads(f.text) for f in cap.frames], snaps


def _repeated_stream(
    frames: list[dict[str, Any]], norm: Normalizer, snaps: dict[str, Any], count: int, depth_only: bool
) -> list[bytes]:
    """``count`` frames that continue each symbol's ``pu`` chain from where the warm-up left it.

    Each repetition replays the depth events the capture applied after its sync point. Replaying
    them onto the book they produced would not be the market Binance sent (and can cross the
    book), so each repetition starts with one ordinary depthUpdate that sets the book back to the
    snapshot's state: the book then follows the capture's real evolution again, every time.
    """
    chains: dict[str, list[dict[str, Any]]] = {}
    for p in frames:
        d = p["data"]
        if d.get("e") == "depthUpdate" and d["u"] >= snaps[d["s"]]["lastUpdateId"]:
            chains.setdefault(d["s"], []).append(p)
    restore: dict[str, dict[str, Any]] = {}
    for sym, snap in snaps.items():
        bids, asks = norm.books[sym].book.as_dicts()
        s_bids, s_asks = dict(snap["bids"]), dict(snap["asks"])
        restore[sym] = {
            "b": [[p, s_bids.get(p, "0")] for p in bids.keys() | s_bids.keys() if s_bids.get(p) != bids.get(p)],
            "a": [[p, s_asks.get(p, "0")] for p in asks.keys() | s_asks.keys() if s_asks.get(p) != asks.get(p)],
        }
    base = {sym: norm.books[sym].last_update_id for sym in chains}
    out: list[bytes] = []
    while len(out) < count:
        started: set[str] = set()
        for p in frames:
            d = p["data"]
            if d.get("e") == "depthUpdate":
                sym = d["s"]
                if p not in chains[sym]:
                    continue
                b = base[sym]
                assert b is not None
                if sym not in started:  # the restoring event: ids b+1..b+1
                    started.add(sym)
                    first = {
                        "e": "depthUpdate",
                        "E": d["E"],
                        "T": d["T"],
                        "s": sym,
                        "U": b + 1,
                        "u": b + 1,
                        "pu": b,
                        **restore[sym],
                    }
                    out.append(json.dumps({"stream": p["stream"], "data": first}, separators=(",", ":")).encode())
                k = b + 1 - chains[sym][0]["data"]["pu"]
                p = {"stream": p["stream"], "data": {**d, "U": d["U"] + k, "u": d["u"] + k, "pu": d["pu"] + k}}
            elif depth_only:
                continue
            out.append(json.dumps(p, separators=(",", ":")).encode())
        for sym, ch in chains.items():
            b = base[sym]
            assert b is not None
            base[sym] = ch[-1]["data"]["u"] + (b + 1 - ch[0]["data"]["pu"])
    return out[:count]


def _throughput(depth_only: bool) -> dict[str, Any]:
    norm, frames, snaps = _warm_normalizer()
    stream = _repeated_stream(frames, norm, snaps, MESSAGES, depth_only)
    decode = decode_frame
    on_message = norm.on_message
    clock = time.time_ns
    events = 0
    chunk = 10_000
    best_chunk = float("inf")
    c0 = time.process_time()
    w0 = time.perf_counter()
    for start in range(0, len(stream), chunk):
        k0 = time.process_time()
        for raw in stream[start : start + chunk]:
            events += len(on_message(decode(raw), clock()))
        best_chunk = min(best_chunk, (time.process_time() - k0) / chunk)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - w0
    stats = {s: b.stats.as_dict() for s, b in norm.books.items()}
    return {
        "messages": len(stream),
        "events": events,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "msgs_per_cpu_s": round(len(stream) / cpu),
        "best_chunk_msgs_per_cpu_s": round(1 / best_chunk),
        "resets": sum(v["resyncs"] for v in stats.values()),
        "gaps": sum(v["gaps"] for v in stats.values()),
    }


_RSS_CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
from tickpath.venues.binance.parse import decode_snapshot
from tickpath.venues.binance.sync import BookSync

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

base = rss_mb()
books = []
for i in range(300):
    mid = 1000.0 + i * 7.31
    bids = [[f"{mid - (j + 1) * 0.01:.2f}", f"{(j * 37 % 1000) / 100 + 0.001:.3f}"] for j in range(1000)]
    asks = [[f"{mid + (j + 1) * 0.01:.2f}", f"{(j * 53 % 1000) / 100 + 0.001:.3f}"] for j in range(1000)]
    body = json.dumps({"lastUpdateId": 10, "E": 1, "T": 1, "bids": bids, "asks": asks}).encode()
    bs = BookSync("futures", f"SYM{i}USDT", session="bench")
    bs.on_snapshot(decode_snapshot(body), 0)
    # Live traffic near the touch (fills each side's price cache), keeping 1,000 levels per side.
    for k in range(300):
        j = k % 100
        bs.book.apply([(f"{mid - (j + 1) * 0.01:.2f}", f"{k % 7 + 1}.000")],
                      [(f"{mid + (j + 1) * 0.01:.2f}", f"{k % 5 + 1}.000")])
    books.append(bs)
del body, bids, asks
gc.collect()
levels = sum(len(b.book) for b in books)
print(json.dumps({"rss_mb": rss_mb(), "baseline_rss_mb": base, "levels": levels}))
"""


def _memory() -> dict[str, Any]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, src], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> dict[str, Any]:
    if not (SHARED / "usdm_futures.ws.txt").exists():
        print(f"skipped: shared captures not found at {SHARED}")
        return {"skipped": "shared captures absent", "ok": None}
    calib = calibration_ns()
    depth = _throughput(depth_only=True)
    mixed = _throughput(depth_only=False)
    mem = _memory()
    ok_a = depth["msgs_per_cpu_s"] >= TARGET_MSGS_PER_CPU_S and depth["resets"] == 0
    ok_d = mem["rss_mb"] <= TARGET_RSS_MB
    print(f"machine: {calib} CPU-ns per plain loop iteration (compare machines by this figure)")
    print(
        f"(a) depth stream: {depth['messages']:,} msgs in {depth['cpu_s']:.3f} CPU-s = "
        f"{depth['msgs_per_cpu_s']:,} msgs/CPU-s (best 10k chunk {depth['best_chunk_msgs_per_cpu_s']:,}; "
        f"target {TARGET_MSGS_PER_CPU_S:,}); resets={depth['resets']} gaps={depth['gaps']}"
    )
    print(
        f"    capture mix:  {mixed['messages']:,} msgs in {mixed['cpu_s']:.3f} CPU-s = "
        f"{mixed['msgs_per_cpu_s']:,} msgs/CPU-s"
    )
    print(
        f"(d) 300 symbols x 1000 levels/side ({mem['levels']:,} levels): RSS {mem['rss_mb']:.1f} MB "
        f"(interpreter + imports {mem['baseline_rss_mb']:.1f} MB; target {TARGET_RSS_MB:.0f} MB)"
    )
    return {
        "calibration_ns_per_loop_iteration": calib,
        "throughput_depth": depth,
        "throughput_mix": mixed,
        "memory": mem,
        "target": {"msgs_per_cpu_s": TARGET_MSGS_PER_CPU_S, "rss_mb": TARGET_RSS_MB},
        "ok": ok_a and ok_d,
    }


if __name__ == "__main__":
    main()
