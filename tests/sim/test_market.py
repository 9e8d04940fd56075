"""The market model: deterministic per seed, realistic changes, trades consistent with the book, exact history."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.sim import payloads
from tickpath.sim.market import ASK, BID, SymbolMarket, _fixed, spec_for


def _market(seed: int = 7, venue: str = "futures") -> SymbolMarket:
    return SymbolMarket(venue, spec_for(venue, "BTCUSDT"), seed, levels=300)  # type: ignore[arg-type]


def test_same_seed_same_market_different_seed_different_market() -> None:
    """Two markets with one seed produce identical update sequences; another seed does not."""
    a, b, c = _market(7), _market(7), _market(8)
    seq_a = [a.step()[:2] for _ in range(3000)]
    seq_b = [b.step()[:2] for _ in range(3000)]
    seq_c = [c.step()[:2] for _ in range(3000)]
    assert seq_a == seq_b
    assert seq_a != seq_c


def test_book_never_crosses_and_changes_at_and_away_from_touch() -> None:
    """Levels are added, changed and removed both at the touch and deep in the book; bid < ask always."""
    m = _market()
    at_touch = away = adds = removes = 0
    for _ in range(8000):
        best_before = list(m.best)
        had = {s: set(m.books[s]) for s in (BID, ASK)}
        _, (side, tick, lots), _ = m.step()
        assert m.best[BID] < m.best[ASK]
        assert m.best[BID] == max(m.books[BID]) and m.best[ASK] == min(m.books[ASK])
        if abs(tick - best_before[side]) <= 1:
            at_touch += 1
        elif abs(tick - best_before[side]) > 50:
            away += 1
        if lots == 0:
            removes += 1
        elif tick not in had[side]:
            adds += 1
    assert min(at_touch, away, adds, removes) > 200
    assert 250 <= len(m.books[BID]) <= 360 and 250 <= len(m.books[ASK]) <= 360


def test_trades_consume_the_touch() -> None:
    """Every trade happens at the best price of the side it hits and takes at most the resting size."""
    m = _market()
    trades = 0
    for _ in range(5000):
        best = list(m.best)
        sizes = {BID: m.books[BID][best[BID]], ASK: m.books[ASK][best[ASK]]}
        _, (side, tick, lots), trade = m.step()
        if trade is None:
            continue
        trades += 1
        assert trade.tick == best[side] == tick
        assert trade.lots + lots == sizes[side]  # the level shrinks by exactly what traded
        assert trade.buyer_is_maker == (side == BID)  # a seller hitting the bid: the buyer made the price
    assert trades > 300


def test_ground_truth_at_any_update_id_and_history_limits() -> None:
    """book_at(uid) equals the live book as it was at uid; ids outside kept history are clear errors."""
    m = SymbolMarket("spot", spec_for("spot", "ETHUSDT"), 3, levels=100, history=1000)
    saved = {}
    for i in range(45000):
        uid, _, _ = m.step()
        m.pinned_uid = uid  # no open depth window holds history (the hub moves this as windows close)
        if i % 331 == 0:
            saved[uid] = (dict(m.books[BID]), dict(m.books[ASK]))
    assert m.last_uid - m.first_available_uid < 2 * 1000  # about the history asked for, not 20,000
    recent = [u for u in saved if u >= m.first_available_uid]
    assert recent
    for uid in recent:
        assert m.book_at(uid) == saved[uid]
    with pytest.raises(ConfigError, match="future"):
        m.book_at(m.last_uid + 1)
    with pytest.raises(ConfigError, match="history"):
        m.book_at(m.first_available_uid - 1)


def test_changes_are_the_steps_changes_across_trims() -> None:
    """changes(a, b) gives back exactly what step() returned for ids a+1..b, also after the history was trimmed."""
    m = SymbolMarket("futures", spec_for("futures", "BTCUSDT"), 11, levels=100, history=1000)
    returned = {}
    for _ in range(6000):
        uid, change, _ = m.step()
        m.pinned_uid = uid
        returned[uid] = change
    lo = m.first_available_uid
    assert lo > 1000  # trimmed at least once
    assert m.changes(lo, m.last_uid) == [returned[u] for u in range(lo + 1, m.last_uid + 1)]
    with pytest.raises(ConfigError, match="history"):
        m.changes(lo - 1, m.last_uid)


def test_wire_decimals() -> None:
    """Spot prints 8 decimals; futures prints the symbol's precision; integers become exact strings."""
    assert _fixed(761100, 4, 8) == "76.11000000" and _fixed(5, 0, 0) == "5" and _fixed(3, 5, 8) == "0.00003000"
    spot, fut = spec_for("spot", "BTCUSDT"), spec_for("futures", "BTCUSDT")
    assert spot.fmt_price(3000012) == "30000.12000000" and fut.fmt_price(300001) == "30000.1"
    assert Decimal(fut.fmt_qty(0)) == 0


def test_unknown_symbol_is_rejected() -> None:
    """A symbol without a known quote asset is an UnknownSymbolError naming the rule."""
    with pytest.raises(UnknownSymbolError, match="quote"):
        spec_for("spot", "FOOBAR")


def test_fast_depth_payload_equals_generic_one() -> None:
    """The hand-formatted @depth@0ms payload is byte-identical to the orjson-built one."""
    for bid in (True, False):
        lvl = [["30000.1", "0.125"]]
        generic = payloads.depth_update("futures", "BTCUSDT", 17, 17, 5, 5, 4, lvl if bid else [], [] if bid else lvl)
        assert payloads.depth_update_one("BTCUSDT", 17, 5, "30000.1", "0.125", bid) == generic
    long = b"x" * 70000
    assert payloads.ws_frame(long)[:2] == b"\x81\x7f" and payloads.ws_frame(b"x" * 300)[:4] == b"\x81\x7e\x01\x2c"


def test_wire_strings_are_exact_and_their_cache_is_one_bound_for_all_markets() -> None:
    """price()/qty() are the specs' formatting; the cache behind them is shared and bounded (it was
    per market and grew through a whole soak: a partial fill leaves a quantity never seen before)."""
    from tickpath.sim import market

    ms = [SymbolMarket("futures", spec_for("futures", f"S{i:03d}USDT"), 7, levels=50) for i in range(3)]
    for m in ms:
        for v in (1, 7, 10**6 + 3, 123456789):
            assert m.price(v) == m.spec.fmt_price(v) and m.qty(v) == m.spec.fmt_qty(v)
    for n in range(market._WIRE_CACHE + 5000):
        ms[n % 3].qty(n)
    info = market._wire.cache_info()
    assert info.maxsize == market._WIRE_CACHE and info.currsize == market._WIRE_CACHE
    assert not any(hasattr(m, "_qty_str") or hasattr(m, "_price_str") for m in ms)
