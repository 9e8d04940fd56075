"""BookSync applies Binance's book rules exactly, on hand-built event sequences, per venue."""

from __future__ import annotations

from tickpath.events import BookDelta, BookReset, BookSnapshot, Event
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.schemas import DepthSnapshot, DepthUpdate, Level
from tickpath.venues.binance.sync import BookSync


def spot_ev(
    first: int, last: int, b: list[Level] | None = None, a: list[Level] | None = None, symbol: str = "BTCUSDT"
) -> DepthUpdate:
    return DepthUpdate(E=1000 + last, s=symbol, U=first, u=last, b=b or [], a=a or [])


def fut_ev(
    first: int,
    last: int,
    prev: int,
    b: list[Level] | None = None,
    a: list[Level] | None = None,
    symbol: str = "BTCUSDT",
) -> DepthUpdate:
    return DepthUpdate(E=1000 + last, T=900 + last, s=symbol, U=first, u=last, pu=prev, b=b or [], a=a or [])


def snap(last: int, bids: list[Level] | None = None, asks: list[Level] | None = None) -> DepthSnapshot:
    return DepthSnapshot(
        lastUpdateId=last,
        bids=bids if bids is not None else [("100", "1"), ("99", "2")],
        asks=asks if asks is not None else [("101", "1"), ("102", "2")],
    )


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def test_spot_first_event_rule_drops_older_and_bridges() -> None:
    """Spot: events with u <= lastUpdateId are dropped; the first applied has U <= L+1 <= u."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    assert bs.on_depth(spot_ev(5, 8), 1) == []  # buffered, u <= L: dropped at snapshot
    assert bs.on_depth(spot_ev(9, 10), 2) == []  # u == L: dropped
    assert bs.on_depth(spot_ev(11, 13, b=[("100", "5")]), 3) == []  # U == L+1: bridges
    assert bs.on_depth(spot_ev(14, 14, a=[("101", "0")]), 4) == []
    out = bs.on_snapshot(snap(10), 5)
    assert kinds(out) == ["BookSnapshot", "BookDelta", "BookDelta"] and seqs(out) == [1, 2, 3]
    assert isinstance(out[1], BookDelta) and out[1].first_update_id == 11 and out[1].final_update_id == 13
    assert bs.stats.dropped_before_sync == 2 and bs.synced and not bs.needs_snapshot
    assert bs.book.as_dicts() == ({"100": "5", "99": "2"}, {"102": "2"})
    assert bs.last_update_id == 14


def test_spot_first_event_may_straddle_the_snapshot() -> None:
    """Spot: an event with U < L+1 < u is the first event and is applied whole."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_depth(spot_ev(8, 12, b=[("98", "7")]), 1)
    out = bs.on_snapshot(snap(10), 2)
    assert kinds(out) == ["BookSnapshot", "BookDelta"] and bs.book.bids.get("98") == "7"


def test_futures_first_event_rule_uses_l_not_l_plus_one() -> None:
    """Futures: drop u < L; the first applied event has U <= L <= u, then pu == previous u."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    bs.on_depth(fut_ev(1, 9, 0), 1)  # u < L: dropped
    bs.on_depth(fut_ev(10, 12, 9, b=[("100", "3")]), 2)  # U <= 10 <= u: first event (u == L allowed)
    bs.on_depth(fut_ev(13, 15, 12, a=[("103", "1")]), 3)
    out = bs.on_snapshot(snap(10), 4)
    assert kinds(out) == ["BookSnapshot", "BookDelta", "BookDelta"]
    assert bs.stats.dropped_before_sync == 1 and bs.stats.gaps == 0
    assert isinstance(out[2], BookDelta) and out[2].prev_final_update_id == 12
    assert bs.book.as_dicts() == ({"100": "3", "99": "2"}, {"101": "1", "102": "2", "103": "1"})


def test_futures_event_ending_exactly_at_l_is_applied() -> None:
    """Futures: an event with u == lastUpdateId is the first event (U <= L <= u), not dropped."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    bs.on_depth(fut_ev(8, 10, 7, b=[("97", "1")]), 1)
    out = bs.on_snapshot(snap(10), 2)
    assert kinds(out) == ["BookSnapshot", "BookDelta"] and bs.book.bids.get("97") == "1"
    spot = BookSync("spot", "BTCUSDT", session="s")
    spot.on_depth(spot_ev(8, 10, b=[("97", "1")]), 1)
    assert kinds(spot.on_snapshot(snap(10), 2)) == ["BookSnapshot"]  # spot drops u <= L
    assert spot.book.bids.get("97") is None


def test_spot_refetch_when_snapshot_older_than_first_buffered_event() -> None:
    """A snapshot with L+1 < first buffered U is rejected: nothing emitted, snapshot still needed."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_depth(spot_ev(20, 22), 1)
    assert bs.on_snapshot(snap(10), 2) == []
    assert bs.needs_snapshot and not bs.synced and bs.stats.refetches == 1 and bs.buffered == 1
    out = bs.on_snapshot(snap(21), 3)  # a newer snapshot bridges
    assert kinds(out) == ["BookSnapshot", "BookDelta"] and bs.stats.snapshots == 1


def test_futures_refetch_when_snapshot_older_than_first_buffered_event() -> None:
    """Futures: L < first buffered U means the snapshot is too old (U <= L required)."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    bs.on_depth(fut_ev(11, 12, 10), 1)
    assert bs.on_snapshot(snap(10), 2) == []  # spot would accept U == L+1; futures must not
    assert bs.stats.refetches == 1 and bs.needs_snapshot


def test_spot_gap_emits_reset_and_buffers_the_revealing_event() -> None:
    """Spot: U != previous u + 1 resets the book, asks for a snapshot and keeps that event buffered."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_depth(spot_ev(11, 12), 1)
    bs.on_snapshot(snap(10), 2)
    out = bs.on_depth(spot_ev(14, 15, b=[("1", "1")]), 3)  # 13 is missing
    assert kinds(out) == ["BookReset"] and out[0].seq == 3
    reset = out[0]
    assert isinstance(reset, BookReset) and reset.reason == "gap" and reset.last_good_update_id == 12
    assert bs.needs_snapshot and not bs.synced and len(bs.book) == 0
    assert bs.stats.gaps == 1 and bs.stats.resyncs == 1 and bs.first_buffered_update_id() == 14
    out = bs.on_snapshot(snap(14), 4)
    assert kinds(out) == ["BookSnapshot", "BookDelta"] and seqs(out) == [4, 5]


def test_futures_gap_is_detected_by_pu() -> None:
    """Futures: pu != previous u is a break even when U looks contiguous."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    bs.on_depth(fut_ev(10, 12, 9), 1)
    bs.on_snapshot(snap(10), 2)
    assert kinds(bs.on_depth(fut_ev(20, 25, 12), 3)) == ["BookDelta"]  # U jumps; pu matches: fine
    out = bs.on_depth(fut_ev(26, 30, 24), 4)  # pu should be 25
    assert kinds(out) == ["BookReset"] and bs.stats.gaps == 1 and bs.needs_snapshot


def test_duplicates_are_ignored_not_a_gap() -> None:
    """An event at or below the last applied u (a duplicate or rollover overlap) is counted and ignored."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_depth(spot_ev(11, 12, b=[("100", "4")]), 1)
    bs.on_snapshot(snap(10), 2)
    assert bs.on_depth(spot_ev(11, 12, b=[("100", "999")]), 3) == []
    assert kinds(bs.on_depth(spot_ev(13, 13), 4)) == ["BookDelta"]
    assert bs.stats.duplicates == 1 and bs.stats.gaps == 0 and bs.book.bids.get("100") == "4"


def test_crossed_book_after_update_forces_resync() -> None:
    """An update leaving best bid >= best ask emits a reset and needs a new snapshot."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    bs.on_snapshot(snap(10), 1)
    out = bs.on_depth(fut_ev(10, 11, 9, b=[("101.5", "1")]), 2)  # crosses the 101 ask
    assert kinds(out) == ["BookReset"] and isinstance(out[0], BookReset) and out[0].reason == "crossed"
    assert bs.stats.crossed == 1 and bs.needs_snapshot and bs.buffered == 0


def test_crossed_snapshot_is_refetched() -> None:
    """A crossed snapshot is never published."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    assert bs.on_snapshot(snap(10, bids=[("102", "1")]), 1) == []
    assert bs.needs_snapshot and bs.stats.crossed == 1 and bs.stats.refetches == 1


def test_snapshot_too_old_discovered_after_publishing_resets() -> None:
    """With an empty buffer the snapshot is published; a first event that cannot bridge resets."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    assert kinds(bs.on_snapshot(snap(10), 1)) == ["BookSnapshot"]
    assert bs.on_depth(spot_ev(5, 10), 2) == []  # still older than the snapshot: dropped
    out = bs.on_depth(spot_ev(15, 16), 3)
    assert kinds(out) == ["BookReset"] and isinstance(out[0], BookReset)
    assert out[0].reason == "snapshot_too_old" and bs.first_buffered_update_id() == 15


def test_invalid_level_resets_and_leaves_no_partial_update() -> None:
    """A level that is not a decimal is counted, the symbol resyncs, and nothing of it is applied."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_snapshot(snap(10), 1)
    out = bs.on_depth(spot_ev(11, 11, b=[("98", "1"), ("abc", "1")]), 2)
    assert kinds(out) == ["BookReset"] and bs.stats.invalid == 1 and bs.needs_snapshot


def test_break_affects_only_that_symbol() -> None:
    """A gap on one symbol resets that symbol only; the other keeps its book and seq."""
    n = Normalizer("spot", session="s", symbols=("AAA", "BBB"))
    for sym in ("AAA", "BBB"):
        n.on_message(spot_ev(11, 11, symbol=sym), 1)
        n.on_snapshot(sym, snap(10), 2)
    out = n.on_message(spot_ev(20, 20, symbol="AAA"), 3)
    assert kinds(out) == ["BookReset"] and out[0].symbol == "AAA"
    ok = n.on_message(spot_ev(12, 12, b=[("100", "9")], symbol="BBB"), 4)
    assert kinds(ok) == ["BookDelta"] and ok[0].seq == 3
    assert n.books["BBB"].synced and n.books["BBB"].book.bids.get("100") == "9"
    assert n.books["AAA"].needs_snapshot and n.needs_snapshot() == ["AAA"]


def test_engine_reset_emits_reset_only_for_a_published_book() -> None:
    """reset() (e.g. after a reconnect) emits BookReset when synced and just clears otherwise."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_depth(spot_ev(11, 11), 1)
    assert bs.reset("reconnect", 2) == [] and bs.buffered == 0
    bs.on_snapshot(snap(10), 3)
    out = bs.reset("reconnect", 4)
    assert kinds(out) == ["BookReset"] and isinstance(out[0], BookReset) and out[0].reason == "reconnect"
    assert bs.on_snapshot(snap(20), 5)[0].seq == 3


def test_snapshot_while_synced_is_ignored() -> None:
    """A snapshot arriving while the book is live does not replace it."""
    bs = BookSync("spot", "BTCUSDT", session="s")
    bs.on_snapshot(snap(10), 1)
    assert bs.on_snapshot(snap(50, bids=[("1", "1")]), 2) == [] and bs.stats.ignored_snapshots == 1
    assert bs.book.bids.get("100") == "1"


def test_buffer_is_bounded_and_overflow_counted() -> None:
    """Before sync, at most max_buffer events are held; the oldest are dropped and counted."""
    bs = BookSync("spot", "BTCUSDT", session="s", max_buffer=3)
    for i in range(11, 16):
        bs.on_depth(spot_ev(i, i), i)
    assert bs.buffered == 3 and bs.stats.buffer_overflow == 2 and bs.first_buffered_update_id() == 13
    assert bs.on_snapshot(snap(10), 20) == [] and bs.stats.refetches == 1  # 11, 12 lost: cannot bridge


def test_snapshot_event_is_full_book_sorted_best_first() -> None:
    """The published snapshot lists bids high to low and asks low to high, strings verbatim."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    out = bs.on_snapshot(
        DepthSnapshot(
            lastUpdateId=5, E=7, T=6, bids=[("99.0", "1"), ("100.50", "2")], asks=[("102", "3"), ("101.25", "4")]
        ),
        9,
    )
    s = out[0]
    assert isinstance(s, BookSnapshot)
    assert s.bids == [("100.50", "2"), ("99.0", "1")] and s.asks == [("101.25", "4"), ("102", "3")]
    assert (s.event_time_ms, s.transaction_time_ms, s.receipt_ns, s.depth) == (7, 6, 9, None)


def test_top_n_mode_folds_invisible_updates_into_the_next_range() -> None:
    """In top-N mode, updates outside the window emit nothing, and the next delta's U..u covers them."""
    bs = BookSync("futures", "BTCUSDT", session="s", depth=1)
    out = bs.on_snapshot(snap(10), 1)
    assert isinstance(out[0], BookSnapshot) and out[0].bids == [("100", "1")] and out[0].depth == 1
    assert bs.on_depth(fut_ev(9, 12, 8, b=[("98", "5")]), 2) == []  # below the top 1
    out = bs.on_depth(fut_ev(13, 14, 12, a=[("101", "0")]), 3)  # best ask removed: 102 moves up
    d = out[0]
    assert isinstance(d, BookDelta) and d.seq == 2 and d.depth == 1
    assert (d.first_update_id, d.final_update_id, d.prev_final_update_id) == (9, 14, 8)
    assert d.asks == [("101", "0"), ("102", "2")] and d.bids == []


def test_classify_predicts_on_depth_without_applying() -> None:
    """classify() says next/duplicate/ahead/waiting exactly as on_depth would treat the event."""
    bs = BookSync("futures", "BTCUSDT", session="s")
    assert bs.classify(fut_ev(10, 12, 9)) == "waiting"
    bs.on_snapshot(snap(10), 1)
    assert bs.classify(fut_ev(1, 9, 0)) == "duplicate"  # older than the snapshot
    assert bs.classify(fut_ev(11, 12, 10)) == "ahead"  # futures first event needs U <= L
    assert bs.classify(fut_ev(10, 12, 9)) == "next"
    bs.on_depth(fut_ev(10, 12, 9), 2)
    assert bs.classify(fut_ev(10, 12, 9)) == "duplicate"
    assert bs.classify(fut_ev(15, 16, 14)) == "ahead"
    assert bs.classify(fut_ev(13, 16, 12)) == "next"
    assert bs.last_update_id == 12 and bs.stats.deltas == 1  # nothing applied by classify
