"""The batch entry (``NativeProcessor.feed_batch``) decides exactly as single calls and the reference.

Three processors get the same inputs: the pure-Python reference and the native core one frame at a
time, and the native core in batches of random length (frames of one batch share a receipt time, as
those of one socket read do, or carry one each). Every frame's verdict (events, rejection reason,
hand-off, snapshot request) and, at the end, the counters, book states and books must be the same.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.native.harness import Pair
from tests.native.test_differential import OP, SETTINGS, _mutate, _Stream
from tickpath.events import BookDelta, BookReset, BookSnapshot, Ticker, Trade
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order
from tickpath.venues.binance.parse import ParseError
from tickpath.venues.binance.processor import HANDOFF, WANTS_SNAPSHOT, NativeProcessor

CORE_EVENTS = (BookDelta, BookSnapshot, BookReset, Trade, Ticker)  # the rest come from handed-back frames
KLINE = (
    b'{"stream":"aaa@kline_1m","data":{"e":"kline","E":1,"s":"AAA","k":{"t":1,"T":2,"s":"AAA","i":"1m",'
    b'"f":1,"L":2,"o":"1","c":"1","h":"1","l":"1","v":"1","n":1,"x":false,"q":"1","V":"1","Q":"1","B":"0"}}}'
)


@dataclass
class Trio:
    """The reference and the single-call native core (a :class:`Pair`), and the batched native core."""

    pair: Pair
    batched: NativeProcessor
    verdicts: list[Any] = field(default_factory=list)  # per frame, from the single calls
    batch_verdicts: list[Any] = field(default_factory=list)

    @classmethod
    def make(cls, venue: str, **kw: Any) -> Trio:
        return cls(Pair.make(venue, **kw), NativeProcessor(venue, session="s", **kw))

    def frames(self, frames: list[Any], receipts: int | list[int]) -> None:
        """The frames one by one through the pair, then as one batch through the batched core."""
        for i, raw in enumerate(frames):
            r = self.pair.frame(raw, receipts if isinstance(receipts, int) else receipts[i])
            self.verdicts.append((r[0], r[1] if r[0] == "error" else _split(r[1]), self.pair.native.wants_snapshot))
        before = len(self.batch_verdicts)
        self.batch_verdicts.extend(("ok", ([], []), None) for _ in frames)
        pos = 0

        def special(code: int, raw: Any, receipt: int) -> None:
            nonlocal pos
            while frames[pos] is not raw:
                pos += 1
            slot = before + pos
            if code >= 0:  # a plain count, and a book that waits for a snapshot
                assert code & WANTS_SNAPSHOT
                self.batch_verdicts[slot] = ("ok", ([], []), self.batched.wants_snapshot)
            elif code == HANDOFF:
                try:
                    self.batch_verdicts[slot] = ("ok", ([], self.batched.handoff(raw, receipt)), None)
                except ParseError as exc:
                    self.batch_verdicts[slot] = ("error", exc.reason, None)
            else:
                self.batch_verdicts[slot] = ("error", self.batched.rejection(code, raw).reason, None)
            pos += 1

        self.batched.feed_batch(frames, receipts, special)
        self._assign_core_events(before)

    def _assign_core_events(self, before: int) -> None:
        """The batch's core events, given back to the frames that made them (as the single calls say)."""
        events = self.batched.core.take_events()
        for k in range(before, len(self.verdicts)):
            kind, got, _ = self.verdicts[k]
            if kind == "ok" and got[0]:
                n = len(got[0])
                mine, events = events[:n], events[n:]
                v = self.batch_verdicts[k]
                self.batch_verdicts[k] = (v[0], (mine, v[1][1]), v[2])
        assert not events, f"{len(events)} events more than the single calls made"

    def snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> None:
        self.pair.snapshot(symbol, body, receipt_ns)
        try:
            self.batched.on_snapshot(symbol, body, receipt_ns)
        except ParseError:
            pass

    def reset(self, symbol: str, reason: str, receipt_ns: int) -> None:
        self.pair.reset(symbol, reason, receipt_ns)
        self.batched.reset(symbol, reason, receipt_ns)

    def check(self) -> None:
        assert self.batch_verdicts == self.verdicts
        self.pair.check_state()
        single, batched = self.pair.native, self.batched
        assert batched.counts() == single.counts()
        assert sorted(batched.book_symbols()) == sorted(single.book_symbols())
        for s in single.book_symbols():
            assert batched.book_state(s) == single.book_state(s), s
            assert batched.book_stats(s) == single.book_stats(s), s
            assert batched.book_top(s) == single.book_top(s), s


def _split(events: list[Any]) -> tuple[list[Any], list[Any]]:
    core = [e for e in events if isinstance(e, CORE_EVENTS)]
    return core, [e for e in events if not isinstance(e, CORE_EVENTS)]


def _op_frame(stream: _Stream, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "depth":
        return stream.depth(*op[1:])
    if kind == "trade":
        _, sym, tid, agg = op
        data = {"e": "aggTrade" if agg else "trade", "E": 5, "s": sym, "p": "1.5", "q": "2", "T": 4, "m": agg}
        data |= {"a": tid, "f": tid, "l": tid + 1} if agg else {"t": tid}
        return json.dumps({"stream": f"{sym.lower()}@{data['e']}", "data": data})  # str frames too
    if kind == "ticker":
        _, sym, u = op
        return json.dumps({"u": u, "s": sym, "b": "1", "B": "2", "a": "3", "A": "4"}).encode()
    return op[1]  # junk


EXTRA = st.sampled_from([("kline", KLINE), ("kline", KLINE[:-3]), ("kline", KLINE.decode())])


@pytest.mark.parametrize("venue", ["futures", "spot"])
@pytest.mark.parametrize("depth", [None, 2])
@SETTINGS
@given(
    ops=st.lists(st.one_of(OP, EXTRA), max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=8),
    per_frame=st.booleans(),
)
def test_batches_decide_as_single_calls(
    venue: str, depth: int | None, ops: list[tuple[Any, ...]], cuts: list[int], per_frame: bool
) -> None:
    """Random streams (every sync rule, trades, tickers, junk, klines, str and bytes) cut into batches."""
    trio = Trio.make(venue, depth=depth)
    stream = _Stream(venue)
    pending: list[Any] = []

    def flush(t: int) -> None:
        if pending:
            trio.frames(pending, list(range(t, t + len(pending))) if per_frame else t)
            pending.clear()

    for i, op in enumerate(ops):
        if op[0] == "snapshot":
            flush(i)
            _, sym, off, b, a = op
            trio.snapshot(sym, json.dumps({"lastUpdateId": stream.last[sym] + off, "bids": b, "asks": a}), i)
        elif op[0] == "reset":
            flush(i)
            trio.reset(op[1], "connection_lost", i)
        else:
            pending.append(op[1] if op[0] == "kline" else _op_frame(stream, op))
            if i in cuts:
                flush(i)
    flush(len(ops))
    trio.check()


def _replay_batched(trio: Trio, shared: Path, name: str, rng: random.Random, mutate: bool) -> None:
    cap = read_ws_capture(shared / f"{name}.ws.txt")
    pending: list[Any] = []
    receipt = 0
    for item in replay_order(cap.frames, read_http_capture(shared / f"{name}.http.txt")):
        if isinstance(item, HttpRecord):
            if pending:
                trio.frames(pending, receipt)
                pending = []
            trio.snapshot(item.params["symbol"], item.body, int(item.receipt * 1e9))
            continue
        if not pending:
            receipt = int(item.receipt * 1e9)
        pending.append(_mutate(rng, item.text) if mutate and rng.random() < 0.3 else item.text.encode())
        if rng.random() < 0.1:
            trio.frames(pending, receipt)
            pending = []
    if pending:
        trio.frames(pending, receipt)
    trio.check()


@pytest.mark.parametrize("venue,name", [("futures", "usdm_futures"), ("spot", "spot")])
@pytest.mark.parametrize("mutate", [False, True])
def test_capture_batches_decide_as_single_calls(shared_captures: Path, venue: str, name: str, mutate: bool) -> None:
    """The real captures (and mutated ones) in seeded random batches between their snapshots."""
    trio = Trio.make(venue)
    _replay_batched(trio, shared_captures, name, random.Random(1717), mutate)
    assert sum(len(v[1][0]) for v in trio.verdicts if v[0] == "ok") > (40 if mutate else 100)
    assert mutate == any(v[0] == "error" for v in trio.verdicts)


def _depth(i: int) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "T": 1, "s": "X", "U": i, "u": i, "pu": i - 1, "b": [["1", "2"]], "a": []}
    return json.dumps({"stream": "x@depth", "data": data}).encode()


def test_batch_reads_the_real_clock_when_given_no_receipt_time() -> None:
    """receipt_ns=None: each frame is stamped from CLOCK_REALTIME, as time.time_ns reads it."""
    proc = NativeProcessor("futures", session="s")
    proc.on_snapshot("X", b'{"lastUpdateId":1,"bids":[],"asks":[]}', 0)
    proc.core.take_events()
    before = time.time_ns()
    kept = proc.feed_batch([_depth(i) for i in range(1, 50)], None, lambda *a: None)
    after = time.time_ns()
    receipts = [e.receipt_ns for e in proc.core.take_events()]
    assert kept == len(receipts) == 49
    assert receipts == sorted(receipts) and before <= receipts[0] and receipts[-1] <= after


def test_batch_takes_bytearray_and_refuses_what_is_not_a_frame() -> None:
    """A bytearray frame is read (under the GIL); a non-frame is a TypeError before any frame runs."""
    proc = NativeProcessor("futures", session="s")
    with pytest.raises(TypeError):
        proc.feed_many([_depth(1), 7], 0, 0)
    assert proc.counts().frames == 0
    with pytest.raises(ValueError):
        proc.feed_many([_depth(1)], [1, 2], 0)
    done, code, events = proc.feed_many([bytearray(_depth(1)), b"{"], 0, 0)
    assert (done, code & WANTS_SNAPSHOT, events) == (1, WANTS_SNAPSHOT, 0)  # buffered: waits for its snapshot
    assert proc.feed_many([bytearray(_depth(1)), b"{"], 0, 1) == (1, -1, 0)
    assert proc.counts().frames == 2 and proc.counts().malformed_json == 1


def test_python_code_run_by_a_batch_cannot_reenter_its_core() -> None:
    """A receipt's __index__ runs inside feed_many: a call back into the same core is refused, the
    batch it interrupted completes, and the core works afterwards (its reused buffers were not touched)."""
    proc = NativeProcessor("futures", session="s")
    proc.on_snapshot("X", b'{"lastUpdateId":1,"bids":[],"asks":[]}', 0)
    refused: list[str] = []

    class Receipt:
        def __index__(self) -> int:
            try:
                proc.feed_many([_depth(99)], 0, 0)
            except RuntimeError as exc:
                refused.append(str(exc))
            return 5

    frames = [_depth(i) for i in range(1, 39)]
    done, code, events = proc.feed_many(frames, [Receipt() for _ in frames], 0)
    assert (done, code, events) == (38, 0, 38) and len(refused) == 38
    assert {e.receipt_ns for e in proc.core.take_events()} == {5}
    assert proc.feed_many([_depth(39)], 7, 0) == (1, 0, 1)


def _synced() -> NativeProcessor:
    proc = NativeProcessor("futures", session="s")
    proc.on_snapshot("X", b'{"lastUpdateId":1,"bids":[],"asks":[]}', 0)
    proc.core.take_events()
    return proc


def _singles(frames: list[Any], receipts: list[int]) -> tuple[list[Any], Any]:
    """The events and counts of the frames one call each, on a fresh synced core."""
    proc, events = _synced(), []
    for raw, r in zip(frames, receipts, strict=True):
        events += proc.on_frame(raw, r)
    return events, proc.counts()


class _Index:
    """A receipt whose __index__ runs ``act`` on its ``at``-th call (counted across the batch)."""

    def __init__(self, calls: list[int], at: int, act: Any, value: int = 5) -> None:
        self.calls, self.at, self.act, self.value = calls, at, act, value

    def __index__(self) -> int:
        self.calls[0] += 1
        if self.calls[0] == self.at:
            self.act()
        return self.value


_RESIZE = {
    "clear": lambda lst: lst.clear(),
    "extend": lambda lst: lst.extend(list(lst)),
    "pop": lambda lst: lst.pop(),
}


@pytest.mark.parametrize("which", ["frames", "receipts"])
@pytest.mark.parametrize("how", sorted(_RESIZE))
@pytest.mark.parametrize("at", [1, 20])  # in the first chunk (before any frame ran) or the second
def test_a_receipts_index_that_resizes_a_list_is_a_clean_error(which: str, how: str, at: int) -> None:
    """__index__ of a receipt clears, extends or shortens the frames' or the receipts' list mid-batch:
    a ValueError, never a read past the list (this crashed); the frames before it ran as single calls."""
    proc = _synced()
    frames = [_depth(i) for i in range(1, 39)]
    calls = [0]
    receipts: list[Any] = []
    target = frames if which == "frames" else receipts
    receipts.extend(_Index(calls, at, lambda: _RESIZE[how](target)) for _ in frames)
    with pytest.raises(ValueError, match="changed size during feed_many"):
        proc.feed_many(frames, receipts, 0)
    ran = 0 if at == 1 else 16  # the first chunk (16 frames) had run when the second's receipts were read
    assert proc.counts().frames == ran
    want, counts = _singles([_depth(i) for i in range(1, 1 + ran)], [5] * ran)
    assert proc.core.take_events() == want and proc.counts() == counts
    assert proc.feed_many([_depth(1 + ran)], 7, 0) == (1, 0, 1)  # and the core goes on


def _depth_at(i: int, price: str) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "T": 1, "s": "X", "U": i, "u": i, "pu": i - 1, "b": [[price, "2"]], "a": []}
    return json.dumps({"stream": "x@depth", "data": data}).encode()


def test_a_receipts_index_that_replaces_frames_or_receipts_reads_the_new_ones() -> None:
    """Items replaced (the lists' sizes kept) by a receipt's __index__ before their frames are viewed:
    the batch reads the new frames and receipt times, as single calls on the lists as they became."""
    for at in (1, 20):
        proc = _synced()
        frames: list[Any] = [_depth(i) for i in range(1, 39)]
        new_frames = [_depth_at(i, "3.50") for i in range(1, 39)]
        calls = [0]

        def swap(frames: list[Any] = frames, new_frames: list[bytes] = new_frames, at: int = at) -> None:
            frames[at - 1 :] = new_frames[at - 1 :]  # the frames not viewed yet (a fresh chunk from 20 on)

        receipts: list[Any] = [_Index(calls, at, swap) for _ in frames]
        assert proc.feed_many(frames, receipts, 0) == (38, 0, 38)
        want, counts = _singles(frames, [5] * 38)
        assert frames[-1] is new_frames[-1] and proc.core.take_events() == want and proc.counts() == counts

    proc = _synced()
    frames = [_depth(i) for i in range(1, 39)]
    calls = [0]
    receipts = [0] * 38

    def retime() -> None:
        receipts[1:] = range(100, 137)  # exact ints from here on: read directly

    receipts[0] = _Index(calls, 1, retime)
    assert proc.feed_many(frames, receipts, 0) == (38, 0, 38)
    want, counts = _singles(frames, [5, *range(100, 137)])
    assert proc.core.take_events() == want and proc.counts() == counts


class _Bytes(bytes):
    pass


class _Str(str):
    pass


class _Int(int):
    def __index__(self) -> int:  # never called: an int's value is read as it is
        raise AssertionError("called")


def test_batch_takes_bytes_and_str_subclasses_and_int_subclass_receipts() -> None:
    """Subclasses of bytes and str are frames and of int receipt times, as for single calls."""
    frames = [_Bytes(_depth(i)) if i % 2 else _Str(_depth(i).decode()) for i in range(1, 39)]
    receipts = [_Int(100 + i) for i in range(38)]
    proc = _synced()
    assert proc.feed_many(frames, receipts, 0) == (38, 0, 38)
    want, counts = _singles(frames, [100 + i for i in range(38)])
    assert proc.core.take_events() == want and proc.counts() == counts
    proc = _synced()
    assert proc.feed_many(frames, _Int(9), 0) == (38, 0, 38)
    assert {e.receipt_ns for e in proc.core.take_events()} == {9}


def test_a_receipt_that_is_not_an_index_is_a_type_error() -> None:
    proc = _synced()
    with pytest.raises(TypeError):
        proc.feed_many([_depth(1), _depth(2)], [1, "2"], 0)
    assert proc.counts().frames == 0
