"""The open-interest poller follows the feed's live symbol set (``--symbols all``): a symbol listed
mid-run is polled from the next round, a delisted one is never polled again. Virtual time."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tickpath.clock import VirtualClock, run_virtual
from tickpath.feed import Feed
from tickpath.feed.universe import parse_selection
from tickpath.sim import SimConfig, Simulator
from tickpath.sim.config import ListingEvent
from tickpath.sim.universe import universe_symbols

from .helpers import feed_config

LIST_AT_S = 30.0


def test_open_interest_polls_follow_listings_and_delistings(tmp_path: Path) -> None:
    size = 20
    trading = [u.symbol for u in universe_symbols("binance", "futures", 7, size=size) if u.status == "TRADING"]
    gone = trading[-1]
    sim_cfg = SimConfig(
        venues=("futures",),
        universe="binance",
        universe_size=size,
        rate=0.5,
        book_levels=20,
        weight_budget=2400,
        seed=7,
        listings=(
            ListingEvent(LIST_AT_S, "futures", "list", "NEWUSDT"),
            ListingEvent(LIST_AT_S, "futures", "delist", gone),
        ),
    )
    db = tmp_path / "t.duckdb"
    clock = VirtualClock()

    async def main() -> Feed:
        async with Simulator(sim_cfg, clock=clock) as sim:
            cfg = feed_config(
                sim.endpoint("futures"),
                "futures",
                (),
                selection=parse_selection("all"),
                channels=("trades", "openInterest"),
                sinks=(f"duckdb:{db}",),
                duration_s=80.0,
                listing_poll_s=5.0,
                stale_after_s=60.0,
            )
            feed = Feed(cfg, clock=clock)
            await feed.run()
            return feed

    feed = run_virtual(main, clock)
    poller = feed.open_interest
    assert poller is not None
    assert feed.summary().engine["listings"]["added_symbols"] == ["NEWUSDT"]
    # 80 s at one round per 10 s: NEWUSDT (listed at 30 s, seen by the 35 s listing poll) joins for the
    # rounds after that; the delisted one stops; nobody polled a symbol the venue no longer lists
    rounds = poller.polled[trading[0]]
    assert rounds >= 7
    assert 2 <= poller.polled.get("NEWUSDT", 0) < rounds
    assert poller.polled[gone] < rounds and poller.errors == 0
    con = duckdb.connect(str(db), read_only=True)
    by_symbol = dict(con.execute("SELECT symbol, count(*) FROM open_interest GROUP BY symbol").fetchall())
    con.close()
    assert by_symbol.get("NEWUSDT", 0) >= 1  # its rows are stored, like every other symbol's
