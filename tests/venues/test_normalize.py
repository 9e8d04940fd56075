"""Normalizer: wire types become tickpath events with verbatim strings, taker side and contiguous seqs."""

from __future__ import annotations

from tickpath.events import Ticker, Trade, decode_event, encode_event
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.parse import decode_frame
from tickpath.venues.binance.schemas import AggTrade, BookTicker, ControlReply, Kline, RawTrade


def agg(sym: str, a: int, m: bool) -> AggTrade:
    return AggTrade(E=2, s=sym, a=a, p="1.01100", q="10.000", f=a * 10, l=a * 10 + 2, T=1, m=m)


def test_agg_trade_keeps_strings_ids_and_taker_side() -> None:
    """m=true (buyer is maker) is a taker sell; price/qty stay exactly as sent; ids f..l ride along."""
    n = Normalizer("futures", session="s1")
    (t,) = n.on_message(agg("CTKUSDT", 7, True), 123)
    assert isinstance(t, Trade)
    assert (t.side, t.price, t.qty, t.trade_id, t.first_trade_id, t.last_trade_id) == (
        "sell",
        "1.01100",
        "10.000",
        7,
        70,
        72,
    )
    assert (t.event_time_ms, t.transaction_time_ms, t.receipt_ns, t.seq, t.venue) == (2, 1, 123, 1, "futures")
    (buy,) = n.on_message(agg("CTKUSDT", 8, False), 124)
    assert isinstance(buy, Trade) and buy.side == "buy" and buy.seq == 2


def test_raw_trade_uses_t_as_id() -> None:
    """A @trade event's id is t; it has no aggregate range."""
    n = Normalizer("spot", session="s1")
    (t,) = n.on_message(RawTrade(E=5, s="X", t=99, p="3.0", q="0.5", T=4, m=False), 1)
    assert isinstance(t, Trade) and t.trade_id == 99 and t.first_trade_id is None and t.side == "buy"


def test_seq_is_contiguous_per_stream() -> None:
    """Each (channel, symbol) counts from 1 on its own: trades and tickers of two symbols interleaved."""
    n = Normalizer("futures", session="s1")
    bt = BookTicker(u=1, s="A", b="1", B="2", a="3", A="4", E=5, T=6)
    got = [
        (e.channel, e.symbol, e.seq)
        for m in (agg("A", 1, True), bt, agg("B", 2, True), agg("A", 3, False), bt)
        for e in n.on_message(m, 0)
    ]
    assert got == [("trades", "A", 1), ("ticker", "A", 1), ("trades", "B", 1), ("trades", "A", 2), ("ticker", "A", 2)]


def test_spot_ticker_has_no_exchange_times() -> None:
    """A spot bookTicker normalizes with event/transaction time None and every string verbatim."""
    n = Normalizer("spot", session="s1")
    msg = decode_frame(
        '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'
    )
    (t,) = n.on_message(msg, 9)
    assert isinstance(t, Ticker)
    assert (t.event_time_ms, t.transaction_time_ms, t.update_id) == (None, None, 400900217)
    assert (t.bid_price, t.bid_qty, t.ask_price, t.ask_qty) == (
        "25.35190000",
        "31.21000000",
        "25.36520000",
        "40.66000000",
    )
    assert decode_event(encode_event(t)) == t


def test_klines_control_and_unlisted_symbols_are_counted_not_published() -> None:
    """Klines and control replies yield no events; depth for an unlisted symbol is counted, not tracked."""
    n = Normalizer("spot", session="s1", symbols=("btcusdt",))
    assert n.on_message(Kline(E=1, s="BTCUSDT"), 0) == [] and n.stats.klines == 1
    assert n.on_message(ControlReply(id=1), 0) == [] and n.stats.control == 1
    depth = decode_frame('{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}')
    assert n.on_message(depth, 0) == [] and n.stats.unexpected_symbol == 1
    assert set(n.books) == {"BTCUSDT"}
