"""ingest's native decoder gives exactly the pure-Python reference's tables, counts and session rows:
on random batches of every channel, on hand-made edge cases of the JSON and the schema, on events
of the real captures, and on damaged payloads; on a clean batch it is the one that decodes."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.strategies import events, payloads
from tests.ingest.support import make_events
from tickpath.events import BookSnapshot, Event, encode_event
from tickpath.ingest import columns, native
from tickpath.ingest.columns import Decoded, decode_batch
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order
from tickpath.venues.binance.processor import PureProcessor

pytestmark = pytest.mark.skipif(native._decode is None, reason="the native ingest decoder is not built (make native)")

_HDR = b"NATS/1.0\r\nTickpath-Publish-Ns: %d\r\n\r\n"
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _reference(ps: list[bytes]) -> Decoded:
    """The pure-Python paths alone (what ``TICKPATH_PURE=1`` runs)."""
    pub = columns.publish_ns_array([_HDR % i for i in range(len(ps))])
    got = columns._decode_grouped(ps, pub)
    return got if got is not None else columns._decode_general(ps, pub)


def _both(ps: list[bytes]) -> tuple[Decoded, Decoded]:
    got = decode_batch(ps, [_HDR % i for i in range(len(ps))])
    want = _reference(ps)
    assert (got.rejected, got.duplicates, got.sessions) == (want.rejected, want.duplicates, want.sessions)
    assert got.tables.keys() == want.tables.keys()
    for name, table in want.tables.items():
        assert got.tables[name].schema == table.schema, name
        assert got.tables[name].equals(table), name
    return got, want


def _unique(evs: list[Event]) -> list[Event]:
    """The events with their seq renumbered, so that no key repeats."""
    return [msgspec.structs.replace(e, seq=k) for k, e in enumerate(evs, 1)]


@SETTINGS
@given(payloads())
def test_native_equals_the_reference_on_any_batch(ps: list[bytes]) -> None:
    """Every channel, session rows, repeats, damaged payloads: the reference's tables and counts."""
    _both(ps)


@SETTINGS
@given(st.lists(events(), min_size=1, max_size=60))
def test_a_clean_batch_is_decoded_natively(evs: list[Event]) -> None:
    """Events of any channel (escapes and non-ASCII in their strings, nulls, int64 bounds): the
    native decoder takes the batch, and its tables are the reference's."""
    got, _ = _both([encode_event(e) for e in _unique(evs)])
    assert got.native


def test_the_pure_switch_selects_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """``TICKPATH_PURE=1``: the native decoder is not used."""
    ps = [encode_event(e) for e in make_events(30)]
    assert decode_batch(ps, [None] * len(ps)).native
    monkeypatch.setenv("TICKPATH_PURE", "1")
    assert not native.available()
    assert not decode_batch(ps, [None] * len(ps)).native


_BASE = encode_event(make_events(1)[0])  # a trade
_SNAP = encode_event(
    BookSnapshot(
        session="s", venue="spot", symbol="X", seq=1, event_time_ms=None, transaction_time_ms=None, receipt_ns=5,
        last_update_id=9, bids=[("1", "2")], asks=[], depth=None,
    )
)  # fmt: skip


def _edit(old: bytes, new: bytes, base: bytes = _BASE) -> bytes:
    assert old in base, old
    return base.replace(old, new, 1)


EDGES = {
    "int64 max": _edit(b'"trade_id":0', b'"trade_id":9223372036854775807'),
    "int64 min": _edit(b'"trade_id":0', b'"trade_id":-9223372036854775808'),
    "beyond int64": _edit(b'"trade_id":0', b'"trade_id":9223372036854775808'),
    "minus zero": _edit(b'"trade_id":0', b'"trade_id":-0'),
    "a float for an int": _edit(b'"trade_id":0', b'"trade_id":1.0'),
    "an exponent": _edit(b'"trade_id":0', b'"trade_id":1e3'),
    "a leading zero": _edit(b'"trade_id":0', b'"trade_id":01'),
    "true for an int": _edit(b'"trade_id":0', b'"trade_id":true'),
    "null where none is allowed": _edit(b'"trade_id":0', b'"trade_id":null'),
    "a string for an int": _edit(b'"trade_id":0', b'"trade_id":"0"'),
    "an unknown key": _edit(b'"qty"', b'"extra":[1,{"a":2}],"qty"'),
    "a missing key": _edit(b',"trade_id":0', b""),
    "a repeated key": _edit(b'"qty"', b'"price":"2","qty"'),
    "the tag again": _edit(b'"qty"', b'"type":"trade","qty"'),
    "whitespace": _edit(b'"qty":', b' "qty" : ').replace(b"}", b" }\n"),
    "an escaped quote": _edit(b'"price":"', b'"price":"\\"'),
    "a \\u escape": _edit(b'"price":"', b'"price":"\\u0041'),
    "a lone surrogate escape": _edit(b'"price":"', b'"price":"\\ud800'),
    "an invalid escape": _edit(b'"price":"', b'"price":"\\x'),
    "a control character": _edit(b'"price":"', b'"price":"\x01'),
    "UTF-8": _edit(b'"price":"', b'"price":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80'),
    "an overlong UTF-8": _edit(b'"price":"', b'"price":"\xc0\xaf'),
    "a UTF-8 surrogate": _edit(b'"price":"', b'"price":"\xed\xa0\x80'),
    "beyond U+10FFFF": _edit(b'"price":"', b'"price":"\xf4\x90\x80\x80'),
    "a cut UTF-8": _BASE[: _BASE.index(b'"price":"') + 9] + b"\xe2\x82",
    "a venue no event has": _edit(b'"venue":"spot"', b'"venue":"moon"'),
    "a side no trade has": _edit(b'"side":"', b'"side":"x'),
    "a foreign channel": _edit(b'"channel":"trades"', b'"channel":"ticker"'),
    "two values": _BASE + b" " + _BASE,
    "trailing garbage": _BASE + b"x",
    "a trailing comma": _edit(b"}", b",}"),
    "an empty payload": b"",
    "the prefix alone": b'{"type":"trade"',
    "an unknown tag": _edit(b'"type":"trade"', b'"type":"trades"'),
    "a depth beyond int32 refused": _edit(b'"depth":null', b'"depth":2147483647', _SNAP),
    "levels with whitespace": _edit(b'"bids":[["1","2"]]', b'"bids":[ [ "1" , "2" ] , ["3","4"] ]', _SNAP),
    "a level of three": _edit(b'"bids":[["1","2"]]', b'"bids":[["1","2","3"]]', _SNAP),
    "a level of numbers": _edit(b'"bids":[["1","2"]]', b'"bids":[[1,2]]', _SNAP),
    "levels null": _edit(b'"bids":[["1","2"]]', b'"bids":null', _SNAP),
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_cases_of_json_and_schema_match_the_reference(name: str) -> None:
    """Each edge case alone and among valid events of every table: the reference's result."""
    good = [encode_event(e) for e in make_events(12, session="s9")]
    _both([EDGES[name]])
    _both([*good[:5], EDGES[name], _SNAP, *good[5:]])


def _capture_events(shared: Path, name: str, venue: str) -> list[Event]:
    proc = PureProcessor(venue, session="cap")  # type: ignore[arg-type]
    out: list[Event] = []
    cap = read_ws_capture(shared / f"{name}.ws.txt")
    for item in replay_order(cap.frames, read_http_capture(shared / f"{name}.http.txt")):
        if isinstance(item, HttpRecord):
            out += proc.on_snapshot(item.params["symbol"], item.body, int(item.receipt * 1e9))
        else:
            out += proc.on_frame(item.text, int(item.receipt * 1e9))
    return out


@pytest.mark.parametrize(("venue", "name"), [("futures", "usdm_futures"), ("spot", "spot")])
def test_events_of_the_real_captures_decode_natively_as_the_reference(
    shared_captures: Path, venue: str, name: str
) -> None:
    """The feed's events of a real capture, in batches of 100: native, and equal to the reference;
    then the same batches with one payload in twenty cut short."""
    evs = _capture_events(shared_captures, name, venue)
    assert len(evs) > 200
    ps = [encode_event(e) for e in evs]
    rng = random.Random(17)
    for i in range(0, len(ps), 100):
        got, _ = _both(ps[i : i + 100])
        assert got.native
        _both([p[: rng.randrange(len(p))] if rng.random() < 0.05 else p for p in ps[i : i + 100]])
