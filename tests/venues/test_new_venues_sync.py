"""COIN-M, Binance.US and Binance TR books, from frames and snapshots in each venue's documented
shape, synced by its documented rules (COIN-M: futures ``pu``; US/TR: spot ``U``), equal an
independent model after every run, in the pure reference and the native core alike."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native.harness import Pair
from tickpath.events import BookReset, Ticker, Trade
from tickpath.venues.binance.endpoints import futures_rules

from .venue_wire import (
    SYMBOL,
    Market,
    agg_trade_frame,
    book_ticker_frame,
    depth_frame,
    events_over,
    qty_str,
    snapshot_body,
)

NEW_VENUES = ("coinm", "us", "tr")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bids below 50 ticks, asks above: random changes never cross the book (a crossed book resets).
_change = st.one_of(
    st.tuples(st.just(0), st.integers(1, 49), st.integers(0, 40)),
    st.tuples(st.just(1), st.integers(51, 99), st.integers(0, 40)),
)


def _market(venue: str, changes: list[tuple[int, int, int]]) -> Market:
    return Market(venue, 1_000, changes)


@pytest.mark.parametrize("venue", NEW_VENUES)
@SETTINGS
@given(
    changes=st.lists(_change, min_size=2, max_size=120),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=10),
    snap_at=st.floats(0.0, 1.0),
    combined=st.booleans(),
)
def test_book_equals_model_after_any_snapshot_point(
    venue: str, changes: list[tuple[int, int, int]], sizes: list[int], snap_at: float, combined: bool
) -> None:
    """Events before the snapshot are dropped by the venue's rule, the bridging one (which may
    straddle lastUpdateId) applied whole, and the final book is the model's, with no reset."""
    m = _market(venue, changes)
    evs = events_over(m, sizes)
    last_id = m.first_id + len(changes) - 1
    snap_id = m.first_id - 1 + round(snap_at * len(changes))
    if futures_rules(venue):  # the futures guide's snapshot lies inside some event: U <= L <= u
        snap_id = max(snap_id, m.first_id)
    pair = Pair.make(venue)
    sym = SYMBOL[venue]
    events = []
    # Buffer every event up to the snapshot, then the snapshot, then the rest (live).
    live_from = next((i for i, (_, u, _) in enumerate(evs) if u > snap_id), len(evs))
    for U, u, pu in evs[: live_from + 1]:
        events += pair.frame(depth_frame(venue, m, U, u, pu, combined=combined), u)[1]
    events += pair.snapshot(sym, snapshot_body(venue, m, snap_id), snap_id)[1]
    for U, u, pu in evs[live_from + 1 :]:
        events += pair.frame(depth_frame(venue, m, U, u, pu, combined=combined), u)[1]
    pair.check_state()
    assert not any(isinstance(e, BookReset) for e in events)
    state = pair.pure.book_state(sym)
    assert state is not None and state.synced and state.last_update_id == max(last_id, snap_id)
    assert pair.pure.book_top(sym) == m.top(last_id)
    assert pair.pure.book_stats(sym)["gaps"] == 0


@pytest.mark.parametrize("venue", NEW_VENUES)
@SETTINGS
@given(changes=st.lists(_change, min_size=12, max_size=60), skip=st.integers(3, 9))
def test_a_missing_event_is_a_gap_by_the_venues_rule(
    venue: str, changes: list[tuple[int, int, int]], skip: int
) -> None:
    """Dropping one live event breaks the venue's chain (pu on COIN-M, U on US/TR): a reset, then a
    fresh snapshot syncs again to the model's book."""
    m = _market(venue, changes)
    evs = events_over(m, [2])
    pair = Pair.make(venue)
    sym = SYMBOL[venue]
    pair.frame(depth_frame(venue, m, *evs[0]), 1)
    pair.snapshot(sym, snapshot_body(venue, m, evs[0][1]), 2)
    events = []
    dropped = 1 + skip % (len(evs) - 2)  # a live event with another after it to reveal the gap
    for i, (U, u, pu) in enumerate(evs[1:], start=1):
        if i == dropped:
            continue
        events += pair.frame(depth_frame(venue, m, U, u, pu), 10 + i)[1]
    pair.check_state()
    stats = pair.pure.book_stats(sym)
    assert stats["gaps"] == 1 and any(isinstance(e, BookReset) for e in events)
    last_u = evs[-1][1]
    pair.snapshot(sym, snapshot_body(venue, m, last_u), 99)
    assert pair.pure.book_top(sym) == m.top(last_u)


@pytest.mark.parametrize("venue", NEW_VENUES)
def test_rules_follow_the_venue_table(venue: str) -> None:
    """COIN-M follows the futures pu chain; Binance.US and TR follow spot's U rule."""
    assert futures_rules(venue) is (venue == "coinm")


@pytest.mark.parametrize("venue", NEW_VENUES)
def test_tickers_and_trades_in_the_venues_shape_normalize(venue: str) -> None:
    """bookTicker (COIN-M with ps, exchange times; US/TR without times) and aggTrade (COIN-M's q in
    contracts) become Ticker and Trade events of the venue's symbol, quantities verbatim."""
    pair = Pair.make(venue)
    bid, ask = ("30000.1", qty_str(venue, 7)), ("30000.2", qty_str(venue, 9))
    (status, out) = pair.frame(book_ticker_frame(venue, 5, bid, ask), 1)
    assert status == "ok" and len(out) == 1 and isinstance(out[0], Ticker)
    t = out[0]
    assert (t.symbol, t.venue, t.bid_price, t.bid_qty, t.ask_qty) == (SYMBOL[venue], venue, bid[0], bid[1], ask[1])
    assert (t.event_time_ms is None) is (venue != "coinm")
    (status, out) = pair.frame(agg_trade_frame(venue, 42, "30000.1", qty_str(venue, 3)), 2)
    assert status == "ok" and len(out) == 1 and isinstance(out[0], Trade)
    assert (out[0].symbol, out[0].qty, out[0].trade_id) == (SYMBOL[venue], qty_str(venue, 3), 42)
    pair.check_state()


def test_coinm_frames_of_unseen_shape_are_counted_and_survived() -> None:
    """COIN-M events tickpath has no type for (contractInfo, indexPrice) are counted as unknown,
    unknown keys inside a known event (ps, a nested object) are skipped, and the book goes on."""
    venue = "coinm"
    m = _market(venue, [(0, 10, 5), (1, 60, 4), (0, 11, 3), (1, 61, 2)])
    evs = events_over(m, [1])
    pair = Pair.make(venue)
    pair.frame(depth_frame(venue, m, *evs[0]), 1)
    pair.snapshot("BTCUSD_PERP", snapshot_body(venue, m, evs[0][1]), 2)
    unseen = [
        {"e": "contractInfo", "E": 1, "s": "BTCUSD_PERP", "ps": "BTCUSD", "ct": "PERPETUAL", "cs": "TRADING"},
        {"e": "indexPriceUpdate", "E": 1, "i": "BTCUSD", "p": "30000.1"},
    ]
    for i, data in enumerate(unseen):
        assert pair.frame(json.dumps({"stream": "x", "data": data}), 3 + i) == ("error", "unknown_event")
    extra = json.loads(depth_frame(venue, m, *evs[1]))
    extra["data"]["future"] = {"nested": [1, {"k": "v"}], "flag": None}
    assert pair.frame(json.dumps(extra), 10)[0] == "ok"
    for i, ev in enumerate(evs[2:]):
        assert pair.frame(depth_frame(venue, m, *ev), 20 + i)[0] == "ok"
    pair.check_state()
    assert pair.pure.counts().unknown_event == 2 and pair.pure.counts().schema == 0
    assert pair.pure.book_top("BTCUSD_PERP") == m.top(m.first_id + 3)
