"""Top-N: a consumer rebuilding a book from the top-N snapshot and deltas holds exactly the true top N."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tickpath.book.orderbook import OrderBook
from tickpath.book.topn import TopNWindow
from tickpath.events import BookDelta, BookSnapshot, Event
from tickpath.venues.binance.schemas import DepthSnapshot, DepthUpdate

Side = dict[Decimal, str]

# Bids below 50, asks above 50: the books never cross, so every step is a live update.
bid_level = st.tuples(st.integers(1, 49).map(str), st.sampled_from(["0", "1", "2", "3.5"]))
ask_level = st.tuples(st.integers(51, 99).map(str), st.sampled_from(["0", "1", "2", "3.5"]))
update = st.tuples(st.lists(bid_level, max_size=6), st.lists(ask_level, max_size=6))


def true_top(side: Side, n: int, bids: bool) -> list[tuple[Decimal, str]]:
    return sorted(side.items(), reverse=bids)[:n]


def apply(side: Side, levels: list[tuple[str, str]]) -> None:
    for p, q in levels:
        if Decimal(q) == 0:
            side.pop(Decimal(p), None)
        else:
            side[Decimal(p)] = q


def consume(book: dict[str, Side], e: Event) -> None:
    if isinstance(e, BookSnapshot):
        book["b"] = {Decimal(p): q for p, q in e.bids}
        book["a"] = {Decimal(p): q for p, q in e.asks}
    elif isinstance(e, BookDelta):
        apply(book["b"], e.bids)
        apply(book["a"], e.asks)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    venue=st.sampled_from(["spot", "futures"]),
    initial=update,
    updates=st.lists(update, min_size=1, max_size=60),
)
def test_consumer_rebuilds_true_top_n_at_every_step(
    n: int,
    venue: str,
    initial: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    updates: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]],
) -> None:
    """After every upstream update, the consumer's top-N copy equals the full book's best N levels;
    its seq is contiguous and the upstream U/u ranges it sees are contiguous too."""
    from tickpath.venues.binance.sync import BookSync

    truth: dict[str, Side] = {"b": {}, "a": {}}
    apply(truth["b"], initial[0])
    apply(truth["a"], initial[1])
    bs = BookSync(venue, "X", session="s", depth=n)  # type: ignore[arg-type]
    snap_bids = [(str(p), q) for p, q in truth["b"].items()]
    snap_asks = [(str(p), q) for p, q in truth["a"].items()]
    emitted = bs.on_snapshot(DepthSnapshot(lastUpdateId=100, bids=snap_bids, asks=snap_asks), 0)
    consumer: dict[str, Side] = {"b": {}, "a": {}}
    seq = 0
    prev_final = 100
    last_u = 100
    for i, (b, a) in enumerate(updates):
        # Futures' first event must straddle lastUpdateId (U <= L <= u); some events span several ids.
        first = last_u if (venue == "futures" and i == 0) else last_u + 1
        final = last_u + 1 + (i % 3)
        ev = DepthUpdate(E=i, s="X", U=first, u=final, pu=last_u if venue == "futures" else None, b=b, a=a)
        last_u = final
        apply(truth["b"], b)
        apply(truth["a"], a)
        emitted += bs.on_depth(ev, i)
        for e in emitted:
            seq += 1
            assert e.seq == seq
            if isinstance(e, BookDelta):
                assert e.depth == n
                if venue == "futures":
                    assert e.prev_final_update_id == prev_final
                else:
                    assert e.first_update_id == prev_final + 1
                prev_final = e.final_update_id
            consume(consumer, e)
        emitted = []
        assert not bs.needs_snapshot
        assert sorted(consumer["b"].items(), reverse=True) == true_top(truth["b"], n, True)
        assert sorted(consumer["a"].items()) == true_top(truth["a"], n, False)


def test_window_diff_emits_insert_and_delete_of_levels_crossing_the_edge() -> None:
    """A better level entering a full window comes with a delete of the level pushed out, and a
    deleted level inside the window comes with the insert of the level that moved up."""
    ob = OrderBook()
    ob.load([("10", "1"), ("9", "1"), ("8", "1")], [])
    w = TopNWindow(2)
    assert w.reset(ob) == ([("10", "1"), ("9", "1")], [])
    ob.apply([("11", "4")], [])
    assert w.diff(ob) == ([("9", "0"), ("11", "4")], [])
    ob.apply([("10", "0")], [])
    assert w.diff(ob) == ([("10", "0"), ("9", "1")], [])
    ob.apply([("5", "3")], [])
    assert w.diff(ob) == ([], [])  # outside the window: nothing visible
    ob.apply([("11", "6")], [])
    assert w.diff(ob) == ([("11", "6")], [])


def test_depth_below_one_is_a_config_error() -> None:
    """A top-N depth of 0 is refused with a ConfigError (exit code 2 at the CLI), for BookSync too."""
    import pytest

    from tickpath.errors import ConfigError
    from tickpath.venues.binance.sync import BookSync

    with pytest.raises(ConfigError, match="at least 1"):
        TopNWindow(0)
    with pytest.raises(ConfigError):
        BookSync("spot", "X", session="s", depth=0)
    with pytest.raises(ConfigError, match="unknown venue"):
        BookSync("options", "X", session="s")  # type: ignore[arg-type]
