"""OrderBook: exact decimal keys, sorted best-first access, crossed detection, all-or-nothing updates."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpath.book.orderbook import InvalidLevelError, OrderBook


def test_load_sorts_best_first_and_skips_zero_levels() -> None:
    """A snapshot loads bids high-to-low and asks low-to-high; zero quantities are not levels."""
    ob = OrderBook()
    ob.load([("99.5", "1"), ("100", "2"), ("98", "0.000")], [("102", "3"), ("101", "4")])
    assert ob.top() == ([("100", "2"), ("99.5", "1")], [("101", "4"), ("102", "3")])
    assert ob.best_bid() == ("100", "2") and ob.best_ask() == ("101", "4") and len(ob) == 4


def test_apply_sets_and_deletes_with_any_zero_spelling() -> None:
    """Quantities replace, "0" and "0.00000000" delete, deleting an absent level is harmless."""
    ob = OrderBook()
    ob.load([("100", "2")], [("101", "4")])
    ob.apply([("100", "5"), ("99", "1")], [("101", "0.00000000"), ("103", "0"), ("102", "7")])
    assert ob.as_dicts() == ({"100": "5", "99": "1"}, {"102": "7"})


def test_equal_decimals_in_different_spellings_are_one_level() -> None:
    """ "7.611" and "7.6110" are the same price: the update replaces, and the book keeps the new string."""
    ob = OrderBook()
    ob.load([("7.6110", "1")], [])
    ob.apply([("7.611", "2")], [])
    assert len(ob.bids) == 1 and ob.bids.get("7.61100") == "2"
    ob.apply([("7.61100000", "0")], [])
    assert len(ob.bids) == 0


def test_tiny_and_large_prices_order_exactly() -> None:
    """Prices differing in the last of 15 significant digits keep their order and stay distinct."""
    ob = OrderBook()
    ob.load([("0.00000001", "1"), ("0.00000002", "1"), ("12345678.1234567", "1"), ("12345678.1234568", "1")], [])
    assert [p for p, _ in ob.bids.top()] == ["12345678.1234568", "12345678.1234567", "0.00000002", "0.00000001"]


def test_crossed_detection() -> None:
    """Best bid at or above best ask is crossed; a one-sided book is not."""
    ob = OrderBook()
    ob.load([("100", "1")], [])
    assert not ob.is_crossed()
    ob.apply([], [("100.01", "1")])
    assert not ob.is_crossed()
    ob.apply([], [("100", "1")])
    assert ob.is_crossed()


@pytest.mark.parametrize(
    "bad",
    [
        ("abc", "1"),
        ("1", "x"),
        ("-1", "1"),
        ("1", "-2"),
        ("0", "1"),
        ("nan", "1"),
        ("1", "nan"),
        ("1.23456789012345678", "1"),
    ],
)
def test_invalid_level_is_rejected(bad: tuple[str, str]) -> None:
    """A non-decimal, negative, zero-price or over-precise level raises InvalidLevelError from apply,
    apply_atomic and load; apply_atomic and load change nothing."""
    ob = OrderBook()
    ob.load([("100", "1")], [("101", "1")])
    with pytest.raises(InvalidLevelError):
        ob.apply_atomic([("99", "5")], [bad])
    with pytest.raises(InvalidLevelError):
        ob.load([("98", "5")], [bad])
    assert ob.as_dicts() == ({"100": "1"}, {"101": "1"})
    with pytest.raises(InvalidLevelError):
        ob.apply([], [bad])


def test_top_n_slices_each_side() -> None:
    """top(n) returns at most n best levels per side."""
    ob = OrderBook()
    ob.load([(str(100 - i), "1") for i in range(10)], [(str(101 + i), "1") for i in range(3)])
    bids, asks = ob.top(4)
    assert [p for p, _ in bids] == ["100", "99", "98", "97"] and len(asks) == 3


prices = st.integers(min_value=1, max_value=400).map(lambda i: f"{Decimal(i) / 100:.2f}")
qtys = st.sampled_from(["0", "0.0", "1", "2.5", "10"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), prices, qtys), max_size=120))
def test_book_matches_dict_model(ops: list[tuple[bool, str, str]]) -> None:
    """Under random updates, the book equals a plain dict model and stays sorted best-first."""
    ob = OrderBook()
    model: dict[bool, dict[Decimal, str]] = {True: {}, False: {}}
    for is_bid, p, q in ops:
        if is_bid:
            ob.apply([(p, q)], [])
        else:
            ob.apply([], [(p, q)])
        if Decimal(q) == 0:
            model[is_bid].pop(Decimal(p), None)
        else:
            model[is_bid][Decimal(p)] = q
    bids, asks = ob.top()
    assert [(Decimal(p), q) for p, q in bids] == sorted(model[True].items(), reverse=True)
    assert [(Decimal(p), q) for p, q in asks] == sorted(model[False].items())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.tuples(prices, qtys), max_size=8), st.lists(st.tuples(prices, qtys), max_size=8)),
        max_size=40,
    )
)
def test_multi_level_updates_apply_in_order(updates: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]]) -> None:
    """Updates of several levels (a price may repeat within one) apply level by level, in order."""
    ob = OrderBook()
    model: list[dict[Decimal, str]] = [{}, {}]
    for bids, asks in updates:
        ob.apply(bids, asks)
        for side, levels in ((0, bids), (1, asks)):
            for p, q in levels:
                if Decimal(q) == 0:
                    model[side].pop(Decimal(p), None)
                else:
                    model[side][Decimal(p)] = q
    assert {Decimal(p): q for p, q in ob.bids.top()} == model[0]
    assert {Decimal(p): q for p, q in ob.asks.top()} == model[1]
