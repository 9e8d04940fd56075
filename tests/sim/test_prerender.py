"""``sim --prerender``: a feed over the pre-encoded playback gets the events it gets over the live market.

Both runs are in virtual time (tests/virtual_time.py) with the same seed, so the live hub and the
render tick at the same moments: every depth diff, trade and ticker the feed stores must be the same,
column for column (receipt times aside, which are the feed's own).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.feed.helpers import feed_config
from tests.sim.helpers import recv_json, ws_connect
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock, run_virtual
from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.feed import Feed
from tickpath.feed.universe import parse_selection
from tickpath.sim import SimConfig, Simulator
from tickpath.sim.config import ListingEvent
from tickpath.sim.metrics import SimCollector
from tickpath.sim.prerender import Playback

_COLUMNS = {
    "l2": "symbol, first_update_id, final_update_id, prev_final_update_id, event_time_ms, bids, asks",
    "trades": "*",
    "tickers": "*",
}
_NOT_COMPARED = ("receipt_ns", "session", "seq", "publish_ns", "ingest_ns")


def _rows(path: Path, table: str) -> dict[str, list[tuple[Any, ...]]]:
    """The stored rows of ``table`` by symbol, in stored order, without the feed's own columns."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = [c for (c,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
        keep = [c for c in cols if c not in _NOT_COMPARED] if _COLUMNS[table] == "*" else _COLUMNS[table].split(", ")
        rows = con.execute(f"SELECT {', '.join(keep)} FROM {table} ORDER BY rowid").fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[Any, ...]]] = {}
    sym = keep.index("symbol")
    for r in rows:
        out.setdefault(r[sym], []).append(r)
    return out


def _capture(tmp: Path, venue: str, prerender: float | None) -> dict[str, Any]:
    """12 s of ``feed --symbols all`` on a fresh virtual clock (so both runs tick at the same moments)."""
    clock = VirtualClock()
    cfg = SimConfig(
        venues=(venue,), universe="binance", universe_size=12, rate=15.0, book_levels=40, seed=7, prerender_s=prerender
    )
    db = tmp / f"{venue}-{prerender}.duckdb"

    async def main() -> Any:
        async with Simulator(cfg, clock=clock) as sim:
            feed = Feed(
                feed_config(
                    sim.endpoint(venue),
                    venue,
                    (),
                    selection=parse_selection("all"),
                    sinks=(f"duckdb:{db}",),
                    snapshot_limit=100,
                    duration_s=12.0,
                    listing_poll_s=600.0,
                ),
                clock=clock,
            )
            await feed.run()
            return feed.summary()

    summary = run_virtual(main, clock)
    assert summary.gaps == 0 and summary.resyncs == 0
    assert summary.engine["startup"]["synced"] == summary.engine["startup"]["symbols"] > 5
    return {t: _rows(db, t) for t in _COLUMNS}


@pytest.mark.parametrize("venue", ["spot", "futures"])
def test_a_feed_over_the_playback_stores_what_it_stores_over_the_live_market(tmp_path: Path, venue: str) -> None:
    """Same seed, same virtual moments: every depth diff and trade is equal, exchange times included;
    a ticker may be missing only as the first of its symbol (the live hub sends a new subscriber the
    current top at once; the render had sent that top before the feed subscribed)."""
    live = _capture(tmp_path, venue, None)
    played = _capture(tmp_path, venue, 30.0)
    assert sum(len(v) for v in live["l2"].values()) > 100 and sum(len(v) for v in live["trades"].values()) > 50
    for table in ("l2", "trades"):
        assert played[table] == live[table], table
    assert played["tickers"].keys() == live["tickers"].keys()
    for sym, rows in live["tickers"].items():
        assert played["tickers"][sym] in (rows, rows[1:]), sym


def test_prerender_refuses_what_it_cannot_play() -> None:
    """Listing changes, a zero speed and an absurd length are one-line config errors."""
    with pytest.raises(ConfigError, match="listing"):
        SimConfig(universe="binance", prerender_s=10, listings=(ListingEvent(5, "spot", "list", "NEWUSDT"),))
    with pytest.raises(ConfigError, match="speed"):
        SimConfig(prerender_s=10, prerender_speed=0)
    with pytest.raises(ConfigError, match="3600"):
        SimConfig(prerender_s=7200)


@virtual_time
async def test_a_stream_that_was_not_rendered_is_refused(virtual_clock: VirtualClock) -> None:
    """Only recorded streams may be subscribed: a kline stream of a known symbol is an error, not silence."""
    cfg = SimConfig(venues=("spot",), symbols=("BTCUSDT",), rate=50.0, book_levels=40, prerender_s=2.0)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        playback = sim.playbacks["spot"]
        assert isinstance(playback, Playback) and playback.tl.frames
        playback.validate("btcusdt@depth@100ms")
        with pytest.raises(UnknownSymbolError, match="not pre-rendered"):
            playback.validate("btcusdt@kline_1m")
        with pytest.raises(UnknownSymbolError):
            playback.validate("ethusdt@depth@100ms")


@virtual_time
async def test_a_recorded_stream_that_sent_nothing_can_be_subscribed(virtual_clock: VirtualClock) -> None:
    """A tail symbol's stream was recorded but carries no frame in a short render: subscribing to it
    is accepted, as on the live market, so a SUBSCRIBE of 200 streams is not refused for one of them."""
    cfg = SimConfig(venues=("spot",), universe="binance", universe_size=300, rate=1.0, book_levels=40, prerender_s=2.0)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        playback = sim.playbacks["spot"]
        silent = sorted(playback.tl.recorded - set(playback.tl.names))
        assert len(silent) > 10
        for name in silent:
            playback.validate(name)


@virtual_time
async def test_wait_starts_the_timeline_per_client_and_warmup_plays_the_start_at_real_time(
    virtual_clock: VirtualClock,
) -> None:
    """With wait the timeline holds until a client subscribes, plays 1 s at real time then 4x, and
    starts over for the next client once it has ended and the first has left: both clients get the
    same depth events, in raw frames, and the same timing."""
    cfg = SimConfig(
        venues=("spot",),
        symbols=("BTCUSDT",),
        rate=50.0,
        book_levels=40,
        prerender_s=2.0,
        prerender_speed=4.0,
        prerender_wait=True,
        prerender_warmup_s=1.0,
    )
    async with Simulator(cfg, clock=virtual_clock) as sim:
        pb = sim.playbacks["spot"]
        name = "btcusdt@depth@100ms"
        expected = pb.tl.names.count(name)
        assert expected >= 15
        await asyncio.sleep(5.0)
        assert pb.position == 0.0  # nobody has subscribed: the timeline waits
        loop = asyncio.get_running_loop()
        runs = []
        for _ in range(2):
            ws = await ws_connect(sim.endpoint("spot").raw_url(name))
            t0 = loop.time()
            ids = [(m["U"], m["u"]) for m in [await recv_json(ws) for _ in range(expected)]]
            runs.append((ids, loop.time() - t0))
            while pb.position < pb.tl.times[-1]:
                await asyncio.sleep(0.05)
            await ws.close()
            await asyncio.sleep(0.2)
        assert runs[0][0] == runs[1][0] and len(runs[0][0]) == expected
        # the last window closes about 2 s into the market: 1 s warm-up + 1 s at 4x = 1.25 s of playback
        assert 1.1 < runs[0][1] < 1.3 and runs[1][1] == pytest.approx(runs[0][1], abs=0.02)
        assert pb.plays == 2
        gauges = {m.name: m.samples[0].value for m in SimCollector(sim).collect() if "playback" in m.name}
        assert gauges["tickpath_sim_playback_length_seconds"] == pytest.approx(pb.tl.times[-1])
        assert gauges["tickpath_sim_playback_held_seconds"] == 0.0
