"""Stream names, documented limits and the zone syntax: pure functions the feed engineers import too."""

from __future__ import annotations

import pytest

from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.sim import LatencyProfile, SimConfig, ZoneConfig, parse_zones
from tickpath.venues.binance.endpoints import depth_weight, endpoints, validate_depth_limit, venue_of_host
from tickpath.venues.binance.streams import (
    StreamName,
    combined_path,
    depth_stream,
    format_stream,
    parse_stream,
    parse_streams,
)


@pytest.mark.parametrize(
    ("venue", "name", "kind", "speed"),
    [
        ("spot", "btcusdt@depth", "depth", 1000),
        ("spot", "btcusdt@depth@100ms", "depth", 100),
        ("futures", "btcusdt@depth", "depth", 250),
        ("futures", "btcusdt@depth@0ms", "depth", 0),
        ("futures", "btcusdt@depth@500ms", "depth", 500),
        ("futures", "btcusdt@depth@250ms", "depth", 250),
        ("spot", "btcusdt@aggTrade", "aggTrade", None),
        ("futures", "btcusdt@bookTicker", "bookTicker", None),
        ("spot", "ethbtc@trade", "trade", None),
        ("spot", "nknusdt@kline_1m", "kline", None),
    ],
)
def test_parse_and_format_round_trip(venue: str, name: str, kind: str, speed: int | None) -> None:
    """Valid names parse to kind and speed, and format back to the same spelling."""
    s = parse_stream(name, venue)  # type: ignore[arg-type]
    assert (s.kind, s.speed_ms) == (kind, speed)
    assert format_stream(s) == name == str(s)


@pytest.mark.parametrize(
    ("venue", "name"),
    [
        ("spot", "btcusdt@depth@0ms"),
        ("spot", "btcusdt@depth@250ms"),
        ("futures", "btcusdt@depth@1000ms"),
        ("spot", "BTCUSDT@depth"),
        ("spot", "btcusdt"),
        ("spot", "btcusdt@ticker@1s"),
        ("spot", "btcusdt@kline_7m"),
    ],
)
def test_invalid_names_are_rejected(venue: str, name: str) -> None:
    """Unknown speeds per venue, upper-case symbols and unknown streams are UnknownSymbolError."""
    with pytest.raises(UnknownSymbolError):
        parse_stream(name, venue)  # type: ignore[arg-type]


def test_helpers() -> None:
    """Combined paths, depth_stream defaults and list parsing agree with the wire format."""
    streams = parse_streams("btcusdt@trade/ethusdt@depth@100ms", "spot")
    assert combined_path(streams) == "/stream?streams=btcusdt@trade/ethusdt@depth@100ms"
    assert depth_stream("BTCUSDT", None, "futures") == StreamName("btcusdt", "depth", 250)
    assert str(depth_stream("BTCUSDT", 0, "futures")) == "btcusdt@depth@0ms"
    with pytest.raises(UnknownSymbolError):
        depth_stream("BTCUSDT", 0, "spot")


def test_documented_limits() -> None:
    """The documented per-venue limits, weights and paths that everything else relies on."""
    spot, fut = endpoints("spot"), endpoints("futures")
    assert (spot.max_incoming_messages_per_s, fut.max_incoming_messages_per_s) == (5, 10)
    assert (spot.ping_interval_s, spot.pong_timeout_s, fut.ping_interval_s, fut.pong_timeout_s) == (20, 60, 180, 600)
    assert spot.max_lifetime_s == fut.max_lifetime_s == 86400
    assert (spot.weight_budget_per_minute, fut.weight_budget_per_minute) == (6000, 2400)
    assert [depth_weight("spot", n) for n in (100, 101, 500, 1000, 5000)] == [5, 25, 25, 50, 250]
    assert [depth_weight("futures", n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]
    assert validate_depth_limit("spot", 9999) == 5000 and validate_depth_limit("spot", 7) == 7
    with pytest.raises(ValueError):
        validate_depth_limit("futures", 7)
    assert endpoints("usdm") is fut and venue_of_host("fstream.binance.com") == "futures"
    assert venue_of_host("stream.binance.com") == "spot"
    with pytest.raises(UnknownSymbolError, match="kraken"):
        endpoints("kraken")


def test_zone_syntax() -> None:
    """The CLI zone syntax: delay, ± jitter, spikes, several zones; bad specs name the expected form."""
    zones = parse_zones("a:5ms±0.5ms;b:1ms,c:2ms+-1ms,spike=0.01x40ms")
    assert zones == (
        ZoneConfig("a", LatencyProfile(5.0, 0.5)),
        ZoneConfig("b", LatencyProfile(1.0)),
        ZoneConfig("c", LatencyProfile(2.0, 1.0, 0.01, 40.0)),
    )
    for bad in ("a", "a:5", "a:-1ms", ":5ms", "a:5ms±"):
        with pytest.raises(ConfigError, match="NAME:DELAYms"):
            parse_zones(bad)


def test_config_validation() -> None:
    """Bad configs fail early with clear errors: venue, symbol, duplicate zones, negative values."""
    with pytest.raises(UnknownSymbolError, match="venue"):
        SimConfig(venues=("kraken",))
    with pytest.raises(UnknownSymbolError, match="symbol"):
        SimConfig(symbols=("btcusdt",))
    with pytest.raises(ConfigError, match="unique"):
        SimConfig(zones=(ZoneConfig("a"), ZoneConfig("a")))
    with pytest.raises(ConfigError):
        LatencyProfile(delay_ms=-1)
    with pytest.raises(ConfigError):
        SimConfig(ping_interval_s=0)
