"""The native core and the pure-Python reference make identical decisions.

Both processors receive the same inputs (the real captures in ../shared, random event streams that
exercise every sync rule, and real frames mutated byte by byte) and every step must give the same
events (or the same rejection reason), the same snapshot requests, and at the end the same counters,
book states and books.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.harness import Pair
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order
from tickpath.venues.binance.parse import ParseError

CAPTURES = {"futures": "usdm_futures", "spot": "spot"}
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _replay(pair: Pair, shared: Path, name: str, frames: list[str] | None = None) -> None:
    cap = read_ws_capture(shared / f"{name}.ws.txt")
    if frames is not None:  # the same receipt times, other bytes (mutated)
        cap.frames = [replace(f, text=text) for f, text in zip(cap.frames, frames, strict=True)]
    for item in replay_order(cap.frames, read_http_capture(shared / f"{name}.http.txt")):
        if isinstance(item, HttpRecord):
            pair.snapshot(item.params["symbol"], item.body, int(item.receipt * 1e9))
        else:
            pair.frame(item.text, int(item.receipt * 1e9))
    pair.check_state()


@pytest.mark.parametrize("venue", ["futures", "spot"])
@pytest.mark.parametrize("depth", [None, 1, 5])
def test_real_captures_give_identical_events(shared_captures: Path, venue: str, depth: int | None) -> None:
    pair = Pair.make(venue, depth=depth)
    _replay(pair, shared_captures, CAPTURES[venue])
    assert pair.events, "the capture produced events"
    kinds = {type(e).__name__ for e in pair.events}
    assert {"BookSnapshot", "BookDelta", "Trade", "Ticker"} <= kinds
    assert pair.native.counts().frames > 250


@pytest.mark.parametrize("venue", ["futures", "spot"])
def test_capture_frames_as_bytes_and_restricted_symbols(shared_captures: Path, venue: str) -> None:
    cap = read_ws_capture(shared_captures / f"{CAPTURES[venue]}.ws.txt")
    sym = sorted({json.loads(f.text)["data"]["s"] for f in cap.frames})[0]
    pair = Pair.make(venue, symbols=(sym,))  # others are unexpected symbols for depth
    _replay(pair, shared_captures, CAPTURES[venue], [f.text.encode() for f in cap.frames])  # type: ignore[misc]
    assert pair.native.counts().unexpected_symbol > 0


def _mutate(rng: random.Random, text: str) -> bytes:
    raw = bytearray(text.encode())
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        i = rng.randrange(max(1, len(raw)))
        if not raw:
            raw = bytearray(b"{")
        if op == 0:
            del raw[i:]
        elif op == 1:
            raw[i] = rng.randrange(256)
        elif op == 2:
            raw.insert(i, rng.choice(b'"{}[],:.-e0\\ \xff'))
        elif op == 3:
            del raw[i]
        elif op == 4 and chr(raw[i]).isdigit():
            raw[i : i + 1] = rng.choice([b"1e5", b"99999999999999999999", b"-", b".", b"00"])
        else:
            raw[i:i] = rng.choice([b'"x":1,', b"\\u0041", b"\\ud800", b"null", b"[[[[", b'"\xc3\x28"'])
    return bytes(raw)


@pytest.mark.parametrize("venue", ["futures", "spot"])
def test_mutated_real_frames_are_judged_alike(shared_captures: Path, venue: str) -> None:
    """Truncations, flipped bytes, wrong types, invalid UTF-8, bad escapes: same verdict, same reason."""
    rng = random.Random(17)
    texts = [f.text for f in read_ws_capture(shared_captures / f"{CAPTURES[venue]}.ws.txt").frames]
    mutated = [_mutate(rng, t) if rng.random() < 0.5 else t.encode() for t in texts]
    pair = Pair.make(venue)
    _replay(pair, shared_captures, CAPTURES[venue], mutated)  # type: ignore[arg-type]
    counts = pair.native.counts()
    assert counts.malformed_json > 50 and counts.schema > 5  # the mutations reached both kinds


# -- random streams ---------------------------------------------------------------------------------

VALID = st.sampled_from(["0", "1", "10", "0.1", "1.50", "7.6110", "0.00001234", "123456789012345", "0.000"])
INVALID = st.sampled_from(["1e5", "01", "", ".5", "5.", "+1", "1.2.3", " 1", "1_0", "-1", "1234567890123456789"])
PRICE = st.one_of(st.integers(1, 40).map(lambda i: f"{i / 4:.2f}"), VALID.filter(lambda s: s != "0"), INVALID)
QTY = st.one_of(st.sampled_from(["0", "0.000", "1", "2.5", "10"]), VALID, INVALID)
LEVELS = st.lists(st.tuples(st.one_of(PRICE, st.integers(1, 9).map(str)), QTY), max_size=4)
SYMS = st.sampled_from(["AAA", "BBB"])
OP = st.one_of(
    st.tuples(st.just("depth"), SYMS, st.integers(-2, 3), st.integers(0, 3), st.booleans(), LEVELS, LEVELS),
    st.tuples(st.just("snapshot"), SYMS, st.integers(-3, 3), LEVELS, LEVELS),
    st.tuples(st.just("trade"), SYMS, st.integers(0, 6), st.booleans()),
    st.tuples(st.just("ticker"), SYMS, st.integers(0, 6)),
    st.tuples(st.just("reset"), SYMS),
    st.tuples(st.just("junk"), st.binary(max_size=40)),
)


class _Stream:
    """Turns generated operations into frames whose ids mostly continue, sometimes jump or repeat."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.last: dict[str, int] = {"AAA": 100, "BBB": 100}

    def depth(self, sym: str, jump: int, span: int, wrong_pu: bool, b: Any, a: Any) -> bytes:
        first = self.last[sym] + 1 + jump
        last = first + span
        data: dict[str, Any] = {"e": "depthUpdate", "E": 1, "s": sym, "U": first, "u": last, "b": b, "a": a}
        if self.venue == "futures":
            data |= {"T": 2, "pu": self.last[sym] + (1 if wrong_pu else 0)}
        self.last[sym] = max(self.last[sym], last)
        return json.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": data}).encode()


@pytest.mark.parametrize("venue", ["futures", "spot"])
@pytest.mark.parametrize(("depth", "max_buffer"), [(None, 1_000), (2, 1_000), (None, 3)])
@SETTINGS
@given(ops=st.lists(OP, max_size=60))
def test_random_streams_give_identical_events(
    venue: str, depth: int | None, max_buffer: int, ops: list[tuple[Any, ...]]
) -> None:
    """max_buffer=3: buffers overflow, and the buffered levels (kept compact natively) replay alike."""
    pair = Pair.make(venue, depth=depth, max_buffer=max_buffer)
    stream = _Stream(venue)
    for i, op in enumerate(ops):
        kind = op[0]
        if kind == "depth":
            pair.frame(stream.depth(*op[1:]), i)
        elif kind == "snapshot":
            _, sym, off, b, a = op
            body = {"lastUpdateId": stream.last[sym] + off, "bids": b, "asks": a}
            pair.snapshot(sym, json.dumps(body).encode(), i)
        elif kind == "trade":
            _, sym, tid, agg = op
            data = {"e": "aggTrade" if agg else "trade", "E": 5, "s": sym, "p": "1.5", "q": "2", "T": 4, "m": agg}
            data |= {"a": tid, "f": tid, "l": tid + 1} if agg else {"t": tid}
            pair.frame(json.dumps({"stream": f"{sym.lower()}@{data['e']}", "data": data}), i)
        elif kind == "ticker":
            _, sym, u = op
            data = {"u": u, "s": sym, "b": "1", "B": "2", "a": "3", "A": "4"}
            pair.frame(json.dumps(data).encode(), i)  # a raw spot-style payload: the general path
        elif kind == "reset":
            pair.reset(op[1], "connection_lost", i)
        else:
            pair.frame(op[1], i)
    pair.check_state()


_D = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,'
FOUND_BY_FUZZ = [
    b'{"stream":"',  # the core read past the end looking for the stream name's closing quote
    _D + b'"b":[],"a":[],"p":"1.5"}}',  # a key "p" was taken for "pu"
    _D + b'"b":[["1","2",\xff]],"a":[]}}',  # a third element in a level is too long, not malformed
    _D + b'"b":[["1","2",]],"a":[]}}',  # ... but a trailing comma is malformed
    b'{"stream":"btcusdt@trade","data":{"e":{"result"trade","E":1}}',  # a tag value is read to its end
    b'{"stream":"btcu\x9fsdt@kline_1m","E":1,"s":"BTCUSDT","k":{"t":2}}}',  # missing data before trailing bytes
    b'{"stream":"x@aggTrade","data":{"e":"aggTrade","E":1,"s":"X","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":-x}}',
    # a channel's frame whose only data key is not UTF-8: malformed (the reference checks every key), not schema
    b'{"stream":"btcusdt@kline_1m","\x83data":{"e":"klioe","E":1,"s":"BTCUSDT","k":{"t":1}}}',
    b'{"stream":"!miniTicker@arr","data":[{"e":"24hrMiniTicker","E":1,"s":"X","c":"1","o":"1","h":"1","l":"1"}]}',
    b'{"stream":"!miniTicker@arr","\xffdata":[]}',  # !miniTicker@arr is miniTickerArr, not miniTicker
    b'{"stream":"!foo@bar","data":{}}',
]


@pytest.mark.parametrize("frame", FOUND_BY_FUZZ)
@pytest.mark.parametrize("venue", ["futures", "spot"])
def test_frames_found_by_fuzzing(venue: str, frame: bytes) -> None:
    pair = Pair.make(venue)
    pair.frame(frame, 1)
    pair.snapshot("BTCUSDT", frame, 2)
    pair.check_state()


@pytest.mark.parametrize(
    "frame", [b'{"stream":"!foo@bar","data":{}}', b'{"e":"foo@bar","E":1}', b'{"data":{},"stream":"x@kl"}']
)
def test_unknown_kinds_are_named_alike(frame: bytes) -> None:
    """An unknown stream or event kind is named the same by both (all-market names keep their `@` tail)."""
    pair = Pair.make("futures")
    messages = []
    for proc in (pair.pure, pair.native):
        with pytest.raises(ParseError) as exc:
            proc.on_frame(frame, 1)
        messages.append((exc.value.reason, str(exc.value)))
    assert messages[0] == messages[1] and messages[0][0] == "unknown_event"


@pytest.mark.parametrize("venue", ["futures", "spot"])
def test_overflowing_buffer_replays_alike(venue: str) -> None:
    """Ten events buffered into room for three: the last three replay (trailing zeros keep their keys)."""
    pair = Pair.make(venue, max_buffer=3)
    stream = _Stream(venue)
    for i in range(10):
        bids = [[f"{100 - i}.{i}0", "1.500"], ["7.6110", str(i)]]
        pair.frame(stream.depth("AAA", 0, 0, False, bids, [[f"{200 + i}.000", "0.0010"]]), i)
    assert pair.native.book_stats("AAA")["buffer_overflow"] == 7
    last_id = stream.last["AAA"] - (2 if venue == "futures" else 3)  # the first kept event bridges it
    body = {"lastUpdateId": last_id, "bids": [["7.611", "9"]], "asks": [["300", "1"]]}
    pair.snapshot("AAA", json.dumps(body).encode(), 11)
    pair.check_state()
    assert pair.native.book_stats("AAA")["deltas"] == 3  # the three kept events, on top of the snapshot
    bids, asks = pair.native.book_top("AAA")
    assert bids[-1] == ("7.6110", "9") and len(bids) == len(asks) == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_max_buffer_below_one_is_refused_alike(bad: Any) -> None:
    """max_buffer=0 crashed the core (the front of an empty buffer) and raised IndexError in the
    reference: both refuse it when built, with a ConfigError naming the value; the core refuses it too."""
    from tickpath.errors import ConfigError
    from tickpath.venues.binance import _core
    from tickpath.venues.binance.processor import NativeProcessor, PureProcessor, make_processor

    builds = [
        lambda: NativeProcessor("futures", session="s", max_buffer=bad),
        lambda: PureProcessor("futures", session="s", max_buffer=bad),
        lambda: make_processor("futures", session="s", max_buffer=bad, native=True),
        lambda: make_processor("futures", session="s", max_buffer=bad, native=False),
    ]
    messages = set()
    for build in builds:
        with pytest.raises(ConfigError, match="max_buffer") as exc:
            build()
        messages.add(str(exc.value))
    assert messages == {f"max_buffer must be an int of at least 1, got {bad!r}"}
    if bad == 0:
        with pytest.raises(ValueError, match="max_buffer must be at least 1"):
            _core.Core(True, [], False, -1, 0, "s", "futures", (None,) * 5)


@pytest.mark.parametrize("venue", ["futures", "spot"])
def test_a_buffer_of_one_keeps_the_newest_alike(venue: str) -> None:
    """max_buffer=1, the least allowed: each event replaces the one before; the last replays."""
    pair = Pair.make(venue, max_buffer=1)
    stream = _Stream(venue)
    for i in range(4):
        pair.frame(stream.depth("AAA", 0, 0, False, [[f"{100 - i}", "1"]], []), i)
    assert pair.native.book_stats("AAA")["buffer_overflow"] == 3
    last_id = stream.last["AAA"] - (0 if venue == "futures" else 1)
    pair.snapshot("AAA", json.dumps({"lastUpdateId": last_id, "bids": [], "asks": [["300", "1"]]}).encode(), 5)
    pair.check_state()
    assert pair.native.book_stats("AAA")["deltas"] == 1
