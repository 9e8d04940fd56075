"""The native decoder's fast path (fast.hpp) gives way to the general reader at every deviation.

The fast path reads depthUpdate, bookTicker and aggTrade frames in Binance's own shape; anything
else (other key orders, blanks, escapes, extra or repeated keys, nulls, signs, odd decimals, a
truncation at any byte) must be judged exactly as the pure-Python reference judges it: the same
events or the same rejection reason, the same counters and books afterwards. Each variant runs on a
fresh pair of processors whose book was just loaded from a snapshot, so a depth frame that is
accepted bridges it and shows its decoded levels and ids as events. The core counts the frames its
fast path decoded whole (``Core.fast_hits``): the base frames must take it and each deviation must
not (the cases the fast path reads itself are named), or a fast path that always gave up would pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.harness import Pair
from tickpath.venues.binance.capture import read_ws_capture

SNAPSHOT = b'{"lastUpdateId":100,"E":1,"T":1,"bids":[["0.2400","5"]],"asks":[["0.2500","5"]]}'
DEPTH_DATA = (
    b'{"e":"depthUpdate","E":1626992759238,"T":1626992759226,"s":"KEEPUSDT","U":95,"u":105,"pu":94,'
    b'"b":[["0.2460","10"],["0.2399","0"]],"a":[["0.2467","1151"],["0.2475","24634.5"]]}'
)
DEPTH = b'{"stream":"keepusdt@depth@100ms","data":' + DEPTH_DATA + b"}"
SPOT_DEPTH = (
    b'{"stream":"keepusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"KEEPUSDT","U":95,'
    b'"u":105,"b":[["0.35130000","6195.00000000"]],"a":[]}}'
)
TICKER = (
    b'{"stream":"keepusdt@bookTicker","data":{"e":"bookTicker","u":600859600576,"s":"KEEPUSDT","b":"7.6110",'
    b'"B":"2","a":"7.6120","A":"297","T":1626992741012,"E":1626992741017}}'
)
SPOT_TICKER = (
    b'{"stream":"keepusdt@bookTicker","data":{"u":499869768,"s":"KEEPUSDT","b":"0.35210000","B":"672.00000000",'
    b'"a":"0.35260000","A":"3199.00000000"}}'
)
AGG_DATA = (
    b'{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"KEEPUSDT","p":"1.01100","q":"10","f":23961322,'
    b'"l":23961322,"T":1626992741421,"m":false}'
)
AGG = b'{"stream":"keepusdt@aggTrade","data":' + AGG_DATA + b"}"
SPOT_AGG = (
    b'{"stream":"keepusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"KEEPUSDT","a":15683430,'
    b'"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}'
)
BASES = {
    "depth": DEPTH,
    "raw_depth": DEPTH_DATA,
    "spot_depth": SPOT_DEPTH,
    "ticker": TICKER,
    "spot_ticker": SPOT_TICKER,
    "agg": AGG,
    "raw_agg": AGG_DATA,
    "spot_agg": SPOT_AGG,
}


def _judge(frames: list[bytes], venue: str = "futures", fast: bool | Sequence[bool | None] | None = False) -> Pair:
    """Each frame on a fresh pair whose KEEPUSDT book was just loaded; identical steps and state.

    ``fast``: whether the native core's fast path decoded the frame (per frame, or one for all; None:
    not asserted)."""
    expected = list(fast) if isinstance(fast, Sequence) else [fast] * len(frames)
    assert len(expected) == len(frames)
    for raw, want in zip(frames, expected, strict=True):
        pair = Pair.make(venue)
        pair.snapshot("KEEPUSDT", SNAPSHOT, 1)
        pair.frame(raw, 2)
        pair.check_state()
        if want is not None:
            assert _fast_hits(pair) == int(want), f"fast path {'not ' if want else ''}taken: {raw!r:.300}"
    return pair


def _fast_hits(pair: Pair) -> int:
    return int(pair.native.core.fast_hits())  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(BASES))
def test_binance_shaped_frames_give_events(name: str) -> None:
    venue = "spot" if name.startswith("spot") else "futures"
    pair = Pair.make(venue)
    pair.snapshot("KEEPUSDT", SNAPSHOT, 1)
    pair.frame(BASES[name], 2)
    pair.check_state()
    assert len(pair.events) >= 2  # the snapshot and what the frame made (no rejection)
    assert _fast_hits(pair) == 1  # and the fast path read it


def test_the_batch_entry_takes_the_fast_path_too() -> None:
    """Every base frame of a venue through feed_batch: each decoded by the fast path."""
    for venue in ("futures", "spot"):
        frames = [raw for name, raw in BASES.items() if name.startswith("spot") == (venue == "spot")]
        pair = Pair.make(venue)
        pair.native.feed_batch(frames, 2, lambda *a: None)  # type: ignore[attr-defined]
        assert _fast_hits(pair) == len(frames) == pair.native.counts().frames


@pytest.mark.parametrize("name", sorted(BASES))
def test_truncation_at_every_byte(name: str) -> None:
    base = BASES[name]
    venue = "spot" if name.startswith("spot") else "futures"
    _judge([base[:i] for i in range(len(base))] + [base + b" ", base + b"}", base + b"x"], venue)


@pytest.mark.parametrize("name", ["depth", "raw_depth", "ticker", "agg"])
def test_a_blank_anywhere(name: str) -> None:
    base = BASES[name]
    at = list(range(1, len(base)))[::3]
    frames = [base[:i] + b" " + base[i:] for i in at] + [b" " + base, base.replace(b":", b": ")]
    # A blank between tokens sends the frame the general way; one inside a string is part of the string
    # (a symbol "KEEP USDT" is still in the fast path's shape, a price "0.24 60" is not): not asserted.
    _judge(frames, fast=[None if base[:i].count(b'"') % 2 else False for i in at] + [False, False])


def _reordered(data: bytes) -> list[bytes]:
    """The payload's members rotated, swapped pairwise and reversed."""
    obj = json.loads(data)
    keys = list(obj)
    orders = [keys[i:] + keys[:i] for i in range(1, len(keys))]
    orders += [keys[:i] + [keys[i + 1], keys[i]] + keys[i + 2 :] for i in range(len(keys) - 1)]
    orders.append(keys[::-1])
    return [json.dumps({k: obj[k] for k in order}, separators=(",", ":")).encode() for order in orders]


@pytest.mark.parametrize("stream,data", [("keepusdt@depth@100ms", DEPTH_DATA), ("keepusdt@aggTrade", AGG_DATA)])
def test_reordered_keys(stream: str, data: bytes) -> None:
    frames = [b'{"stream":"%s","data":%s}' % (stream.encode(), d) for d in _reordered(data)]
    frames += _reordered(data)  # raw
    frames.append(b'{"data":%s,"stream":"%s"}' % (data, stream.encode()))
    # Only Binance's own orders are the fast path's: an aggTrade's "a" and "s" come either way (USD-M, spot).
    own = [list(json.loads(data)), ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]]
    fast = [list(json.loads(f).get("data", json.loads(f))) in own for f in frames[:-1]]
    assert any(fast) == (stream == "keepusdt@aggTrade")
    _judge(frames, fast=[*fast, False])


def test_escapes_in_keys_and_values() -> None:
    frames = [
        DEPTH.replace(b'"s":', b'"\\u0073":'),
        DEPTH.replace(b'"KEEPUSDT"', b'"KEEP\\u0055SDT"'),
        DEPTH.replace(b'"0.2460"', b'"0.24\\u00360"'),
        DEPTH.replace(b'"10"', b'"1\\u0030"'),
        DEPTH.replace(b'"depthUpdate"', b'"depth\\u0055pdate"'),
        DEPTH.replace(b"keepusdt@depth", b"keepusdt\\u0040depth"),
        DEPTH.replace(b"keepusdt@depth", b'keep\\"usdt@depth'),
        DEPTH.replace(b'"stream"', b'"str\\u0065am"'),
        DEPTH.replace(b'"data"', b'"d\\u0061ta"'),
        TICKER.replace(b'"7.6110"', b'"7.\\u0036110"'),
        TICKER.replace(b'"KEEPUSDT"', b'"KEEP\\/USDT"'),
        AGG.replace(b'"1.01100"', b'"1.011\\u00300"'),
        AGG.replace(b'"m":false', b'"\\u006d":false'),
    ]
    _judge(frames)


def test_extra_and_repeated_keys() -> None:
    frames = [
        DEPTH.replace(b'"E":', b'"x":1,"E":'),
        DEPTH.replace(b'"pu":94,', b'"pu":94,"x":[1,{"y":null}],'),
        DEPTH.replace(b"]]}}", b']],"M":true}}'),
        DEPTH.replace(b"]]}}", b']],"E":7}}'),
        DEPTH.replace(b"]]}}", b']],"b":[]}}'),
        DEPTH.replace(b"]]}}", b']],"s":"OTHERUSDT"}}'),
        DEPTH.replace(b"]]}}", b']],"e":"depthUpdate"}}'),
        DEPTH.replace(b"]]}}", b']]},"x":1}'),
        DEPTH.replace(b"]]}}", b']]},"data":' + DEPTH_DATA + b"}"),
        DEPTH.replace(b"]]}}", b']]},"stream":"x@kline_1m"}'),
        DEPTH.replace(b'"U":95,', b'"U":95,"U":96,'),
        DEPTH.replace(b'"s":"KEEPUSDT",', b""),
        TICKER.replace(b'"A":"297"', b'"A":"297","x":1'),
        TICKER.replace(b'"A":"297"', b'"A":"297","b":"1"'),
        TICKER.replace(b',"T":1626992741012', b""),
        TICKER.replace(b'"e":"bookTicker"', b'"e":"other"'),
        AGG.replace(b'"m":false', b'"m":false,"M":false,"M":true'),
        AGG.replace(b'"m":false', b'"m":false,"x":1'),
        AGG.replace(b'"m":false', b'"m":false,"m":true'),
        SPOT_AGG.replace(b'"M":true', b'"M":"yes"'),
    ]
    _judge(frames)
    # The keys the fast path knows to be optional (spot has no T and no pu): still its shape.
    _judge([DEPTH.replace(b'"T":1626992759226,', b""), DEPTH.replace(b'"pu":94,', b"")], fast=True)


ODD_VALUES = [
    # ids: nulls, signs, leading zeros, fractions, exponents, int64's edges and beyond
    (b'"T":1626992759226', b'"T":null'),
    (b'"pu":94', b'"pu":null'),
    (b'"pu":94', b'"pu":-1'),
    (b'"U":95', b'"U":-95'),
    (b'"U":95', b'"U":095'),
    (b'"U":95', b'"U":0'),
    (b'"U":95', b'"U":95.0'),
    (b'"U":95', b'"U":95e0'),
    (b'"E":1626992759238', b'"E":999999999999999999'),
    (b'"E":1626992759238', b'"E":9223372036854775807'),
    (b'"E":1626992759238', b'"E":9223372036854775808'),
    (b'"E":1626992759238', b'"E":"1626992759238"'),
    (b'"e":"depthUpdate"', b'"e":"depthupdate"'),
    (b'"s":"KEEPUSDT"', b'"s":"KEEP\xc3\xa9USDT"'),
    (b'"s":"KEEPUSDT"', b'"s":"KEEP\xffUSDT"'),
    (b'"s":"KEEPUSDT"', b'"s":"KEEP\tUSDT"'),
    (b'"s":"KEEPUSDT"', b'"s":KEEPUSDT'),
    (b'"s":"KEEPUSDT"', b'"s":null'),
    # decimals: the grammar's edges, zero and too-precise prices, too many digits, other types
    (b'"0.2460"', b'"00.2460"'),
    (b'"0.2460"', b'".2460"'),
    (b'"0.2460"', b'"0.2460."'),
    (b'"0.2460"', b'"0.24.60"'),
    (b'"0.2460"', b'"0."'),
    (b'"0.2460"', b'"0"'),
    (b'"0.2460"', b'"0.0000"'),
    (b'"0.2460"', b'"."'),
    (b'"0.2460"', b'""'),
    (b'"0.2460"', b'"-0.2460"'),
    (b'"0.2460"', b'"2.46e-1"'),
    (b'"0.2460"', b'"0.246000000000000"'),
    (b'"0.2460"', b'"0.2460000000000001"'),
    (b'"0.2460"', b'"1234567890123456"'),
    (b'"0.2460"', b'"123456789012345"'),
    (b'"0.2460"', b'"12345678.1234567"'),
    (b'"0.2460"', b'"12345678901234567"'),
    (b'"0.2460"', b'"1234567"'),
    (b'"0.2460"', b'"12345678"'),
    (b'"0.2460"', b'"0.2460 "'),
    (b'"0.2460"', b"0.2460"),
    (b'"10"', b'"010"'),
    (b'"10"', b'"0"'),
    (b'"10"', b'"0.00000000"'),
    (b'"10"', b'"12345678901234567"'),
    (b'"10"', b'"123456789012345678"'),
    (b'"10"', b'"1.2345678901234567"'),
    (b'"10"', b'"10.0000000"'),
    (b'"10"', b'"10.00000000000000"'),
    (b'"10"', b'"1e1"'),
    (b'"10"', b"10"),
    (b'["0.2460","10"]', b'["0.2460","10","1"]'),
    (b'["0.2460","10"]', b'["0.2460"]'),
    (b'["0.2460","10"]', b"[]"),
    (b'["0.2460","10"]', b'{"p":"0.2460"}'),
    (b'"b":[', b'"b":[[],'),
    (b'"a":[', b'"a":null,"a":['),
]


# The odd values that are still in the fast path's grammar (ids of 1-18 digits, decimals of up to
# MAX_DIGITS digits, a price of up to MAX_PRICE_SIGNIFICANT significant ones, a zero quantity): it
# reads them itself; every other one goes the general way.
FAST_ODD = {
    (b'"U":95', b'"U":0'),
    (b'"E":1626992759238', b'"E":999999999999999999'),
    (b'"0.2460"', b'"0.246000000000000"'),
    (b'"0.2460"', b'"123456789012345"'),
    (b'"0.2460"', b'"12345678.1234567"'),
    (b'"0.2460"', b'"1234567"'),
    (b'"0.2460"', b'"12345678"'),
    (b'"10"', b'"0"'),
    (b'"10"', b'"0.00000000"'),
    (b'"10"', b'"12345678901234567"'),
    (b'"10"', b'"1.2345678901234567"'),
    (b'"10"', b'"10.0000000"'),
    (b'"10"', b'"10.00000000000000"'),
}
assert set(ODD_VALUES) >= FAST_ODD


@pytest.mark.parametrize("old,new", ODD_VALUES)
def test_odd_values(old: bytes, new: bytes) -> None:
    frames = [base.replace(old, new) for base in (DEPTH, DEPTH_DATA) if old in base]
    assert frames and all(f not in (DEPTH, DEPTH_DATA) for f in frames)
    _judge(frames, fast=(old, new) in FAST_ODD)


def test_odd_trade_and_ticker_values() -> None:
    frames = [
        AGG.replace(b'"m":false', b'"m":null'),
        AGG.replace(b'"m":false', b'"m":0'),
        AGG.replace(b'"m":false', b'"m":fals'),
        AGG.replace(b'"a":16599292', b'"a":-1'),
        AGG.replace(b'"p":"1.01100"', b'"p":1.011'),
        AGG.replace(b'"e":"aggTrade"', b'"e":"trade"'),
        AGG.replace(b'"s":"KEEPUSDT"', b'"s":"\xe2\x82\xac"'),
        TICKER.replace(b'"B":"2"', b'"B":2'),
        TICKER.replace(b'"B":"2"', b'"B":"\xe2\x82"'),
        TICKER.replace(b'"u":600859600576', b'"u":null'),
        TICKER.replace(b'"T":1626992741012', b'"T":null'),
        SPOT_TICKER.replace(b'"u":499869768', b'"u":4998697680000000000'),
    ]
    _judge(frames)


_DECIMAL = st.one_of(
    st.from_regex(r"\A(0|[1-9][0-9]{0,9})(\.[0-9]{1,9})?\Z", fullmatch=True),
    st.from_regex(r"\A[0-9.]{0,19}\Z", fullmatch=True),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    levels=st.lists(st.tuples(_DECIMAL, _DECIMAL), max_size=6),
    ids=st.lists(st.integers(0, 2**63 - 1) | st.integers(0, 10**13), min_size=2, max_size=2),
)
def test_random_decimals_and_ids_decode_alike(levels: list[tuple[str, str]], ids: list[int]) -> None:
    # The levels go to both sides of a frame that bridges the snapshot; E and T take the random ids.
    side = json.dumps([list(x) for x in levels], separators=(",", ":")).encode()
    data = DEPTH_DATA.replace(b'"E":1626992759238', b'"E":%d' % ids[0]).replace(
        b'"T":1626992759226', b'"T":%d' % ids[1]
    )
    data = data.replace(data[data.index(b'"b":') : -1], b'"b":%s,"a":%s' % (side, side))
    # Without levels the shape is the fast path's as long as both ids have at most 18 digits (its id()).
    fast = None if levels else max(ids) < 10**18
    _judge([b'{"stream":"keepusdt@depth@100ms","data":%s}' % data, data], fast=fast)


def test_capture_frames_in_their_raw_form(shared_captures: Path) -> None:
    # Every capture frame's payload as a raw (/ws/<stream>) frame too: the raw fast path on real bytes.
    # The fast path takes every real depth and aggTrade frame, raw or enveloped, and bookTicker enveloped.
    for name, venue in (("usdm_futures", "futures"), ("spot", "spot")):
        for raw in (True, False):
            pair = Pair.make(venue)
            for f in read_ws_capture(shared_captures / f"{name}.ws.txt").frames[:400]:
                data = json.loads(f.text)["data"]
                pair.frame(json.dumps(data, separators=(",", ":")).encode() if raw else f.text.encode(), 1)
            pair.check_state()
            c = pair.native.counts()
            assert c.frames >= 200 and c.depth > 100
            assert _fast_hits(pair) == c.depth + c.trades + (0 if raw else c.tickers)


@pytest.mark.parametrize(
    "name",
    [
        b"keepusdt@depth",
        b"keepusdt@depth@",
        b"keepusdt@depth@500ms",
        b"keepusdt@depth20@100ms",
        b"keepusdt@depthx",
        b"@depth@100ms",
        b"keep@usdt@depth@100ms",
        b"keepusdt",
        b"",
        b"!bookTicker",
        b"keepusdt@bookTicker@1s",
        b"keepusdt@aggTrade",
        b"keepusdt@trade",
        b"keepusdt@kline_1m",
        b"keep\xc3\xa9usdt@depth",
    ],
)
def test_stream_names_are_classified_alike(name: bytes) -> None:
    # The fast path names the kind of a few plain stream names itself; every other name goes the general way.
    # Fast: a plain "<symbol>@depth[@<speed>]" with a depthUpdate, "<symbol>@aggTrade" with an aggTrade.
    depth = name.partition(b"@")[2] in (b"depth", b"depth@", b"depth@500ms", b"depth@100ms") and name.isascii()
    for data in (DEPTH_DATA, AGG_DATA, TICKER[TICKER.index(b'"data":') + 7 : -1]):
        fast = (depth and data is DEPTH_DATA) or (name == b"keepusdt@aggTrade" and data is AGG_DATA)
        _judge([b'{"stream":"%s","data":%s}' % (name, data)], fast=fast)
