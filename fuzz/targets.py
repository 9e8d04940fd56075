"""Fuzz targets: each takes bytes and may raise only tickpath's own errors (counted, survived).

``python -m fuzz.run <target> [libFuzzer args]`` runs one under atheris (coverage-guided); ``make fuzz``
runs them all for a fixed budget. A crash is any other exception, or, for ``frames``, the native core
and the pure-Python reference disagreeing. Any crash found becomes a case in tests/native/hostile.py
or a regression test beside the code it broke.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from tickpath.errors import TickpathError
from tickpath.ingest.columns import decode_batch
from tickpath.sweep.config import parse_config
from tickpath.venues.binance.capture import read_http_capture, read_ws_capture
from tickpath.venues.binance.parse import ParseError
from tickpath.venues.binance.processor import NativeProcessor, PureProcessor

_procs = {v: (PureProcessor(v, session="f"), NativeProcessor(v, session="f")) for v in ("futures", "spot")}  # type: ignore[arg-type]
_step = 0


def _state(p: PureProcessor | NativeProcessor) -> object:
    books = sorted(p.book_symbols())
    return (p.counts(), p.wants_snapshot, [(p.book_state(s), p.book_stats(s), p.book_top(s)) for s in books])


def _diff(a: object, b: object, path: str = "") -> str:
    """Where two nested states first differ."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for k in a:
            if a[k] != b[k]:
                return _diff(a[k], b[k], f"{path}.{k}")
    return f"{path}: pure {a!r:.300} native {b!r:.300}"


def _verdict(call: Callable[[], object]) -> object:
    try:
        return ("ok", call())
    except ParseError as exc:
        return ("error", exc.reason)


_history: list[bytes] = []  # every input since the start: a disagreement is replayable from it


def frames(data: bytes) -> None:
    """A frame (or, with a leading 0x01, a snapshot body) into both processors: same verdict."""
    global _step
    _step += 1
    _history.append(bytes(bytearray(data)))  # a copy: the fuzzer may reuse the input's memory
    try:
        _frames(data)
    except AssertionError:
        import pickle

        Path("fuzz-frames-history.pickle").write_bytes(pickle.dumps(_history))
        raise


def _frames(data: bytes) -> None:
    for pure, native in _procs.values():
        if data[:1] == b"\x01":
            body = data[1:]
            a = _verdict(lambda p=pure, b=body: p.on_snapshot("BTCUSDT", b, _step))  # type: ignore[misc]
            b = _verdict(lambda p=native, b=body: p.on_snapshot("BTCUSDT", b, _step))  # type: ignore[misc]
        else:
            a = _verdict(lambda p=pure: p.on_frame(data, _step))  # type: ignore[misc]
            b = _verdict(lambda p=native: p.on_frame(data, _step))  # type: ignore[misc]
        if a != b:
            raise AssertionError(f"pure {a!r:.300} != native {b!r:.300} on {data[:200]!r}")
        sa, sb = _state(pure), _state(native)
        if sa != sb:
            raise AssertionError(f"state differs after {data[:200]!r}: {_diff(sa, sb)}")


def capture(data: bytes) -> None:
    """The capture readers on an arbitrary file."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.txt"
        p.write_bytes(data)
        for reader in (read_ws_capture, read_http_capture):
            try:
                reader(p)
            except TickpathError:
                pass


def config(data: bytes) -> None:
    """The sweep config loader on arbitrary TOML."""
    try:
        raw = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return
    try:
        parse_config(raw, base_dir=Path("/nonexistent"))
    except TickpathError:
        pass


def nats(data: bytes) -> None:
    """ingest's decoder of JetStream deliveries: payloads split on 0x00, headers after 0xff."""
    body, _, head = data.partition(b"\xff")
    payloads = body.split(b"\x00")
    headers = [head or None] * len(payloads)
    decode_batch(payloads, headers)  # bad payloads are counted as rejected, never raised


def ingest_native(data: bytes) -> None:
    """ingest's native decoder against the pure-Python reference: payloads split on 0x00 (the
    fuzzer's bytes, often around a real event's encoding); same tables, counts and session rows."""
    from tickpath.ingest import columns, native

    payloads = data.split(b"\x00")
    pub = columns.publish_ns_array([None] * len(payloads))
    want = columns._decode_grouped(payloads, pub)
    got = columns._decode_native(payloads, pub) if native.available() else None
    if got is None:
        return  # declined: the reference decides, nothing to compare
    same = (got.rejected, got.duplicates, got.sessions, got.tables.keys()) == (
        want.rejected,
        want.duplicates,
        want.sessions,
        want.tables.keys(),
    ) and all(got.tables[t].equals(want.tables[t]) for t in want.tables)
    if not same:
        raise AssertionError(f"native != reference on {payloads[:3]!r:.400}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "frames": frames,
    "capture": capture,
    "config": config,
    "nats": nats,
    "ingest_native": ingest_native,
}
