"""`sim --universe binance`: the symbol table (sizes, names, statuses, heavy-tailed weights), bursts,
listing changes and what exchangeInfo says about them. Deterministic from the seed."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from tickpath.errors import ConfigError, ExchangeError
from tickpath.sim import SimConfig, Simulator
from tickpath.sim.config import ListingEvent
from tickpath.sim.universe import BURST_FACTOR, BURST_S, UniverseHub, burst_factor, parse_listing, universe_symbols
from tickpath.venues.binance.endpoints import VENUES, endpoints
from tickpath.venues.binance.rest import DepthApi, ExchangeInfoApi, RestClient


@pytest.mark.parametrize(("venue", "size"), [("spot", 2000), ("futures", 400), ("coinm", 50)])
def test_each_venue_has_its_order_of_magnitude_in_its_own_symbol_format(venue: str, size: int) -> None:
    if venue not in VENUES:
        pytest.skip(f"venue {venue} is not in this build's venue table")
    syms = universe_symbols("binance", venue, 1, today=date(2026, 12, 7))
    names = [u.symbol for u in syms]
    assert len(names) == size == len(set(names))
    assert all(endpoints(venue).valid_symbol(n) for n in names)  # type: ignore[arg-type]
    assert abs(sum(u.weight for u in syms) - 1.0) < 1e-9
    if venue == "coinm":
        assert "BTCUSD_PERP" in names and "BTCUSD_261225" in names and "BTCUSD_270326" in names
    else:
        assert names[0] == "BTCUSDT" and all(u.base != u.quote for u in syms)


def test_same_seed_same_universe_other_seed_other_tail() -> None:
    a, b = universe_symbols("binance", "spot", 1), universe_symbols("binance", "spot", 1)
    assert a == b
    c = universe_symbols("binance", "spot", 2)
    assert [u.symbol for u in a[:50]] == [u.symbol for u in c[:50]]  # the well-known bases lead
    assert {u.symbol for u in a} != {u.symbol for u in c}  # the made-up tail differs


def test_traffic_is_heavy_tailed_and_some_spot_symbols_are_halted() -> None:
    syms = universe_symbols("binance", "spot", 1)
    w = sorted((u.weight for u in syms), reverse=True)
    assert sum(w[:20]) > 0.4  # the top 1 % carries a large share
    assert w[-1] < w[0] / 1000
    halted = [u for u in syms if u.status == "BREAK"]
    assert 20 < len(halted) < 120


def test_bursts_are_five_times_for_ten_seconds_at_the_seeded_phase() -> None:
    phase = 37.0
    assert burst_factor(phase - 0.1, phase) == 1.0
    assert burst_factor(phase, phase) == BURST_FACTOR == 5.0
    assert burst_factor(phase + BURST_S - 0.01, phase) == 5.0
    assert burst_factor(phase + BURST_S, phase) == 1.0


def test_listing_specs_parse_and_bad_ones_are_one_line_errors() -> None:
    assert parse_listing("30s:list:newusdt", ["spot"]) == ListingEvent(30.0, "spot", "list", "NEWUSDT")
    assert parse_listing("5:delist:ETHBTC@futures", ["spot"]).venue == "futures"
    for bad in ("30:list", "x:list:NEWUSDT", "3:rename:NEWUSDT"):
        with pytest.raises(ConfigError):
            parse_listing(bad, ["spot"])
    with pytest.raises(ConfigError, match="need a universe"):
        SimConfig(listings=(ListingEvent(1.0, "spot", "list", "NEWUSDT"),))


async def test_exchange_info_follows_halts_listings_and_delistings() -> None:
    cfg = SimConfig(venues=("spot",), universe="binance", universe_size=30, rate=0.0, weight_budget=700)
    async with Simulator(cfg) as sim:
        hub = sim.hubs["spot"]
        assert isinstance(hub, UniverseHub)
        async with RestClient("spot", sim.endpoint("spot").rest_url) as rest:
            api = ExchangeInfoApi(rest)
            first = await api.listing()
            assert len(first) == 30 and api.weight_limit == 700
            assert first["BTCFDUSD"].base == "BTC" and first["BTCFDUSD"].quote == "FDUSD"
            hub.set_status("ETHUSDT", "BREAK")
            hub.list_symbol("NEWUSDT")
            hub.delist("BTCUSDC")
            now = await api.listing()
            assert now["ETHUSDT"].status == "BREAK" and now["NEWUSDT"].status == "TRADING"
            assert "BTCUSDC" not in now
            with pytest.raises(ExchangeError, match="-1121"):
                await DepthApi(rest).get("BTCUSDC", 100)
            assert (await DepthApi(rest).get("NEWUSDT", 100)).status == 200


async def test_scheduled_listing_changes_apply_while_running() -> None:
    events = (ListingEvent(0.2, "spot", "list", "NEWUSDT"), ListingEvent(0.2, "spot", "halt", "BTCUSDT"))
    cfg = SimConfig(venues=("spot",), universe="binance", universe_size=20, rate=50.0, listings=events)
    async with Simulator(cfg) as sim:
        hub = sim.hubs["spot"]
        assert isinstance(hub, UniverseHub)
        for _ in range(100):
            if "NEWUSDT" in hub.markets:
                break
            await asyncio.sleep(0.05)
        assert hub.statuses["NEWUSDT"] == "TRADING" and hub.statuses["BTCUSDT"] == "BREAK"
        before = hub.markets["BTCUSDT"].last_uid
        await asyncio.sleep(0.3)
        assert hub.markets["BTCUSDT"].last_uid == before  # halted: no updates
        new = hub.markets["NEWUSDT"]
        assert new.last_uid > new.first_available_uid  # the new symbol trades


def test_the_hub_runs_five_times_faster_during_a_burst() -> None:
    """In virtual time: updates in the 10 s burst are about 5x those in 10 s after it."""
    from tickpath.clock import VirtualClock, run_virtual

    clock = VirtualClock()

    async def main() -> tuple[int, int]:
        cfg = SimConfig(venues=("spot",), universe="binance", universe_size=50, rate=2.0, book_levels=20)
        async with Simulator(cfg, clock=clock) as sim:
            hub = sim.hubs["spot"]
            assert isinstance(hub, UniverseHub)
            await asyncio.sleep(hub.phase_s + 0.5)
            a = hub.events
            await asyncio.sleep(9.0)
            burst = hub.events - a
            await asyncio.sleep(11.0)
            b = hub.events
            await asyncio.sleep(9.0)
            return burst, hub.events - b

    burst, calm = run_virtual(main, clock)
    assert calm == pytest.approx(9.0 * 100, rel=0.05)  # 50 symbols x 2 a second
    assert burst == pytest.approx(5 * calm, rel=0.05)
