"""The venue table: every Binance venue's documented facts in one place, and the names, weights,
limits and hosts derived from it; an unknown venue is one line naming the venues."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tickpath.errors import UnknownSymbolError
from tickpath.events import Venue
from tickpath.venues.binance.endpoints import (
    VENUES,
    depth_weight,
    endpoints,
    futures_rules,
    rest_paths,
    validate_depth_limit,
    venue_of_host,
    venue_of_path,
)
from tickpath.venues.binance.streams import channel_streams, parse_stream, stored_stream

SRC = Path(__file__).resolve().parents[2] / "src" / "tickpath"


@pytest.mark.parametrize(
    ("venue", "ws", "rest", "depth", "rules", "streams", "budget", "snapshot"),
    [
        (
            "coinm",
            "wss://dstream.binance.com",
            "https://dapi.binance.com",
            "/dapi/v1/depth",
            "futures",
            200,
            2400,
            1000,
        ),
        ("us", "wss://stream.binance.us:9443", "https://api.binance.us", "/api/v3/depth", "spot", 1024, 1200, 5000),
        ("tr", "wss://stream-cloud.binance.tr", "https://api.binance.me", "/api/v3/depth", "spot", 1024, 1200, 5000),
    ],
)
def test_new_venues_documented_facts(
    venue: str, ws: str, rest: str, depth: str, rules: str, streams: int, budget: int, snapshot: int
) -> None:
    ep = endpoints(venue)
    assert (ep.ws_base, ep.rest_base, ep.depth_path, ep.rules) == (ws, rest, depth, rules)
    assert (ep.max_streams_per_connection, ep.weight_budget_per_minute, ep.snapshot_limit) == (
        streams,
        budget,
        snapshot,
    )
    assert ep.exchange_info_path.endswith("/exchangeInfo") and ep.time_path.endswith("/time")
    assert venue_of_host(ws.split("://")[1].split(":")[0]) == venue
    assert venue_of_host(rest.split("://")[1]) == venue


def test_coinm_paths_and_symbols() -> None:
    ep = endpoints("coinm")
    assert rest_paths("coinm") == ("/dapi/v1/depth", "/dapi/v1/ping", "/dapi/v1/time", "/dapi/v1/exchangeInfo")
    assert venue_of_path("/dapi/v1/depth") == "coinm"
    for good in ("BTCUSD_PERP", "ETHUSD_PERP", "BTCUSD_250926"):
        assert ep.valid_symbol(good), good
    for bad in ("BTCUSDT", "BTCUSD", "BTCUSD_2509", "btcusd_perp"):
        assert not ep.valid_symbol(bad), bad
    assert not endpoints("spot").valid_symbol("BTCUSD_PERP")


def test_every_venue_in_the_literal_has_a_table_entry() -> None:
    assert set(VENUES) == set(Venue.__args__)  # type: ignore[attr-defined]
    assert [futures_rules(v) for v in VENUES] == [False, True, True, False, False]


@pytest.mark.parametrize("alias", ["cm", "dapi", "COINM", "delivery"])
def test_coinm_aliases(alias: str) -> None:
    assert endpoints(alias).venue == "coinm"


def test_unknown_venue_is_one_line_naming_every_venue() -> None:
    with pytest.raises(UnknownSymbolError) as exc:
        endpoints("options")
    msg = str(exc.value)
    assert "\n" not in msg and all(v in msg for v in VENUES)


@pytest.mark.parametrize(
    ("venue", "limit", "weight"),
    [("coinm", 50, 2), ("coinm", 100, 5), ("coinm", 500, 10), ("coinm", 1000, 20), ("us", 100, 1), ("us", 500, 5)]
    + [("us", 1000, 10), ("us", 5000, 50), ("tr", 100, 5), ("tr", 5000, 250)],
)
def test_depth_weights_by_venue(venue: Venue, limit: int, weight: int) -> None:
    assert depth_weight(venue, limit) == weight


def test_depth_limits_follow_the_venue_rules() -> None:
    assert validate_depth_limit("us", 7000) == 5000 and validate_depth_limit("tr", 3) == 3
    assert validate_depth_limit("coinm", 1000) == 1000
    with pytest.raises(ValueError, match="one of 5, 10, 20, 50, 100, 500, 1000"):
        validate_depth_limit("coinm", 5000)


def test_coinm_stream_names() -> None:
    """COIN-M symbols carry '_'; its depth speeds are 250 (default), 500 and 100 ms, no 0 ms."""
    assert channel_streams("BTCUSD_PERP", "coinm", ("l2", "trades", "ticker"), depth_speed_ms=500) == [
        "btcusd_perp@depth@500ms",
        "btcusd_perp@aggTrade",
        "btcusd_perp@bookTicker",
    ]
    assert parse_stream("btcusd_250926@depth", "coinm").speed_ms == 250
    with pytest.raises(UnknownSymbolError, match="coinm depth streams"):
        parse_stream("btcusd_perp@depth@0ms", "coinm")
    s = stored_stream("btcusd_perp@depth@100ms", "coinm")
    assert s is not None and (s.symbol, s.channel, s.cadence_ms) == ("BTCUSD_PERP", "l2", 100)
    assert parse_stream("btcusdt@depth", "us").speed_ms == 1000


def _code_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants that are code or user-facing text, not docstrings."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_host_or_rest_path_outside_venues() -> None:
    """Only venues/binance/ names Binance's hosts and futures REST paths in code and help text
    (docstrings may cite them)."""
    pattern = re.compile(r"(f|d)stream\.binance|(fapi|dapi)\.binance|binance\.(us|tr|me)\b|/(f|d)api/v1/")
    offenders = []
    for path in SRC.rglob("*.py"):
        if "venues" in path.parts:
            continue
        for const in _code_strings(ast.parse(path.read_text(encoding="utf-8"))):
            if pattern.search(const.value):
                offenders.append(f"{path.relative_to(SRC)}:{const.lineno}: {const.value[:80]!r}")
    assert offenders == [], "\n".join(offenders)
