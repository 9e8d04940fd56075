"""The normalized event schema: exact decimal strings, tagged JSON round trip, stable keys."""

from __future__ import annotations

import msgspec
import pytest

from tickpath.events import BookDelta, Trade, decode_event, encode_event, event_key


def test_round_trip_keeps_decimal_strings_exact() -> None:
    """Prices survive encode/decode as the exchange's strings, not floats."""
    t = Trade(
        session="s1",
        venue="futures",
        symbol="BTCUSDT",
        seq=7,
        event_time_ms=1,
        transaction_time_ms=1,
        receipt_ns=5,
        trade_id=42,
        price="0.10000000",
        qty="1.2300",
        side="sell",
    )
    back = decode_event(encode_event(t))
    assert back == t and isinstance(back, Trade) and back.price == "0.10000000"
    assert b'"type":"trade"' in encode_event(t)


def test_delta_round_trip_and_key() -> None:
    """A delta keeps its levels and update ids; its key names the stream and sequence."""
    d = BookDelta(
        session="s1",
        venue="spot",
        symbol="ETHBTC",
        seq=3,
        event_time_ms=10,
        transaction_time_ms=None,
        receipt_ns=11,
        first_update_id=100,
        final_update_id=105,
        prev_final_update_id=None,
        bids=[("0.05", "0")],
        asks=[("0.06", "2.5")],
    )
    assert decode_event(encode_event(d)) == d
    assert event_key(d) == "s1.spot.l2.ETHBTC.3"


def test_decode_rejects_schema_violations() -> None:
    """A frame missing required fields is a validation error, never a half-built event."""
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type":"trade","session":"s","venue":"spot"}')
