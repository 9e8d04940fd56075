"""The REST surface with a real HTTP client: depth limits, weights, 429/418, time, ping, exchangeInfo."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tickpath.clock import ManualClock
from tickpath.sim import Simulator
from tickpath.venues.binance.endpoints import depth_weight

from .helpers import small_config


@pytest.mark.parametrize(
    ("venue", "limit", "levels"),
    [
        ("spot", None, 100),
        ("spot", 5, 5),
        ("spot", 1000, 1000),
        ("spot", 7, 7),
        ("futures", None, 500),
        ("futures", 5, 5),
        ("futures", 1000, 1000),
    ],
)
async def test_depth_limits_and_fields(venue: str, limit: int | None, levels: int) -> None:
    """Depth returns the documented default/limit levels, sorted, with lastUpdateId (futures also E, T)."""
    async with (
        Simulator(small_config(venues=(venue,), book_levels=1200)) as sim,
        aiohttp.ClientSession() as http,
        http.get(sim.endpoint(venue).depth_url("BTCUSDT", limit)) as r,
    ):
        assert r.status == 200
        body = await r.json()
        used = int(r.headers["x-mbx-used-weight-1m"])
    assert list(body) == (
        ["lastUpdateId", "E", "T", "bids", "asks"] if venue == "futures" else ["lastUpdateId", "bids", "asks"]
    )
    assert len(body["bids"]) == levels and len(body["asks"]) == levels
    bids = [float(p) for p, _ in body["bids"]]
    asks = [float(p) for p, _ in body["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert used == depth_weight(venue, levels)  # type: ignore[arg-type]


async def test_depth_errors_answered_like_binance() -> None:
    """Missing/unknown symbol and invalid limits get 400 with Binance's error codes."""
    async with Simulator(small_config(venues=("futures",))) as sim, aiohttp.ClientSession() as http:
        base = sim.endpoint("futures").rest_url + "/fapi/v1/depth"
        cases = [
            ("", -1102),
            ("?symbol=DOGEUSDT", -1121),
            ("?symbol=BTCUSDT&limit=7", -1130),
            ("?symbol=BTCUSDT&limit=abc", -1100),
        ]
        for query, code in cases:
            async with http.get(base + query) as r:
                assert r.status == 400, query
                assert (await r.json())["code"] == code


async def test_weight_header_then_429_then_418() -> None:
    """Weights accumulate in x-mbx-used-weight-1m; past the budget 429 + Retry-After; keep going: 418."""
    # a clock that does not move keeps the whole test inside one weight window
    clock = ManualClock(wall_offset_ns=1_700_000_010_000_000_000)
    async with (
        Simulator(small_config(venues=("futures",), weight_budget=12, ban_after_429=2), clock=clock) as sim,
        aiohttp.ClientSession() as http,
    ):
        url = sim.endpoint("futures").depth_url("BTCUSDT", 100)  # weight 5
        statuses, used = [], []
        for _ in range(6):
            async with http.get(url) as r:
                statuses.append(r.status)
                used.append(int(r.headers["x-mbx-used-weight-1m"]))
                if r.status in (418, 429):
                    assert int(r.headers["Retry-After"]) >= 1
                    assert (await r.json())["code"] == -1003
        assert statuses[:2] == [200, 200] and used[:2] == [5, 10]
        assert statuses[2:4] == [429, 429]
        assert statuses[4:] == [418, 418]
        async with http.get(sim.endpoint("futures").rest_url + "/fapi/v1/time") as r:
            assert r.status == 418  # a ban covers every endpoint


async def test_time_ping_and_clock_offset() -> None:
    """serverTime carries the configured exchange clock offset; ping answers {}."""
    import time

    async with (
        Simulator(small_config(venues=("spot", "futures"), clock_offset_ms=5000.0)) as sim,
        aiohttp.ClientSession() as http,
    ):
        for venue, prefix in (("spot", "/api/v3"), ("futures", "/fapi/v1")):
            base = sim.endpoint(venue).rest_url
            before = time.time() * 1000
            async with http.get(base + prefix + "/time") as r:
                server = (await r.json())["serverTime"]
            after = time.time() * 1000
            assert before + 5000 - 5 <= server <= after + 5000 + 5
            async with http.get(base + prefix + "/ping") as r:
                assert r.status == 200 and await r.json() == {}


async def test_exchange_info_lists_simulated_symbols() -> None:
    """exchangeInfo lists the simulated symbols with tick and step sizes matching the wire decimals."""
    async with (
        Simulator(small_config(venues=("spot",), symbols=("BTCUSDT", "ETHUSDT"))) as sim,
        aiohttp.ClientSession() as http,
        http.get(sim.endpoint("spot").rest_url + "/api/v3/exchangeInfo") as r,
    ):
        info = await r.json()
        assert r.headers["x-mbx-used-weight-1m"] == "20"
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    btc = info["symbols"][0]
    assert btc["baseAsset"] == "BTC" and btc["quoteAsset"] == "USDT"
    price_filter = next(f for f in btc["filters"] if f["filterType"] == "PRICE_FILTER")
    assert price_filter["tickSize"] == "0.01000000"
    assert info["rateLimits"][0]["limit"] == 6000


async def test_spot_exchange_info_filters_by_symbol_like_binance() -> None:
    """Spot exchangeInfo takes symbol=X or symbols=["X","Y"]: only those come back; one invalid symbol
    makes the whole request -1121; both parameters together are -1128; a malformed array is -1100."""
    async with (
        Simulator(small_config(venues=("spot",), symbols=("BTCUSDT", "ETHUSDT"))) as sim,
        aiohttp.ClientSession() as http,
    ):
        url = sim.endpoint("spot").rest_url + "/api/v3/exchangeInfo"

        async def get(query: str) -> tuple[int, Any]:
            async with http.get(url + query) as r:
                return r.status, await r.json()

        status, info = await get('?symbols=["ETHUSDT"]')
        assert status == 200 and [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
        status, info = await get("?symbol=BTCUSDT")
        assert status == 200 and [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]
        assert await get('?symbols=["BTCUSDT","FOOBAR"]') == (400, {"code": -1121, "msg": "Invalid symbol."})
        status, info = await get('?symbol=BTCUSDT&symbols=["BTCUSDT"]')
        assert (status, info["code"]) == (400, -1128)
        status, info = await get("?symbols=BTCUSDT")
        assert (status, info["code"]) == (400, -1100)


async def test_futures_exchange_info_has_no_symbol_filter() -> None:
    """USD-M futures exchangeInfo has no symbols filter: it always lists every symbol."""
    async with (
        Simulator(small_config(venues=("futures",), symbols=("BTCUSDT", "ETHUSDT"))) as sim,
        aiohttp.ClientSession() as http,
        http.get(sim.endpoint("futures").rest_url + '/fapi/v1/exchangeInfo?symbols=["FOOBAR"]') as r,
    ):
        assert r.status == 200
        assert [s["symbol"] for s in (await r.json())["symbols"]] == ["BTCUSDT", "ETHUSDT"]
