"""Binance frames decode into the wire types; bad frames raise ParseError with a countable reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickpath.errors import TickpathError
from tickpath.venues.binance.capture import read_http_capture, read_ws_capture
from tickpath.venues.binance.parse import ParseError, _decode_general, decode_frame, decode_snapshot, stream_kind
from tickpath.venues.binance.processor import NativeProcessor, PureProcessor
from tickpath.venues.binance.schemas import (
    AggTrade,
    BookTicker,
    ControlReply,
    DepthUpdate,
    Kline,
    RawTrade,
)

FUT_DEPTH = (
    '{"stream":"sushiusdt@depth@100ms","data":{"e":"depthUpdate","E":1626992741037,"T":1626992741024,'
    '"s":"SUSHIUSDT","U":600859599090,"u":600859600917,"pu":600859598061,'
    '"b":[["7.5040","813"],["7.6090","0"]],"a":[["7.6150","1563"]]}}'
)
SPOT_DEPTH = (
    '{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT",'
    '"U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"]],"a":[]}}'
)


def test_stream_kind_names_each_stream() -> None:
    """Stream names map to their kind, with speed and interval suffixes ignored."""
    assert stream_kind("btcusdt@depth@100ms") == "depth"
    assert stream_kind("btcusdt@depth") == "depth"
    assert stream_kind("btcusdt@aggTrade") == "aggTrade"
    assert stream_kind("btcusdt@trade") == "trade"
    assert stream_kind("btcusdt@bookTicker") == "bookTicker"
    assert stream_kind("btcusdt@kline_1m") == "kline"
    assert stream_kind("btcusdt@markPrice@1s") == "markPrice"


def test_futures_depth_keeps_every_field_and_string() -> None:
    """A futures depthUpdate keeps U, u, pu, T and the level strings verbatim."""
    msg = decode_frame(FUT_DEPTH)
    assert isinstance(msg, DepthUpdate)
    assert (msg.U, msg.u, msg.pu, msg.T, msg.E) == (
        600859599090,
        600859600917,
        600859598061,
        1626992741024,
        1626992741037,
    )
    assert msg.b == [("7.5040", "813"), ("7.6090", "0")] and msg.a == [("7.6150", "1563")]


def test_spot_depth_has_no_pu_or_t() -> None:
    """A spot depthUpdate decodes with pu and T absent (None) and bytes input accepted."""
    msg = decode_frame(SPOT_DEPTH.encode())
    assert isinstance(msg, DepthUpdate)
    assert msg.pu is None and msg.T is None and msg.b == [("0.35130000", "6195.00000000")]


def test_trades_and_tickers_decode() -> None:
    """aggTrade, trade, and both bookTicker shapes decode into their types."""
    agg = decode_frame(
        '{"stream":"x@aggTrade","data":{"e":"aggTrade","E":2,"a":5,"s":"X","p":"1.01100",'
        '"q":"10","f":7,"l":9,"T":1,"m":true,"M":true}}'
    )
    assert isinstance(agg, AggTrade) and (agg.a, agg.f, agg.l, agg.m, agg.p) == (5, 7, 9, True, "1.01100")
    tr = decode_frame('{"e":"trade","E":2,"s":"X","t":12,"p":"3.0","q":"0.5","b":1,"a":2,"T":1,"m":false}')
    assert isinstance(tr, RawTrade) and tr.t == 12 and tr.m is False
    spot_bt = decode_frame(
        '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'
    )
    assert isinstance(spot_bt, BookTicker) and spot_bt.E is None and spot_bt.b == "25.35190000"
    fut_bt = decode_frame(
        '{"stream":"x@bookTicker","data":{"e":"bookTicker","u":9,"s":"X","b":"1","B":"2",'
        '"a":"3","A":"4","T":10,"E":11}}'
    )
    assert isinstance(fut_bt, BookTicker) and (fut_bt.E, fut_bt.T, fut_bt.A) == (11, 10, "4")


def test_kline_and_control_replies_are_valid_but_not_market_events() -> None:
    """Klines and subscription replies decode to their own types (counted, not errors); a kline without
    its ``k`` is counted, not stored, and one with a ``k`` short of Binance's fields is off-schema."""
    k = decode_frame('{"stream":"x@kline_1m","data":{"e":"kline","E":1,"s":"X"}}')
    assert isinstance(k, Kline) and k.s == "X" and k.k is None
    with pytest.raises(ParseError) as info:
        decode_frame('{"stream":"x@kline_1m","data":{"e":"kline","E":1,"s":"X","k":{"t":0}}}')
    assert info.value.reason == "schema"
    assert isinstance(decode_frame('{"result":null,"id":1}'), ControlReply)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"stream":"x@depth","data":{"e":"depthUpdate"', "malformed_json"),
        ("not json at all", "malformed_json"),
        ('{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"s":"X","U":"one","u":2,"b":[],"a":[]}}', "schema"),
        ('{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}}', "schema"),
        ('{"stream":"x@aggTrade","data":{"e":"aggTrade","E":1}}', "schema"),
        ("[1, 2, 3]", "schema"),
        ('{"stream":"x@markPrice","data":{"e":"markPriceUpdate","E":1,"s":"X"}}', "schema"),
        ('{"e":"forceOrder","E":1}', "schema"),
        ('{"stream":"x@ticker_1h","data":{"e":"1hTicker","E":1,"s":"X"}}', "unknown_event"),
        ('{"e":"ACCOUNT_UPDATE","E":1}', "unknown_event"),
    ],
)
def test_bad_frames_raise_parse_error_with_reason(frame: str, reason: str) -> None:
    """Malformed JSON, schema violations and unknown events are ParseErrors (TickpathErrors) with a reason."""
    with pytest.raises(ParseError) as info:
        decode_frame(frame)
    assert info.value.reason == reason
    assert isinstance(info.value, TickpathError)
    assert info.value.sample == frame[: len(info.value.sample)] and info.value.sample


def test_snapshot_decodes_and_rejects_garbage() -> None:
    """REST depth bodies decode (futures E/T optional); a broken body is a ParseError."""
    snap = decode_snapshot('{"lastUpdateId":10,"E":5,"T":4,"bids":[["1.0","2"]],"asks":[["1.1","3"]]}')
    assert snap.lastUpdateId == 10 and snap.E == 5 and snap.bids == [("1.0", "2")]
    assert decode_snapshot(b'{"lastUpdateId":10,"bids":[],"asks":[]}').E is None
    with pytest.raises(ParseError, match="schema") as info:
        decode_snapshot('{"code":-1121,"msg":"Invalid symbol."}')
    assert info.value.reason == "schema"


def test_every_shared_capture_frame_decodes(shared_captures: Path) -> None:
    """Every frame and snapshot of both real captures decodes, identically on every decoding path."""
    for name in ("usdm_futures", "spot"):
        cap = read_ws_capture(shared_captures / f"{name}.ws.txt")
        kinds = {type(decode_frame(f.text)).__name__ for f in cap.frames}
        assert kinds == {"DepthUpdate", "AggTrade", "BookTicker", "Kline"}
        for f in cap.frames:  # the one-pass fast path agrees with the general path, str or bytes
            assert decode_frame(f.text) == decode_frame(f.text.encode()) == _decode_general(f.text)
        for rec in read_http_capture(shared_captures / f"{name}.http.txt"):
            snap = decode_snapshot(rec.body)
            assert snap.lastUpdateId == json.loads(rec.body)["lastUpdateId"] and snap.bids


def test_envelope_in_any_key_order_and_raw_payloads_decode_alike() -> None:
    """An envelope with "data" before "stream", and the bare payload, decode to the same message."""
    data = json.loads(FUT_DEPTH)["data"]
    reordered = json.dumps({"data": data, "stream": "sushiusdt@depth@100ms"})
    assert decode_frame(reordered) == decode_frame(FUT_DEPTH) == decode_frame(json.dumps(data))


@pytest.mark.parametrize(
    "frame",
    ['{"e":"\ud800"}', '{"stream":"btcusdt@trade","data":{"e":"trade","s":"\udfff"}}', '{"stream":"\ud800@depth"}'],
)
def test_str_frames_with_lone_surrogates_are_malformed(frame: str) -> None:
    """A str frame that cannot be UTF-8 (a lone surrogate) is malformed JSON, as the native core says."""
    for proc in (PureProcessor("spot", session="s"), NativeProcessor("spot", session="s")):
        with pytest.raises(ParseError) as exc:
            proc.on_frame(frame, 1)
        assert exc.value.reason == "malformed_json", type(proc).__name__
