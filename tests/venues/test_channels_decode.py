"""The low-rate channels: each payload shape of Binance's docs decodes into its event, the native core
and the pure reference give identical events and counts (also on mutated frames), and the channel
names are validated per venue.

Payloads are the docs' response examples:
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Kline-Candlestick-Streams
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Mark-Price-Stream
https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/Mark-Price-Stream
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Liquidation-Order-Streams
https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams (Individual Symbol Ticker,
Individual Symbol Mini Ticker, All Market Mini Tickers)
https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Open-Interest
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tickpath.errors import ConfigError
from tickpath.events import Candle, DayTicker, Liquidation, MarkPrice, MiniTicker
from tickpath.feed.config import FeedConfig, parse_channels
from tickpath.tables import event_row, events_to_arrow, to_arrow
from tickpath.venues.binance.channels import ChannelNormalizer, open_interest_path
from tickpath.venues.binance.parse import ParseError, decode_open_interest
from tickpath.venues.binance.processor import NativeProcessor, PureProcessor, native_available

KLINE = {
    "e": "kline",
    "E": 1638747660000,
    "s": "BTCUSDT",
    "k": {
        "t": 1638747660000,
        "T": 1638747719999,
        "s": "BTCUSDT",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0010",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": False,
        "q": "1.0000",
        "V": "500",
        "Q": "0.500",
        "B": "123456",
    },
}
SPOT_TICKER = {
    "e": "24hrTicker", "E": 1672515782136, "s": "BNBBTC", "p": "0.0015", "P": "250.00", "w": "0.0018",
    "x": "0.0009", "c": "0.0025", "Q": "10", "b": "0.0024", "B": "10", "a": "0.0026", "A": "100",
    "o": "0.0010", "h": "0.0025", "l": "0.0010", "v": "10000", "q": "18", "O": 0, "C": 86400000,
    "F": 0, "L": 18150, "n": 18151,
}  # fmt: skip
FUTURES_TICKER = {k: v for k, v in SPOT_TICKER.items() if k not in ("x", "b", "B", "a", "A")} | {"s": "BTCUSDT"}
MINI = {
    "e": "24hrMiniTicker", "E": 1672515782136, "s": "BNBBTC", "c": "0.0025", "o": "0.0010", "h": "0.0025",
    "l": "0.0010", "v": "10000", "q": "18",
}  # fmt: skip
MARK = {
    "e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000", "i": "11784.62659091",
    "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000,
}  # fmt: skip
MARK_DELIVERY = {
    "e": "markPriceUpdate", "E": 1596095725000, "s": "BTCUSD_201225", "p": "10934.62615417",
    "P": "10962.17178236", "i": "10933.62615417", "r": "", "T": 0,
}  # fmt: skip
FORCE = {
    "e": "forceOrder",
    "E": 1568014460893,
    "o": {
        "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910", "ap": "9910",
        "X": "FILLED", "l": "0.014", "z": "0.014", "T": 1568014460893,
    },
}  # fmt: skip


def frame(stream: str, data: Any) -> bytes:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()


PROCESSORS = [PureProcessor] + ([NativeProcessor] if native_available() else [])


@pytest.mark.parametrize("proc_cls", PROCESSORS)
def test_each_payload_shape_becomes_its_event(proc_cls: Any) -> None:
    p = proc_cls("futures", session="s", symbols=("BTCUSDT",))
    (c,) = p.on_frame(frame("btcusdt@kline_1m", KLINE), 7)
    assert isinstance(c, Candle) and (c.interval, c.open, c.high, c.low, c.close, c.closed) == (
        "1m", "0.0010", "0.0025", "0.0015", "0.0020", False,
    )  # fmt: skip
    assert (c.first_trade_id, c.last_trade_id, c.trades, c.quote_volume, c.taker_buy_volume) == (
        100,
        200,
        100,
        "1.0000",
        "500",
    )
    (t,) = p.on_frame(frame("btcusdt@ticker", FUTURES_TICKER), 8)
    assert isinstance(t, DayTicker) and t.last_price == "0.0025" and t.bid_price is None and t.trades == 18151
    (m,) = p.on_frame(frame("btcusdt@markPrice@1s", MARK), 9)
    assert isinstance(m, MarkPrice) and (m.mark_price, m.index_price, m.funding_rate) == (
        "11794.15000000", "11784.62659091", "0.00038167",
    )  # fmt: skip
    assert m.next_funding_time_ms == 1562306400000
    (liq,) = p.on_frame(frame("!forceOrder@arr", FORCE), 10)
    assert isinstance(liq, Liquidation) and (liq.side, liq.qty, liq.avg_price, liq.transaction_time_ms) == (
        "sell", "0.014", "9910", 1568014460893,
    )  # fmt: skip
    arr = [MINI, MINI | {"s": "ETHBTC"}]
    minis = p.on_frame(frame("!miniTicker@arr", arr), 11)
    assert [type(e) for e in minis] == [MiniTicker, MiniTicker] and [e.symbol for e in minis] == ["BNBBTC", "ETHBTC"]
    raw_arr = p.on_frame(json.dumps([MARK | {"E": MARK["E"] + 1000}]).encode(), 12)  # /ws/!markPrice@arr
    assert [type(e) for e in raw_arr] == [MarkPrice] and raw_arr[0].seq == 2
    counts = p.counts()
    assert (counts.klines, counts.channel_frames, counts.unknown_event) == (1, 5, 0)


def test_spot_ticker_and_coinm_delivery_mark_price() -> None:
    p = PureProcessor("spot", session="s")
    (t,) = p.on_frame(frame("bnbbtc@ticker", SPOT_TICKER), 1)
    assert (t.prev_close, t.bid_price, t.bid_qty, t.ask_price, t.ask_qty) == ("0.0009", "0.0024", "10", "0.0026", "100")
    (m,) = PureProcessor("coinm", session="s").on_frame(frame("btcusd_201225@markPrice", MARK_DELIVERY), 1)
    assert m.funding_rate is None and m.next_funding_time_ms is None  # a delivery contract has no funding


def test_rollover_duplicates_are_dropped_and_seq_stays_contiguous() -> None:
    n = ChannelNormalizer("futures", session="s")
    p = PureProcessor("futures", session="s")
    p.channels = n
    k = frame("btcusdt@kline_1m", KLINE)
    closed = frame("btcusdt@kline_1m", KLINE | {"k": KLINE["k"] | {"x": True}})
    got = [e.seq for raw in (k, k, closed, closed, k) for e in p.on_frame(raw, 1)]
    assert got == [1, 2] and n.counts.duplicates == 3


def test_rows_have_the_tables_layout() -> None:
    p = PureProcessor("futures", session="s")
    events = [
        *p.on_frame(frame("btcusdt@kline_1m", KLINE), 1),
        *p.on_frame(frame("btcusdt@ticker", FUTURES_TICKER), 1),
        *p.on_frame(frame("btcusdt@miniTicker", MINI), 1),
        *p.on_frame(frame("btcusdt@markPrice", MARK), 1),
        *p.on_frame(frame("btcusdt@forceOrder", FORCE), 1),
    ]
    tables = {"candles": 0, "tickers_24h": 1, "mini_tickers": 2, "mark_prices": 3, "liquidations": 4}
    for table, i in tables.items():
        by_rows = to_arrow(table, [event_row(events[i])])
        assert events_to_arrow(table, [events[i]]).equals(by_rows), table


def test_open_interest_body_and_path() -> None:
    body = b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}'
    n = ChannelNormalizer("futures", session="s")
    (oi,) = n.open_interest(decode_open_interest(body), 5)
    assert (oi.open_interest, oi.event_time_ms, oi.channel) == ("10659.509", 1589437530011, "open_interest")
    assert n.open_interest(decode_open_interest(body), 6) == []  # Binance's time has not moved
    assert open_interest_path("futures") == "/fapi/v1/openInterest"
    assert open_interest_path("coinm") == "/dapi/v1/openInterest"
    with pytest.raises(ConfigError):
        open_interest_path("spot")
    with pytest.raises(ParseError):
        decode_open_interest(b'{"symbol":"BTCUSDT"}')


@pytest.mark.skipif(not native_available(), reason="the native core is not built (make native)")
def test_native_and_pure_judge_channel_frames_alike() -> None:
    """Random channel frames and byte mutations of them: same events, same rejections, same counts."""
    rng = random.Random(19)
    shapes = [
        ("btcusdt@kline_1m", KLINE),
        ("btcusdt@ticker", FUTURES_TICKER),
        ("btcusdt@miniTicker", MINI),
        ("btcusdt@markPrice@1s", MARK),
        ("btcusdt@forceOrder", FORCE),
        ("!miniTicker@arr", [MINI]),
        ("!markPrice@arr@1s", [MARK]),
        ("!ticker@arr", [FUTURES_TICKER]),
    ]
    pure = PureProcessor("futures", session="s", symbols=("BTCUSDT",))
    native = NativeProcessor("futures", session="s", symbols=("BTCUSDT",))
    for i in range(3000):
        stream, data = rng.choice(shapes)
        raw = frame(stream, _bump(data, i))
        if rng.random() < 0.3:
            pos = rng.randrange(len(raw))
            raw = raw[:pos] + bytes([rng.choice(b'{}[]",:0a')]) + raw[pos + 1 :]
        if rng.random() < 0.1:  # the raw (non-envelope) payload
            raw = json.dumps(_bump(data, i)).encode()
        results = []
        for p in (pure, native):
            try:
                results.append(("ok", p.on_frame(raw, i)))
            except ParseError as exc:
                results.append(("error", exc.reason))
        assert results[0] == results[1], raw
    assert pure.counts() == native.counts()
    assert pure.counts().channel_frames > 1000


def _bump(data: Any, i: int) -> Any:
    """The payload with its event time moved on, so successive frames are not duplicates."""
    if isinstance(data, list):
        return [_bump(d, i) for d in data]
    return data | {"E": data["E"] + i}


def test_channel_names_are_validated_per_venue() -> None:
    assert parse_channels("l2,kline_1m,kline_1M,miniticker,all_miniTicker") == (
        "l2", "kline_1m", "kline_1M", "miniTicker", "all_miniTicker",
    )  # fmt: skip
    base: dict[str, Any] = {"symbols": ("BTCUSDT",)}
    spot = FeedConfig(venue="spot", channels=("kline_1s", "ticker24h", "all_miniTicker"), **base)
    assert spot.streams_by_symbol()["BTCUSDT"] == ["btcusdt@kline_1s", "btcusdt@ticker", "!miniTicker@arr"]
    fut = FeedConfig(venue="futures", channels=("l2", "markPrice", "liquidations", "all_markPrice"), **base)
    assert fut.streams_for("BTCUSDT") == ["btcusdt@depth@100ms", "btcusdt@markPrice@1s", "btcusdt@forceOrder"]
    for venue, bad in (
        ("spot", "markPrice"),
        ("futures", "kline_1s"),
        ("spot", "all_bookTicker"),
        ("spot", "kline_2m"),
    ):
        with pytest.raises(ConfigError):
            FeedConfig(venue=venue, channels=(bad,), **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        parse_channels("candles_1m")
