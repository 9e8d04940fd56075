"""Probe configuration: methods, venue endpoints from endpoints.py, overrides, bad values."""

from __future__ import annotations

import pytest

from tickpath.errors import ConfigError
from tickpath.probe import METHODS, ProbeConfig, parse_methods


def test_methods_parse_full_and_keep_canonical_order() -> None:
    """'full' means every method; a list comes back in the canonical order; unknown names fail."""
    assert parse_methods("full") == METHODS
    assert parse_methods("ws,tcp dns") == ("dns", "tcp", "ws")
    with pytest.raises(ConfigError, match="bogus"):
        parse_methods("tcp,bogus")
    with pytest.raises(ConfigError):
        parse_methods(" , ")


def test_venue_defaults_come_from_binance_endpoints() -> None:
    """futures -> fapi/fstream on 443, spot -> api.binance.com and stream.binance.com:9443."""
    fut = ProbeConfig(venue="futures")
    assert (fut.rest_endpoint().host, fut.rest_endpoint().port) == ("fapi.binance.com", 443)
    assert (fut.ws_endpoint().host, fut.ws_endpoint().port, fut.ws_endpoint().tls) == ("fstream.binance.com", 443, True)
    spot = ProbeConfig(venue="spot")
    assert (spot.ws_endpoint().host, spot.ws_endpoint().port) == ("stream.binance.com", 9443)
    assert spot.defaults().ping_path == "/api/v3/ping" and fut.defaults().time_path == "/fapi/v1/time"
    assert [label for label, _ in fut.stream_names()] == ["aggTrade", "bookTicker", "depth"]


def test_stream_names_are_spelled_by_the_venue() -> None:
    """The probe picks the kinds per venue; the names (lower-case symbol, depth speed) come from
    venues/binance and are the same ones the feed subscribes to."""
    fut = ProbeConfig(venue="futures", symbol="ETHUSDT")
    assert fut.stream_names() == (
        ("aggTrade", "ethusdt@aggTrade"),
        ("bookTicker", "ethusdt@bookTicker"),
        ("depth", "ethusdt@depth@100ms"),
    )
    spot = ProbeConfig(venue="spot", symbol="BTCUSDT")
    assert [name for _, name in spot.stream_names()] == ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@100ms"]


def test_host_and_url_overrides() -> None:
    """--host keeps scheme and port; --rest-url/--ws-url replace the URL whole."""
    cfg = ProbeConfig(host="127.0.0.1")
    assert (cfg.ws_endpoint().host, cfg.ws_endpoint().port, cfg.ws_endpoint().tls) == ("127.0.0.1", 443, True)
    cfg = ProbeConfig(rest_url="http://localhost:8080", ws_url="ws://localhost:8081/base")
    assert (cfg.rest_endpoint().port, cfg.rest_endpoint().tls) == (8080, False)
    assert cfg.ws_endpoint().path == "/base"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"samples": 0},
        {"duration": -1.0},
        {"warmup": -1},
        {"timeout": 0},
        {"venue": "coinbase"},
        {"symbol": "BTC/USDT"},
        {"rest_url": "ftp://x"},
        {"ws_url": "http://x"},
    ],
)
def test_bad_values_are_config_errors(kwargs: dict[str, object]) -> None:
    """Every bad setting is a ConfigError with a message, never a bare exception."""
    with pytest.raises(ConfigError):
        ProbeConfig(**kwargs)  # type: ignore[arg-type]


def test_duration_is_the_total_shared_by_timed_methods() -> None:
    """--duration 30 over tcp and ws at 50/s: 15 s and 750 samples each; stream gets its share too."""
    cfg = ProbeConfig(rate=50, duration=30, methods=("dns", "tcp", "ws", "path"))
    assert cfg.method_seconds == 15 and cfg.sample_count == 750
    cfg = ProbeConfig(rate=50, duration=30, methods=("tcp", "rest", "stream"))
    assert cfg.sample_count == 500 and cfg.count_at(20.0) == 200 and cfg.stream_seconds == 10
    assert ProbeConfig(rate=50, samples=100).stream_seconds == 2.0
