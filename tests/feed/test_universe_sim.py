"""`--symbols all` against `sim --universe binance`, in virtual time (tickpath.clock.VirtualClock): the
simulator's weight windows and the feed's pacer share one clock, so minutes of REST pacing take a
second or two of wall time. Zero 429/418 is read from the simulator's own counters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tickpath.clock import VirtualClock, run_virtual
from tickpath.errors import UnknownSymbolError
from tickpath.feed import Feed
from tickpath.feed.symbols import check_symbols
from tickpath.feed.universe import parse_selection
from tickpath.sim import SimConfig, Simulator
from tickpath.sim.config import ListingEvent
from tickpath.sim.universe import universe_symbols
from tickpath.venues.binance.rest import ExchangeInfoApi, RestClient

from .helpers import feed_config


def _run(
    clock: VirtualClock,
    sim_cfg: SimConfig,
    spec: str,
    until_s: float,
    tmp_path: Path,
    *,
    drop_at_s: float | None = None,
    **kw: object,
) -> tuple[Feed, Simulator]:
    async def drop_later(sim: Simulator) -> None:
        assert drop_at_s is not None
        await asyncio.sleep(drop_at_s)
        sim.faults.drop_connections("spot")

    async def main() -> tuple[Feed, Simulator]:
        async with Simulator(sim_cfg, clock=clock) as sim:
            dropper = asyncio.create_task(drop_later(sim)) if drop_at_s is not None else None
            cfg = feed_config(
                sim.endpoint("spot"),
                "spot",
                (),
                selection=parse_selection(spec),
                sinks=(f"duckdb:{tmp_path / 't.duckdb'}",),
                snapshot_limit=100,  # weight 5 on spot
                duration_s=until_s,
                stale_after_s=60.0,
                **kw,
            )
            feed = Feed(cfg, clock=clock)
            await feed.run()
            if dropper is not None:
                dropper.cancel()
            return feed, sim

    return run_virtual(main, clock)


def test_two_hundred_symbols_sync_within_a_low_weight_budget_with_no_429(tmp_path: Path) -> None:
    """200 symbols x weight 5 against a budget of 500 a minute (read from exchangeInfo's rateLimits):
    the pacer spreads the snapshots over three minutes, every book syncs, and the simulator never
    answered 429 or 418."""
    clock = VirtualClock()
    sim_cfg = SimConfig(
        venues=("spot",), universe="binance", universe_size=200, rate=0.3, book_levels=40, weight_budget=500, seed=3
    )
    # the wall minutes of the virtual clock open at 40 s and 100 s: the books all sync at ~101 s
    feed, sim = _run(clock, sim_cfg, "all", 125.0, tmp_path, listing_poll_s=600.0)
    summary = feed.summary()
    startup = summary.engine["startup"]
    trading = [u.symbol for u in universe_symbols("binance", "spot", 3, size=200) if u.status == "TRADING"]
    assert startup["symbols"] == len(trading) and startup["synced"] == len(trading)
    # 1,000 weight at 400 a minute (80 % of 500): the snapshots waited for two later minutes
    assert startup["all_synced_s"] > 60 and summary.snapshots["weight_waits"] >= 2
    assert summary.snapshots["rate_limited"] == 0 and summary.gaps == 0
    assert summary.connections == 1  # 600 streams: one spot connection (1,024 max), subscribed by message
    weights = sim.weights["spot"]
    assert (weights.answered_429, weights.answered_418) == (0, 0)


def test_listing_and_delisting_mid_run_are_followed(tmp_path: Path) -> None:
    """A 60-symbol universe; at 40 s the simulator lists NEWUSDT and delists one symbol: the feed's
    next exchangeInfo poll subscribes and syncs the new one and closes the removed one. At 60 s every
    connection drops: the reconnect subscribes without the removed symbol (the simulator refuses
    an unknown stream) and every book resyncs."""
    size = 60
    trading = [u.symbol for u in universe_symbols("binance", "spot", 5, size=size) if u.status == "TRADING"]
    gone = trading[-1]
    sim_cfg = SimConfig(
        venues=("spot",),
        universe="binance",
        universe_size=size,
        rate=2.0,
        book_levels=40,
        weight_budget=1200,
        seed=5,
        listings=(ListingEvent(40.0, "spot", "list", "NEWUSDT"), ListingEvent(40.0, "spot", "delist", gone)),
    )
    # after the drop at 60 s the 60 snapshots, one at a time, have every book synced again by ~73 s
    feed, sim = _run(VirtualClock(), sim_cfg, "all", 85.0, tmp_path, listing_poll_s=10.0, drop_at_s=60.0)
    summary = feed.summary()
    listings = summary.engine["listings"]
    assert listings["added_symbols"] == ["NEWUSDT"] and listings["removed_symbols"] == [gone]
    assert feed.engine is not None and "NEWUSDT" in feed.engine.ever_synced
    assert feed.engine.books["NEWUSDT"].synced
    assert not feed.engine.books[gone].synced  # closed with a reset, not left looking alive
    assert "NEWUSDT" in feed.config.symbols and gone not in feed.config.symbols
    assert not any(st.startswith(f"{gone.lower()}@") for st in feed.streams)
    assert summary.reconnects >= 2 and summary.gaps == 0  # each book reset and synced afresh, no gap
    assert all(feed.engine.books[s].synced for s in feed.config.symbols)  # after the reconnect too
    assert summary.engine["startup"]["synced"] == len(trading)  # the new one in, the removed one out
    weights = sim.weights["spot"]
    assert (weights.answered_429, weights.answered_418) == (0, 0)


async def test_an_unlisted_name_is_one_line_naming_the_nearest_listed_symbols() -> None:
    """`feed --symbols BTCUSTD` (no selection): check_symbols asks for the whole list on the error
    path only, and names the closest spellings."""
    cfg = SimConfig(venues=("spot",), universe="binance", universe_size=40, rate=0.0, weight_budget=900)
    async with Simulator(cfg) as sim, RestClient("spot", sim.endpoint("spot").rest_url) as rest:
        with pytest.raises(UnknownSymbolError) as err:
            await check_symbols(rest, ["BTCUSTD", "ETHUSDT"])
        assert str(err.value).startswith("BTCUSTD (did you mean BTCUSDT or ")
        assert "\n" not in str(err.value) and "ETHUSDT" not in str(err.value).split(" is not")[0]
        api = ExchangeInfoApi(rest)  # a list of names: the check also learns the weight limit
        assert await check_symbols(rest, ["ETHUSDT"], api) == {"ETHUSDT": "TRADING"}
        assert api.weight_limit == 900


def test_coinm_perpetuals_by_contract_type_plus_one_dated_contract() -> None:
    """`--symbols contract=PERPETUAL,BTCUSD_<next quarter>` on COIN-M: every perpetual the simulated
    universe lists and the one dated contract named, all synced."""
    from tickpath.venues.binance.endpoints import VENUES

    if "coinm" not in VENUES:
        pytest.skip("COIN-M is not in this build's venue table")
    clock = VirtualClock()
    universe = universe_symbols("binance", "coinm", 1)
    dated = next(u.symbol for u in universe if not u.symbol.endswith("_PERP"))
    perps = {u.symbol for u in universe if u.symbol.endswith("_PERP")}

    async def main() -> Feed:
        cfg = SimConfig(venues=("coinm",), universe="binance", rate=1.0, book_levels=40)
        async with Simulator(cfg, clock=clock) as sim:
            ep = sim.endpoint("coinm")
            feed = Feed(
                feed_config(
                    ep,
                    "coinm",
                    (),
                    selection=parse_selection(f"contract=PERPETUAL,{dated}"),
                    sinks=("jsonl:/dev/null",),
                    snapshot_limit=100,
                    duration_s=60.0,
                ),
                clock=clock,
            )
            await feed.run()
            return feed

    feed = run_virtual(main, clock)
    assert feed.config.symbols[0] == dated and set(feed.config.symbols[1:]) == perps
    startup = feed.summary().engine["startup"]
    assert startup["synced"] == startup["symbols"] == len(perps) + 1
