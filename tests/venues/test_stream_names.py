"""Binance stream naming (venues/binance/streams.py): the one place the feed and the probe get
stream names from, and the inverse of what dq reads back (stored_stream)."""

from __future__ import annotations

import itertools

import pytest

from tickpath.errors import UnknownSymbolError
from tickpath.events import CHANNELS
from tickpath.feed.config import FeedConfig
from tickpath.venues.binance.streams import (
    DEPTH_SPEEDS_MS,
    TRADE_STREAMS,
    channel_streams,
    parse_stream,
    stored_stream,
    stream_name,
)


def test_channel_streams_name_l2_trades_ticker_in_order() -> None:
    """l2 -> @depth@<speed>, trades -> the chosen trade stream, ticker -> @bookTicker, symbol lower-cased."""
    assert channel_streams("BTCUSDT", "futures", ("ticker", "l2", "trades"), depth_speed_ms=0) == [
        "btcusdt@depth@0ms",
        "btcusdt@aggTrade",
        "btcusdt@bookTicker",
    ]
    assert channel_streams("ETHUSDT", "spot", ("trades",), trade_stream="trade") == ["ethusdt@trade"]
    assert channel_streams("ETHUSDT", "spot", ("l2",)) == ["ethusdt@depth"]  # the venue's default speed


@pytest.mark.parametrize("venue", ["spot", "futures"])
def test_every_named_stream_is_read_back_as_its_channel(venue: str) -> None:
    """For every channel subset, speed and trade stream, each name parses for the venue and dq's
    stored_stream maps it back to the channel it was named for (naming and reading agree)."""
    for n in range(1, len(CHANNELS) + 1):
        for channels, speed, trade in itertools.product(
            itertools.combinations(CHANNELS, n), DEPTH_SPEEDS_MS[venue], TRADE_STREAMS
        ):
            names = channel_streams("BNBUSDT", venue, channels, depth_speed_ms=speed, trade_stream=trade)  # type: ignore[arg-type]
            assert len(names) == len(channels)
            back = [stored_stream(name, venue) for name in names]  # type: ignore[arg-type]
            assert {b.channel for b in back if b is not None} == set(channels)
            assert all(b is not None and b.symbol == "BNBUSDT" for b in back)
            depth = [b for b in back if b is not None and b.channel == "l2"]
            assert all(b.cadence_ms == speed for b in depth)


def test_stream_name_refuses_what_the_venue_does_not_have() -> None:
    """A depth speed the venue lacks, a kline without interval, or an unknown trade stream: a clear error."""
    with pytest.raises(UnknownSymbolError, match="no 0ms depth stream"):
        stream_name("BTCUSDT", "depth", "spot", speed_ms=0)
    with pytest.raises(UnknownSymbolError, match="interval"):
        stream_name("BTCUSDT", "kline", "spot")
    with pytest.raises(UnknownSymbolError, match="aggTrade or trade"):
        channel_streams("BTCUSDT", "spot", ("trades",), trade_stream="bookTicker")  # type: ignore[arg-type]
    assert parse_stream(stream_name("BTCUSDT", "bookTicker", "spot"), "spot").kind == "bookTicker"


def test_the_feed_subscribes_to_the_venue_named_streams() -> None:
    """FeedConfig builds no names itself: its streams are channel_streams of its settings."""
    cfg = FeedConfig(venue="futures", symbols=("BTCUSDT", "ETHUSDT"), channels=("l2", "trades"), trade_stream="trade")
    assert cfg.streams_by_symbol() == {
        "BTCUSDT": ["btcusdt@depth@100ms", "btcusdt@trade"],
        "ETHUSDT": ["ethusdt@depth@100ms", "ethusdt@trade"],
    }
