"""Run under AddressSanitizer/UBSan by test_sanitizers.py: load the sanitized core, drive it hard.

argv: the sanitized extension's path, the captures directory (or "-").
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("tickpath.venues.binance._core", sys.argv[1])
assert spec is not None and spec.loader is not None
core_module = importlib.util.module_from_spec(spec)
sys.modules["tickpath.venues.binance._core"] = core_module
spec.loader.exec_module(core_module)

from tests.native.hostile import hostile_frames  # noqa: E402
from tickpath.venues.binance.parse import ParseError  # noqa: E402
from tickpath.venues.binance.processor import NativeProcessor  # noqa: E402

rng = random.Random(5)
frames = hostile_frames()
if sys.argv[2] != "-":
    from tickpath.venues.binance.capture import read_http_capture, read_ws_capture

    shared = Path(sys.argv[2])
    for name in ("usdm_futures", "spot"):
        frames += [f.text.encode() for f in read_ws_capture(shared / f"{name}.ws.txt").frames]
        bodies = [r.body for r in read_http_capture(shared / f"{name}.http.txt")]
        frames += [b.encode() if isinstance(b, str) else b for b in bodies]
rejected = accepted = 0
for venue in ("futures", "spot"):
    for depth in (None, 3):
        proc = NativeProcessor(venue, session="asan", depth=depth)  # type: ignore[arg-type]
        for i in range(6000):
            raw = bytearray(rng.choice(frames))
            for _ in range(rng.randint(0, 4)):
                if raw:
                    j = rng.randrange(len(raw))
                    raw[j : j + rng.randint(0, 3)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 3)))
            try:
                if i % 7 == 0:
                    proc.on_snapshot(rng.choice(["BTCUSDT", "SUSHIUSDT", "NKNUSDT"]), bytes(raw), i)
                else:
                    proc.on_frame(bytes(raw), i)
                accepted += 1
            except ParseError:
                rejected += 1
            if i % 500 == 0:
                proc.reset("BTCUSDT", "fuzz", i)
# The fast path's shapes cut at every byte, one call each and through the batch entry: a read past
# a frame's end by the 8-byte loads would be caught here (each frame its own allocation).
from tests.native.test_fast_path import BASES  # noqa: E402

cuts = [base[:i] for base in BASES.values() for i in range(len(base) + 1)]
for venue in ("futures", "spot"):
    proc = NativeProcessor(venue, session="asan")  # type: ignore[arg-type]
    for i, raw in enumerate(cuts):
        try:
            proc.on_frame(bytes(raw), i)
            accepted += 1
        except ParseError:
            rejected += 1
    proc.feed_batch([bytes(c) for c in cuts], None, lambda *a: None)
# A receipt's __index__ that resizes or replaces the frames' or the receipts' list mid-batch: a clean
# ValueError or the new items read, never a read past a list (each frame its own allocation).
from tests.native.test_batch import _RESIZE, _depth, _Index  # noqa: E402

for which in ("frames", "receipts"):
    for how in [*_RESIZE, "replace"]:
        for at in (1, 20, 37):
            proc = NativeProcessor("futures", session="asan")
            proc.on_snapshot("X", b'{"lastUpdateId":1,"bids":[],"asks":[]}', 0)
            batch = [bytes(_depth(i)) for i in range(1, 39)]
            receipts: list = []
            target = batch if which == "frames" else receipts

            fill = bytes(_depth(1)) if which == "frames" else 3

            def act(target: list = target, how: str = how, fill: object = fill) -> None:
                if how == "replace":
                    target[:] = [fill for _ in target]
                else:
                    _RESIZE[how](target)

            calls = [0]
            receipts.extend(_Index(calls, at, act) for _ in batch)
            try:
                proc.feed_many(batch, receipts, 0)
                accepted += 1
            except ValueError:
                rejected += 1
print(f"accepted={accepted} rejected={rejected}")
