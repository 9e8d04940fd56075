"""``stored_stream``: what a subscribed Binance stream name means for the stored data (dq reads it)."""

from __future__ import annotations

import pytest

from tickpath.venues.binance.streams import StoredStream, stored_stream


@pytest.mark.parametrize(
    ("name", "venue", "want"),
    [
        ("btcusdt@depth@100ms", "futures", StoredStream("BTCUSDT", "l2", 100)),
        ("btcusdt@depth", "spot", StoredStream("BTCUSDT", "l2", 1000)),  # spot's default speed
        ("btcusdt@depth", "futures", StoredStream("BTCUSDT", "l2", 250)),  # futures' default speed
        ("btcusdt@depth@0ms", "futures", StoredStream("BTCUSDT", "l2", 0)),
        ("ethbtc@trade", "spot", StoredStream("ETHBTC", "trades", None)),
        ("ethusdt@aggTrade", "futures", StoredStream("ETHUSDT", "trades", None)),
        ("ethusdt@bookTicker", "spot", StoredStream("ETHUSDT", "ticker", None)),
    ],
)
def test_stream_names_map_to_stored_channels(name: str, venue: str, want: StoredStream) -> None:
    """Depth lands in l2 with its speed, trade and aggTrade in trades, bookTicker in ticker."""
    assert stored_stream(name, venue) == want  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["btcusdt@kline_1m", "BTCUSDT@trade", "btcusdt@depth@250ms", "nonsense"])
def test_unstored_or_invalid_names_have_no_channel(name: str) -> None:
    """A kline (not stored), an upper-case symbol, a speed spot lacks and garbage: None, not an error."""
    assert stored_stream(name, "spot") is None
