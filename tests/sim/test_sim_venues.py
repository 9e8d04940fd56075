"""The simulator serves COIN-M, Binance.US and Binance TR each under its own path layout and wire
shapes, so the feed and probe run against it unchanged."""

from __future__ import annotations

import argparse

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from tests.virtual_time import virtual_time
from tickpath.cli.main import main
from tickpath.clock import VirtualClock
from tickpath.errors import ConfigError
from tickpath.probe import ProbeConfig, run_probe
from tickpath.probe.config import venue_defaults
from tickpath.sim import SimConfig, Simulator

from .helpers import recv_until, small_config, ws_connect


async def test_coinm_rest_layout_and_shapes() -> None:
    """/dapi/v1/depth answers with symbol, pair and exchange times; only COIN-M's listed limits are
    valid; spot's path is not served there; exchangeInfo lists contracts the way dapi does."""
    cfg = small_config(venues=("coinm",), symbols=("BTCUSD_PERP", "BTCUSD_250926"))
    async with Simulator(cfg) as sim, aiohttp.ClientSession() as http:
        ep = sim.endpoint("coinm")
        async with http.get(ep.depth_url("BTCUSD_PERP", 100)) as r:
            body = await r.json()
            assert r.status == 200 and r.headers["x-mbx-used-weight-1m"] == "5"
            assert "x-mbx-used-weight" not in r.headers  # the un-suffixed header is spot's
        assert (body["symbol"], body["pair"]) == ("BTCUSD_PERP", "BTCUSD") and body["E"] > 0
        assert len(body["bids"]) == 100 and float(body["bids"][0][1]).is_integer()  # whole contracts
        async with http.get(ep.depth_url("BTCUSD_PERP", 5000)) as r:
            assert r.status == 400 and (await r.json())["code"] == -1130
        async with http.get(ep.rest_url + "/api/v3/depth?symbol=BTCUSD_PERP") as r:
            assert r.status == 404
        async with http.get(ep.rest_url + "/dapi/v1/exchangeInfo") as r:
            info = await r.json()
    by = {s["symbol"]: s for s in info["symbols"]}
    assert by["BTCUSD_PERP"]["contractType"] == "PERPETUAL"
    assert by["BTCUSD_250926"]["contractType"] == "CURRENT_QUARTER"
    perp = by["BTCUSD_PERP"]
    assert (perp["pair"], perp["contractStatus"], perp["quoteAsset"], perp["marginAsset"]) == (
        "BTCUSD",
        "TRADING",
        "USD",
        "BTC",
    )
    assert info["rateLimits"][0]["limit"] == 2400


async def test_coinm_streams_carry_the_pair() -> None:
    """COIN-M depth and bookTicker events carry ps; depth chains by pu; no @depth@0ms stream."""
    cfg = small_config(venues=("coinm",), symbols=("ETHUSD_PERP",))
    async with Simulator(cfg) as sim:
        url = sim.endpoint("coinm").ws_url + "/stream?streams=ethusd_perp@depth@100ms/ethusd_perp@bookTicker"
        ws = await ws_connect(url)
        try:
            depth = await recv_until(ws, lambda m: m["stream"].endswith("@depth@100ms"))
            nxt = await recv_until(ws, lambda m: m["stream"].endswith("@depth@100ms"))
            tick = await recv_until(ws, lambda m: m["stream"].endswith("@bookTicker"))
        finally:
            await ws.close()
        with pytest.raises(InvalidStatus, match="400"):  # USD-M's real-time stream is not COIN-M's
            await ws_connect(sim.endpoint("coinm").ws_url + "/ws/ethusd_perp@depth@0ms")
    d = depth["data"]
    assert list(d)[:5] == ["e", "E", "T", "s", "ps"] and d["ps"] == "ETHUSD" and nxt["data"]["pu"] == d["u"]
    assert tick["data"]["ps"] == "ETHUSD" and tick["data"]["e"] == "bookTicker" and "E" in tick["data"]


@pytest.mark.parametrize(("venue", "weight"), [("us", "1"), ("tr", "5")])
async def test_spot_family_venues_answer_spot_shapes_with_their_weights(venue: str, weight: str) -> None:
    """Binance.US and TR serve spot's paths and shapes (no pu, 8-decimal strings); a depth of 100
    levels weighs 1 on Binance.US and 5 on TR, out of 1200 a minute."""
    async with Simulator(small_config(venues=(venue,), symbols=("BTCUSDT",))) as sim, aiohttp.ClientSession() as http:
        ep = sim.endpoint(venue)
        async with http.get(ep.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=100") as r:
            body = await r.json()
            assert r.headers["x-mbx-used-weight-1m"] == weight
        async with http.get(ep.rest_url + "/api/v3/exchangeInfo") as r:
            assert (await r.json())["rateLimits"][0]["limit"] == 1200
        ws = await ws_connect(ep.ws_url + "/ws/btcusdt@depth@100ms")
        try:
            ev = await recv_until(ws, lambda m: m.get("e") == "depthUpdate")
        finally:
            await ws.close()
    assert set(body) == {"lastUpdateId", "bids", "asks"} and len(body["bids"][0][0].split(".")[1]) == 8
    assert "pu" not in ev and "ps" not in ev


async def test_each_venue_serves_only_symbols_in_its_format() -> None:
    """With spot and COIN-M together, BTCUSDT is a spot market and BTCUSD_PERP a COIN-M one."""
    cfg = small_config(venues=("spot", "coinm"), symbols=("BTCUSDT", "BTCUSD_PERP"))
    async with Simulator(cfg) as sim:
        assert sim.ground_truth("coinm", "BTCUSD_PERP").bids
        with pytest.raises(ConfigError, match="not simulated on spot"):
            sim.ground_truth("spot", "BTCUSD_PERP")


async def test_a_venue_without_a_symbol_in_its_format_is_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        async with Simulator(SimConfig(venues=("coinm",), symbols=("BTCUSDT",))):
            pass
    assert "BTCUSD_PERP" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("venue", ["coinm", "us", "tr"])
def test_probe_targets_the_venues_hosts(venue: str) -> None:
    d = venue_defaults(venue)
    assert d.venue == venue and d.ws_url.startswith("wss://") and d.time_path.endswith("/time")
    assert ("trade" in d.streams) is (venue != "coinm")


def test_unknown_venue_on_the_cli_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--venue", "options", "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "coinm" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="coinm"):
        venue_defaults("nope")


@pytest.mark.parametrize(("venue", "symbol"), [("coinm", "BTCUSD_PERP"), ("us", "BTCUSDT"), ("tr", "BTCTRY")])
@virtual_time
async def test_probe_runs_against_the_simulated_venue_unchanged(
    virtual_clock: VirtualClock, venue: str, symbol: str
) -> None:
    """The probe finds each venue's ping/time paths and streams on the simulator (COIN-M's default
    symbol is its perpetual), with one-way stream latency for every stream kind it samples."""
    async with Simulator(small_config(venues=(venue,), symbols=(symbol,), rate=100.0), clock=virtual_clock) as sim:
        ep = sim.endpoint(venue)
        cfg = ProbeConfig(
            venue=venue,
            methods=("rest", "ws", "stream"),
            symbol="" if venue == "coinm" else symbol,
            rest_url=ep.rest_url,
            ws_url=ep.ws_url,
            samples=10,
            rate=20.0,
            warmup=2,
            timeout=1.0,
            offset_samples=5,
            stream_duration=1.0,
            imds=False,
            chrony=False,
        )
        result = await run_probe(cfg, clock=virtual_clock)
    assert cfg.symbol == symbol and result.errors == []
    stream = result.to_dict()["methods"]["stream"]
    assert stream["messages"] > 5 and set(stream["per_type"]) == set(venue_defaults(venue).streams)


def test_probe_refuses_a_symbol_of_another_venue() -> None:
    with pytest.raises(ConfigError, match="BTCUSD_PERP"):
        ProbeConfig(venue="coinm", symbol="BTCUSDT")


def test_sim_cli_serves_every_venue_with_its_default_symbols() -> None:
    """``tickpath sim --venue spot,futures,coinm,us,tr`` without --symbols gives each venue symbols in
    its format (COIN-M its perpetuals); the config the CLI builds says which."""
    from tickpath.cli.sim import build_config, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["sim", "--venue", "spot,futures,coinm,us,tr"])
    cfg, _ = build_config(args)
    assert cfg.symbols == ("BTCUSDT", "ETHUSDT", "BTCUSD_PERP", "ETHUSD_PERP")
    assert main(["sim", "--venue", "coinm,us", "--json", "--duration", "0.2"]) == 0
