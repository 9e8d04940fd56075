"""The feed checks --symbols against exchangeInfo before it opens anything (Binance itself would accept
the stream and send nothing, and answer every snapshot with -1121)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.http import serve_app
from tickpath.errors import UnknownSymbolError
from tickpath.feed.symbols import check_symbols
from tickpath.sim import SimConfig, Simulator
from tickpath.venues.binance.rest import ExchangeInfoApi, RestClient


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        SimConfig(venues=("spot", "futures"), symbols=("BTCUSDT", "ETHUSDT"), rate=50.0, book_levels=50)
    ) as s:
        yield s


async def test_spot_asks_for_its_symbols_and_falls_back_to_the_list_on_1121(sim: Simulator) -> None:
    """Spot asks for just the given symbols (one request); when one is invalid Binance's -1121 does not
    say which, so the whole list is fetched (a second request) and the known ones are returned."""
    async with RestClient("spot", sim.endpoint("spot").rest_url) as rest:
        assert await ExchangeInfoApi(rest).statuses(["ETHUSDT"]) == {"ETHUSDT": "TRADING"}
        assert rest.requests == 1
        assert await ExchangeInfoApi(rest).statuses(["BTCUSDT", "FOOBAR"]) == {"BTCUSDT": "TRADING"}
        assert rest.requests == 3


async def test_futures_filters_the_whole_list(sim: Simulator) -> None:
    """USD-M futures has no symbols filter: one request for the list, filtered here."""
    async with RestClient("futures", sim.endpoint("futures").rest_url) as rest:
        assert await ExchangeInfoApi(rest).statuses(["ethusdt", "XRPUSDT"]) == {"ETHUSDT": "TRADING"}
        assert rest.requests == 1


async def test_check_names_every_unlisted_symbol(sim: Simulator) -> None:
    """Every unlisted symbol is named in one UnknownSymbolError (a ConfigError: exit 2)."""
    async with RestClient("futures", sim.endpoint("futures").rest_url) as rest:
        with pytest.raises(UnknownSymbolError, match=r"FOOBAR, BARBAZ are not listed on Binance futures"):
            await check_symbols(rest, ["BTCUSDT", "FOOBAR", "BARBAZ"])
        assert await check_symbols(rest, ["BTCUSDT"]) == {"BTCUSDT": "TRADING"}


@pytest.mark.integration  # runs `tickpath feed` in a process of its own
async def test_feed_with_an_unlisted_symbol_is_exit_2_and_opens_no_store(sim: Simulator, tmp_path: Path) -> None:
    """`feed --symbols BTCUSDT,FOOBAR` ends at once with exit 2 naming FOOBAR; no DuckDB file is left."""
    ep = sim.endpoint("spot")
    store = tmp_path / "t.duckdb"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpath.cli.main",
        "feed",
        "--venue",
        "spot",
        "--symbols",
        "BTCUSDT,FOOBAR",
        "--base-url",
        ep.ws_url,
        "--rest-url",
        ep.rest_url,
        "--duration",
        "30",
        "--no-status",
        "--sink",
        f"duckdb:{store}",
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    async with asyncio.timeout(20):  # the duration is 30 s: ending sooner shows it stopped at the check
        _out, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 2, text
    assert "FOOBAR is not listed on Binance spot" in text and "Traceback" not in text
    assert not store.exists()


def _exchange_info_app(body: dict[str, object], status: int = 200) -> web.Application:
    async def handler(_r: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/fapi/v1/exchangeInfo", handler)
    return app


async def test_a_listed_symbol_not_trading_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A listed symbol whose status is not TRADING (a delisting, a break) passes with a warning naming it."""
    app = _exchange_info_app(
        {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"}, {"symbol": "LUNAUSDT", "status": "SETTLING"}]}
    )
    async with serve_app(app) as url, RestClient("futures", url) as rest:
        with caplog.at_level(logging.WARNING, logger="tickpath.feed.symbols"):
            got = await check_symbols(rest, ["BTCUSDT", "LUNAUSDT"])
    assert got == {"BTCUSDT": "TRADING", "LUNAUSDT": "SETTLING"}
    assert "symbol_not_trading" in caplog.text and "LUNAUSDT" in caplog.text and "SETTLING" in caplog.text


@pytest.mark.parametrize("answer", ["unreachable", "http 500", "no symbols list"])
async def test_a_check_that_cannot_be_made_is_a_warning_not_an_error(
    answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Venue unreachable, an error status, or an answer without a symbols list: the check says it was
    skipped and returns None, and the feed goes on (its reconnects and resyncs cope with the venue)."""
    async with contextlib.AsyncExitStack() as stack:
        if answer == "unreachable":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{s.getsockname()[1]}"
        else:
            app = _exchange_info_app(
                {"code": -1001, "msg": "Internal error"} if answer == "http 500" else {"rateLimits": []},
                status=500 if answer == "http 500" else 200,
            )
            url = await stack.enter_async_context(serve_app(app))
        rest = await stack.enter_async_context(RestClient("futures", url))
        with caplog.at_level(logging.WARNING, logger="tickpath.feed.symbols"):
            assert await check_symbols(rest, ["BTCUSDT"]) is None
    assert "symbol_check_skipped" in caplog.text
