"""Feed core benchmarks: (a) frames to events in process, (d) memory of many books.

(a) The stream is built from the shared USD-M futures capture: the capture is replayed once (books
synced from its real snapshots, untimed warm-up), then its depth frames are repeated with update ids
shifted so the ``pu`` chain stays valid, each repetition continuing where the previous ended. Each
implementation gets the same frames with a receipt timestamp taken per frame, as the engine does:

- ``native_batch``: the batch entry (``NativeProcessor.feed_batch``), 4,096 frames a call, each
  stamped by the core from CLOCK_REALTIME, the events taken as Arrow tables after each call;
- ``native``: the compiled core's columnar path one call per frame (``NativeProcessor.feed``: decode, sync rules, book,
  normalized row), the events taken as Arrow tables every 4,096 frames (``take_tables``);
- ``native_objects``: the compiled core making a Python event per event (``on_frame``);
- ``pure``: the pure-Python reference (``decode_frame`` -> ``Normalizer.on_message``);
- the yardstick, ``orjson.loads`` alone on the same frames, measured in the same run.

CPU time is ``time.process_time()``, summed over blocks of 32,768 frames that the implementations run
in turns (so that a figure and its yardstick meet the same load on a shared machine). Targets (#17):
native >= 2.0x the yardstick, on depth frames
and on the capture mix (depth, bookTicker, aggTrade, kline).

(d) A subprocess per implementation loads 300 symbols with 1,000 levels per side from JSON snapshot
bodies and live updates, and reports its resident set size (``VmRSS``); target 60 MB (native).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import calibration_ns
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.parse import decode_frame, decode_snapshot
from tickpath.venues.binance.processor import NativeProcessor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
TARGET_RATIO = 2.0  # native msgs per CPU-second over orjson.loads-only, same frames, same run
TARGET_RSS_MB = 60.0
MESSAGES = 200_000
TAKE_EVERY = 4096
BLOCK = 8 * TAKE_EVERY  # frames per turn (see _throughput)


def _warm_normalizer() -> tuple[Normalizer, list[dict[str, Any]], dict[str, Any]]:
    """A Normalizer whose four books are synced by replaying the capture with its snapshots.

    Returns it, the capture's frames as JSON objects, and each symbol's snapshot (JSON)."""
    cap = read_ws_capture(SHARED / "usdm_futures.ws.txt")
    records = read_http_capture(SHARED / "usdm_futures.http.txt")
    norm = Normalizer("futures", session="bench")
    for item in replay_order(cap.frames, records):
        if isinstance(item, HttpRecord):
            norm.on_snapshot(item.params["symbol"], decode_snapshot(item.body), int(item.receipt * 1e9))
        else:
            norm.on_message(decode_frame(item.text), int(item.receipt * 1e9))
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


def _native_warm(snaps: dict[str, Any]) -> NativeProcessor:
    """A native processor synced by the same capture replay as the reference's warm-up."""
    proc = NativeProcessor("futures", session="bench", symbols=tuple(snaps))
    cap = read_ws_capture(SHARED / "usdm_futures.ws.txt")
    for item in replay_order(cap.frames, read_http_capture(SHARED / "usdm_futures.http.txt")):
        if isinstance(item, HttpRecord):
            proc.feed_snapshot(item.params["symbol"], item.body, int(item.receipt * 1e9))
        else:
            proc.feed(item.text, int(item.receipt * 1e9))
    proc.take_tables()
    return proc


def _cpu(run: Any, stream: list[bytes]) -> float:
    c0 = time.process_time()
    run(stream)
    return time.process_time() - c0


def _ignore(code: int, frame: bytes | str, receipt_ns: int) -> None:
    """A frame the batch hands back (klines of the mix): not the core's work, as in the single path."""


def _throughput(depth_only: bool) -> dict[str, Any]:
    norm, frames, snaps = _warm_normalizer()
    stream = _repeated_stream(frames, norm, snaps, MESSAGES, depth_only)
    clock = time.time_ns
    counts: dict[str, int] = {}

    def yardstick(frames_: list[bytes]) -> None:
        loads = orjson.loads
        for raw in frames_:
            loads(raw)

    def pure(frames_: list[bytes]) -> None:
        on_message, decode, n = norm.on_message, decode_frame, 0
        for raw in frames_:
            n += len(on_message(decode(raw), clock()))
        counts["pure"] = counts.get("pure", 0) + n

    native = _native_warm(snaps)
    rows = 0

    def columnar(frames_: list[bytes]) -> None:
        nonlocal rows
        feed, take = native.feed, native.take_tables
        for i, raw in enumerate(frames_):
            feed(raw, clock())
            if i % TAKE_EVERY == TAKE_EVERY - 1:
                rows += sum(t.num_rows for t in take().values())
        rows += sum(t.num_rows for t in take().values())
        counts["native"] = rows  # a running total

    batched = _native_warm(snaps)
    batch_rows = 0

    def batch(frames_: list[bytes]) -> None:
        # As the feed delivers a socket read's frames: one call per group (here TAKE_EVERY frames),
        # each frame stamped by the core from CLOCK_REALTIME, the tables taken after each group.
        nonlocal batch_rows
        feed_batch, take = batched.feed_batch, batched.take_tables
        for i in range(0, len(frames_), TAKE_EVERY):
            feed_batch(frames_[i : i + TAKE_EVERY], None, _ignore)
            batch_rows += sum(t.num_rows for t in take().values())
        counts["native_batch"] = batch_rows

    objects = _native_warm(snaps)

    def native_objects(frames_: list[bytes]) -> None:
        on_frame, n = objects.on_frame, 0
        for raw in frames_:
            n += len(on_frame(raw, clock()))
        counts["native_objects"] = counts.get("native_objects", 0) + n

    # The set-up's objects (the capture as JSON, 200,000 frames, the reference's books) are not the
    # feed's: frozen, the cyclic collector stops walking them at every collection of any run below.
    gc.collect()
    gc.freeze()
    # In turns, block by block: each implementation runs the stream's next BLOCK frames, and its CPU
    # time is the sum over its blocks. On a machine shared with other sessions the load changes from
    # second to second; run one after the other, a figure and its yardstick met different loads
    # (ratios moved by +-15 % between runs), in turns they meet the same.
    runs = {"yardstick": yardstick, "native_batch": batch, "native": columnar, "native_objects": native_objects}
    runs["pure"] = pure
    cpu = dict.fromkeys(runs, 0.0)
    for start in range(0, len(stream), BLOCK):
        block = stream[start : start + BLOCK]
        for name, run in runs.items():
            cpu[name] += _cpu(run, block)
    rate = {k: round(len(stream) / v) for k, v in cpu.items()}
    stats = [p.book_stats(s) for p in (native, batched) for s in snaps]
    stats += [b.stats.as_dict() for b in norm.books.values()]
    return {
        "messages": len(stream),
        "events": counts,
        "cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "msgs_per_cpu_s": rate,
        "ratio_to_orjson": {
            k: round(rate[k] / rate["yardstick"], 3) for k in ("native_batch", "native", "native_objects", "pure")
        },
        "resets": sum(v["resyncs"] for v in stats),
        "gaps": sum(v["gaps"] for v in stats),
    }


_RSS_CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
from tickpath.venues.binance.parse import decode_snapshot
from tickpath.venues.binance.processor import make_processor
NATIVE = sys.argv[2] == "native"
SYMS = [f"SYM{i}USDT" for i in range(300)]
proc = make_processor("futures", session="bench", symbols=tuple(SYMS), native=NATIVE)  # one feed, 300 books

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
    sym = SYMS[i]
    proc.on_snapshot(sym, body, 0)
    # Live traffic near the touch (fills each side's price cache), keeping 1,000 levels per side.
    for k in range(300):
        j = k % 100
        frame = {"stream": "x@depth", "data": {"e": "depthUpdate", "E": 1, "T": 1, "s": sym, "U": 10 + k,
                 "u": 11 + k, "pu": 10 + k, "b": [[f"{mid - (j + 1) * 0.01:.2f}", f"{k % 7 + 1}.000"]],
                 "a": [[f"{mid + (j + 1) * 0.01:.2f}", f"{k % 5 + 1}.000"]]}}
        proc.on_frame(json.dumps(frame).encode(), 1)
    books.append(sym)
del body, bids, asks
gc.collect()
levels = sum(sum(map(len, proc.book_top(s))) for s in books)
print(json.dumps({"rss_mb": rss_mb(), "baseline_rss_mb": base, "levels": levels}))
"""


def _memory(impl: str) -> dict[str, Any]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, src, impl], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _print_rates(label: str, r: dict[str, Any]) -> None:
    rate, ratio = r["msgs_per_cpu_s"], r["ratio_to_orjson"]
    print(
        f"(a) {label}: {r['messages']:,} msgs; orjson.loads alone {rate['yardstick']:,}/CPU-s; "
        f"native batch {rate['native_batch']:,} ({ratio['native_batch']:.2f}x, target {TARGET_RATIO:.1f}x); "
        f"native single calls {rate['native']:,} ({ratio['native']:.2f}x); "
        f"native+objects {rate['native_objects']:,} ({ratio['native_objects']:.2f}x); "
        f"pure {rate['pure']:,} ({ratio['pure']:.2f}x); resets={r['resets']} gaps={r['gaps']}"
    )


def main() -> dict[str, Any]:
    if not (SHARED / "usdm_futures.ws.txt").exists():
        print(f"skipped: shared captures not found at {SHARED}")
        return {"skipped": "shared captures absent", "ok": None}
    calib = calibration_ns()
    depth = _throughput(depth_only=True)
    mixed = _throughput(depth_only=False)
    mem = {impl: _memory(impl) for impl in ("native", "pure")}
    ok_a = all(r["ratio_to_orjson"]["native_batch"] >= TARGET_RATIO and r["resets"] == 0 for r in (depth, mixed))
    ok_d = mem["native"]["rss_mb"] <= TARGET_RSS_MB
    print(f"machine: {calib} CPU-ns per plain loop iteration (compare machines by this figure)")
    _print_rates("depth frames", depth)
    _print_rates("capture mix ", mixed)
    for impl, m in mem.items():
        print(
            f"(d) {impl}: 300 symbols x 1000 levels/side ({m['levels']:,} levels): RSS {m['rss_mb']:.1f} MB "
            f"(interpreter + imports {m['baseline_rss_mb']:.1f} MB; target {TARGET_RSS_MB:.0f} MB native)"
        )
    return {
        "calibration_ns_per_loop_iteration": calib,
        "throughput_depth": depth,
        "throughput_mix": mixed,
        "memory": mem,
        "target": {"ratio_to_orjson": TARGET_RATIO, "rss_mb": TARGET_RSS_MB},
        "ok": ok_a and ok_d,
    }


if __name__ == "__main__":
    main()
