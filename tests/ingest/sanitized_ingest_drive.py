"""Driven by tests/native/test_sanitizers.py under ASan/UBSan: ingest's native decoder and delivery
split, loaded from the sanitized build given as argv[1], on hostile payloads; prints counts."""

from __future__ import annotations

import importlib.util
import random
import sys

spec = importlib.util.spec_from_file_location("tickpath.ingest._decode", sys.argv[1])
assert spec is not None and spec.loader is not None
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
sys.modules["tickpath.ingest._decode"] = mod

from tests.ingest.support import make_events  # noqa: E402
from tests.ingest.test_delivery_parser import _delivery  # noqa: E402
from tests.ingest.test_native_decode import EDGES  # noqa: E402
from tickpath.events import encode_event  # noqa: E402
from tickpath.ingest import native  # noqa: E402

rng = random.Random(7)
good = [encode_event(e) for e in make_events(60)]
batches = 0
for _ in range(400):
    ps = []
    for p in rng.sample(good, 20) + list(EDGES.values()):
        raw = bytearray(p)
        op = rng.randrange(5)
        if op == 0 and raw:
            del raw[rng.randrange(len(raw)) :]  # truncated at any byte
        elif op == 1 and raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif op == 2:
            raw = raw.replace(b'"0.01"', b'"' + b"9" * 1_000_000 + b'"')  # a 1 MB string
        ps.append(bytes(raw))
    native.decode(ps)
    batches += 1
wire = b"".join(_delivery(i) for i in range(50))
for cut in range(0, len(wire), 7):
    out: list[tuple[bytes, bytes, bytes | None]] = []
    mod.split_deliveries(bytearray(wire[:cut]), b"5", out)
print(f"batches={batches} cuts={len(wire) // 7}")
