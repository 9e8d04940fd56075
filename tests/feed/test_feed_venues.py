"""COIN-M, Binance.US and Binance TR end to end: the simulator (live, and ``--replay`` of a capture
written here in the venue's shape) -> feed -> DuckDB -> dq, zero gaps, books equal to truth."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.venues.venue_wire import (
    SYMBOL,
    Market,
    agg_trade_frame,
    book_ticker_frame,
    depth_frame,
    price_str,
    qty_str,
    snapshot_body,
)
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.dq.checks import Thresholds
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, DqReport, run_dq
from tickpath.errors import UnknownSymbolError
from tickpath.feed import Feed, FeedConfig
from tickpath.sim import ReplayConfig, SimConfig, Simulator
from tickpath.venues.binance.endpoints import endpoints

from .helpers import all_synced, assert_books_match_truth, feed_config, l2_rows, rebuild_and_check, run_until

NEW_VENUES = ("coinm", "us", "tr")
LIVE_SYMBOLS = {"coinm": ("BTCUSD_PERP", "ETHUSD_250926"), "us": ("BTCUSDT", "BTCUSD"), "tr": ("BTCTRY", "ETHTRY")}


def _truth(sim: Simulator, venue: str, sym: str) -> Callable[[int], tuple[list[Any], list[Any]]]:
    def f(uid: int) -> tuple[list[Any], list[Any]]:
        t = sim.ground_truth(venue, sym, uid)
        return t.bids, t.asks

    return f


def _dq(db: Path, since_ns: int, until_ns: int) -> DqReport:
    con = duckdb.connect(str(db), read_only=True)
    try:
        th = Thresholds(min_active_slots=5)  # a seconds-long run: any minute with a little activity counts
        return run_dq(DqConfig(since_ns=since_ns, until_ns=until_ns, thresholds=th), DuckDBEngine(connection=con))
    finally:
        con.close()


def _sequence_ok(report: DqReport) -> None:
    seq = next(r for r in report.results if r.name == "sequence")
    assert seq.ok, seq.findings[:3]


@pytest.mark.parametrize("venue", NEW_VENUES)
@virtual_time
async def test_live_simulator_to_duckdb_and_dq_with_zero_gaps(
    virtual_clock: VirtualClock, venue: str, tmp_path: Path
) -> None:
    """The simulator serves the venue under its own paths; the feed, unchanged, syncs every book to
    the simulator's truth, the stored l2 rebuilds to truth at every row, and dq passes."""
    db = tmp_path / "t.duckdb"
    syms = LIVE_SYMBOLS[venue]
    since = virtual_clock.wall_ns() - 10**9
    cfg = SimConfig(venues=(venue,), symbols=syms, seed=5, rate=150.0, book_levels=60)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        feed = Feed(feed_config(sim.endpoint(venue), venue, syms, sinks=(f"duckdb:{db}",)), clock=virtual_clock)
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 40)
        assert_books_match_truth(feed, sim)
        for s in syms:
            counts = rebuild_and_check(l2_rows(db, s), _truth(sim, venue, s))
            assert counts["snapshot"] == 1 and counts["delta"] > 5
    assert summary.gaps == 0 and summary.resyncs == 0 and summary.malformed == 0 and summary.dropped == 0
    con = duckdb.connect(str(db), read_only=True)
    venues = {r[0] for r in con.execute("SELECT venue FROM l2 UNION SELECT venue FROM trades").fetchall()}
    stored = {r[0] for r in con.execute("SELECT DISTINCT symbol FROM l2").fetchall()}
    con.close()
    assert venues == {venue} and stored == set(syms)
    report = _dq(db, since, virtual_clock.wall_ns() + 10**9)
    _sequence_ok(report)
    assert {r.name for r in report.results if not r.ok} == set(), [r.findings[:3] for r in report.results if not r.ok]


# COIN-M's contract status event and spot's (so US/TR's) server-shutdown notice, on a subscribed
# stream (the replay sends a connection only its streams' frames).
_CONTRACT_INFO = '{"e":"contractInfo","E":1,"s":"BTCUSD_PERP","ps":"BTCUSD","ct":"PERPETUAL","cs":"TRADING"}'
UNSEEN = {
    "coinm": '{"stream":"btcusd_perp@bookTicker","data":' + _CONTRACT_INFO + "}",
    "us": '{"stream":"btcusdt@depth@100ms","data":{"e":"serverShutdown","E":1}}',
    "tr": '{"stream":"btctry@depth@100ms","data":{"e":"serverShutdown","E":1}}',
}


def _write_capture(venue: str, tmp_path: Path) -> tuple[Path, Path, Market, int]:
    """A capture of one symbol in the venue's wire shape and production URLs: 300 update ids in
    events of 3, trades and tickers between, and the snapshot the feed will be answered with,
    taken at update id 1,150 (so the events before it are dropped by the venue's rule)."""
    rng = random.Random(3)
    changes = [(i % 2, rng.randint(1, 49) + 50 * (i % 2), rng.randint(0, 30)) for i in range(300)]
    m = Market(venue, 1_000, changes)
    sym = SYMBOL[venue]
    ep = endpoints(venue)
    streams = "/".join(f"{sym.lower()}@{k}" for k in ("depth@100ms", "aggTrade", "bookTicker"))
    ws, http = tmp_path / f"{venue}.ws.txt", tmp_path / f"{venue}.http.txt"
    t0 = 1_700_000_000.0
    lines = [f"{ep.ws_base}/stream?streams={streams} <-> {t0}"]
    prev = m.first_id - 1
    px, bid, ask = (
        price_str(venue, 300_001),
        (price_str(venue, 300_001), qty_str(venue, 1)),
        (price_str(venue, 300_002), qty_str(venue, 2)),
    )
    for k, uid in enumerate(range(m.first_id, m.first_id + 300, 3)):
        t = t0 + k * 0.01
        lines.append(f"{t}: {depth_frame(venue, m, uid, uid + 2, prev)}")
        prev = uid + 2
        if k % 10 == 0:
            lines.append(f"{t}: {agg_trade_frame(venue, k + 1, px, qty_str(venue, 3))}")
            lines.append(f"{t}: {book_ticker_frame(venue, uid, bid, ask)}")
        if k in (7, 70):  # an event of the venue's that tickpath has no type for
            lines.append(f"{t}: {UNSEEN[venue]}")
    ws.write_text("\n".join(lines) + "\n", encoding="utf-8")
    url = f"{ep.rest_base}{ep.depth_path}?symbol={sym}&limit={ep.snapshot_limit}"
    http.write_text(f"{url} -> {t0 + 0.5}: {snapshot_body(venue, m, 1_150)}\n", encoding="utf-8")
    return ws, http, m, prev


@pytest.mark.parametrize("venue", NEW_VENUES)
async def test_replayed_capture_to_duckdb_and_dq_with_zero_gaps(venue: str, tmp_path: Path) -> None:
    """``sim --replay`` of a capture in the venue's shape (its production hosts, /dapi/v1/depth for
    COIN-M) feeds a book equal to the independent model, stored and checked by dq with no gap; two
    events of a kind tickpath has not seen are counted, not fatal."""
    ws, http, m, last_u = _write_capture(venue, tmp_path)
    db = tmp_path / "r.duckdb"
    since = time.time_ns() - 10**9
    sym = SYMBOL[venue]
    cfg = SimConfig(venues=(venue,), symbols=(), replay=(ReplayConfig(ws, http, speed=0.0),))
    async with Simulator(cfg) as sim:
        feed = Feed(feed_config(sim.endpoint(venue), venue, (sym,), sinks=(f"duckdb:{db}",), clock_samples=0))

        def done(f: Feed) -> bool:
            assert f.engine is not None
            return all_synced(f) and f.engine.books[sym].last_update_id == last_u

        summary = await run_until(feed, done, timeout_s=20)
    # the two unseen events are counted and survived
    assert summary.gaps == 0 and summary.resyncs == 0 and summary.malformed == 2
    assert summary.to_dict()["engine"]["malformed_total"] == 2
    assert feed.engine is not None
    assert feed.engine.books[sym].book.top() == m.top(last_u)
    rows = l2_rows(db, sym)
    assert rows[0]["kind"] == "snapshot" and rows[0]["final_update_id"] == 1_150
    assert rows[-1]["final_update_id"] == last_u and all(r["kind"] != "reset" for r in rows)
    _sequence_ok(_dq(db, since, time.time_ns() + 10**9))


@pytest.mark.parametrize(("venue", "symbol"), [("coinm", "BTCUSDT"), ("spot", "BTCUSD_PERP"), ("us", "BTCUSD_PERP")])
def test_a_symbol_of_another_venues_format_is_one_line(venue: str, symbol: str) -> None:
    with pytest.raises(UnknownSymbolError) as exc:
        FeedConfig(venue=venue, symbols=(symbol,))  # type: ignore[arg-type]
    msg = str(exc.value)
    assert "\n" not in msg and symbol in msg and venue in msg
