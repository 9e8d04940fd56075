"""A deterministic order-book market per symbol, with exact ground truth at every update id.

Prices are integer ticks and quantities integer lots, so books are exact; they become decimal
strings only on the wire. Every update id changes exactly one level (quantity 0 removes it), which
makes the history a flat list: the book at update id ``n`` is the nearest checkpoint at or before
``n`` plus the changes after it. A trade consumes the touch and is itself the depth change of its
update id, so trades and books always agree.
"""

from __future__ import annotations

import functools
import random
from array import array
from dataclasses import dataclass
from typing import NamedTuple

from tickpath.errors import ConfigError
from tickpath.venues.binance.endpoints import Venue, endpoints

BID = 0
ASK = 1
# A checkpoint every history / 2 ids (500 to 10,000): memory stays near ``history`` ids of changes (a
# fixed 10,000 kept at least 20,000 per symbol whatever was asked, 400 MB for a 200-symbol soak).
_CHECKPOINT_MIN, _CHECKPOINT_MAX = 500, 10_000
_TABLE = 4096


@dataclass(frozen=True)
class SymbolSpec:
    """Price/quantity grid of one simulated symbol on one venue."""

    symbol: str
    price_decimals: int  # tick = 10**-price_decimals
    qty_decimals: int  # lot = 10**-qty_decimals
    start_price: float
    wire_price_decimals: int  # digits on the wire (spot always prints 8)
    wire_qty_decimals: int
    typical_lots: int  # median level size, in lots

    def fmt_price(self, ticks: int) -> str:
        return _fixed(ticks, self.price_decimals, self.wire_price_decimals)

    def fmt_qty(self, lots: int) -> str:
        return _fixed(lots, self.qty_decimals, self.wire_qty_decimals)


# One bound for every market's wire strings. Per-market caches of 200,000 entries each grew for the
# whole of a 200-symbol soak (a partial fill leaves a new quantity: 550 k strings, +40 k Python blocks a
# minute after 9 M steps), and would not be bounded at all for --universe's 2,450 markets.
_WIRE_CACHE = 1 << 17  # ~25 MB when full; a hit costs ~90 ns, a miss ~400


@functools.lru_cache(maxsize=_WIRE_CACHE)
def _wire(n: int, decimals: int, out_decimals: int) -> str:
    return _fixed(n, decimals, out_decimals)


def _fixed(n: int, decimals: int, out_decimals: int) -> str:
    """``n * 10**-decimals`` printed with ``out_decimals`` digits (out_decimals >= decimals)."""
    if decimals == 0:
        return f"{n}.{'0' * out_decimals}" if out_decimals else str(n)
    s = str(n).rjust(decimals + 1, "0")
    tail = s[-decimals:] + "0" * (out_decimals - decimals)
    return f"{s[:-decimals]}.{tail}"


# (price decimals, qty decimals, start price, typical lots) per venue. Others well-formed symbols with
# a known quote asset get generic parameters (see spec_for).
_CATALOGUE: dict[str, dict[Venue, tuple[int, int, float, int]]] = {
    "BTCUSDT": {"spot": (2, 5, 30000.0, 20000), "futures": (1, 3, 30000.0, 500)},
    "ETHUSDT": {"spot": (2, 4, 2000.0, 5000), "futures": (2, 3, 2000.0, 2000)},
    "BNBUSDT": {"spot": (2, 3, 300.0, 3000), "futures": (2, 2, 300.0, 500)},
    "SOLUSDT": {"spot": (2, 3, 100.0, 5000), "futures": (3, 0, 100.0, 20)},
    "XRPUSDT": {"spot": (4, 0, 0.5, 2000), "futures": (4, 1, 0.5, 20000)},
}
# COIN-M contracts by pair: price decimals, quantity decimals (0: whole contracts), start price, lots.
_COINM: dict[str, tuple[int, int, float, int]] = {
    "BTCUSD": (1, 0, 30000.0, 500),
    "ETHUSD": (2, 0, 2000.0, 2000),
    "BNBUSD": (3, 0, 300.0, 300),
}
KNOWN_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")


def spec_for(venue: Venue, symbol: str) -> SymbolSpec:
    """The grid of ``symbol`` on ``venue``; a symbol not in the venue's format, or without a known
    quote asset, is an error. Binance.US and TR have spot's grids; COIN-M trades whole contracts."""
    from tickpath.errors import UnknownSymbolError

    ep = endpoints(venue)
    if not ep.valid_symbol(symbol):
        raise UnknownSymbolError(f"unknown symbol {symbol!r} on {venue}: symbols there look like {ep.symbol_examples}")
    if venue == "coinm":
        entry: tuple[int, int, float, int] | None = _COINM.get(symbol.split("_", 1)[0], (2, 0, 10.0, 200))
    else:
        entry = _CATALOGUE.get(symbol, {}).get("spot" if ep.rules == "spot" else venue)
    if entry is None:
        if not any(symbol.endswith(q) and len(symbol) > len(q) + 1 for q in KNOWN_QUOTES):
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r}: simulated symbols are {', '.join(_CATALOGUE)} or any "
                f"upper-case BASE+QUOTE with quote in {', '.join(KNOWN_QUOTES)}"
            )
        entry = (4, 2, 10.0, 1000)
    pd, qd, price, lots = entry
    if ep.rules == "spot":
        return SymbolSpec(symbol, pd, qd, price, 8, 8, lots)
    return SymbolSpec(symbol, pd, qd, price, pd, qd, lots)


# One level change: (side BID/ASK, price in ticks, quantity in lots; 0 = level removed). A plain
# tuple, not a NamedTuple: it is built once per update id on the hot path.
Change = tuple[int, int, int]


class Trade(NamedTuple):
    trade_id: int
    tick: int
    lots: int
    buyer_is_maker: bool  # True when a seller hit the bid


class BookSnapshot(NamedTuple):
    """A full or top-``limit`` book: price/qty strings, bids descending, asks ascending."""

    last_update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class SymbolMarket:
    """One symbol's book on one venue, evolving by :meth:`step`, deterministic for its seed."""

    def __init__(
        self,
        venue: Venue,
        spec: SymbolSpec,
        seed: int,
        *,
        levels: int = 1200,
        history: int = 200_000,
        tables: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
    ) -> None:
        self.venue = venue
        self.spec = spec
        self.rng = random.Random(f"{seed}/{venue}/{spec.symbol}")
        self.target = levels
        self._checkpoint_every = max(_CHECKPOINT_MIN, min(_CHECKPOINT_MAX, history // 2))
        self.history_limit = max(history, 2 * self._checkpoint_every)
        self.books: tuple[dict[int, int], dict[int, int]] = ({}, {})
        mid: int = round(spec.start_price * 10**spec.price_decimals)
        self.best: list[int] = [mid - 1, mid + 1]  # best bid tick, best ask tick
        self.last_uid = 1_000_000 + self.rng.randrange(1_000_000)
        self.next_trade_id = 10_000 + self.rng.randrange(100_000)
        # Sampled once from the seeded generator: table look-ups keep a step around 3 us.
        if tables is not None:  # --universe: thousands of symbols share one pair (80 kB each otherwise)
            self._lot_table, self._dist_table = tables
        else:
            # Tuples: the collector untracks a tuple of ints, so 4,096 entries a symbol are not walked
            # by every generation-2 pass (lists of them were half of such a pass in a 200-symbol soak).
            self._lot_table = tuple(
                max(1, int(self.rng.lognormvariate(0.0, 1.0) * spec.typical_lots)) for _ in range(_TABLE)
            )
            self._dist_table = tuple(
                int(self.rng.expovariate(0.15)) if self.rng.random() < 0.75 else self.rng.randrange(int(levels * 1.25))
                for _ in range(_TABLE)
            )
        self._seed_book(mid)
        # History: the change of update id _hist_base + 1 + i is _hist[3i : 3i + 3] (side, tick, lots);
        # checkpoints every N ids. A flat array, not a list of tuples: 24 B a change instead of ~70, and
        # nothing the garbage collector walks (a 200-symbol soak kept 1.4 M changes: a list of them made
        # every generation-2 pass of a process hosting the simulator take ~150 ms).
        self._hist = array("q")
        self._hist_base = self.last_uid
        self._checkpoints: list[tuple[int, dict[int, int], dict[int, int]]] = [
            (self.last_uid, dict(self.books[BID]), dict(self.books[ASK]))
        ]
        self.pinned_uid = self.last_uid  # history after this id is kept whatever the limit (open windows)

    # ---- generation -------------------------------------------------------------------------------
    def _seed_book(self, mid: int) -> None:
        rnd = self.rng.random
        for side, sign in ((BID, -1), (ASK, 1)):
            book = self.books[side]
            tick = self.best[side]
            while len(book) < self.target and tick > 0:
                if rnd() < 0.8 or not book:
                    book[tick] = self._lot_table[int(rnd() * _TABLE)]
                tick += sign
        self.best = [max(self.books[BID]), min(self.books[ASK])]

    def _refresh_best(self, side: int) -> None:
        book = self.books[side]
        if not book:
            return
        sign = -1 if side == BID else 1
        tick = self.best[side]
        for _ in range(256):
            if tick in book:
                self.best[side] = tick
                return
            tick += sign
        self.best[side] = max(book) if side == BID else min(book)

    def step(self) -> tuple[int, Change, Trade | None]:
        """Advance one update id: one level changes (a trade, an add, a change or a removal).

        One 48-bit draw per step picks side, action, distance and size (the hot path of the
        simulator: about a third of the cost of a frame).
        """
        bits = self.rng.getrandbits(48)
        side = bits & 1
        x = ((bits >> 1) & 1023) / 1024.0
        dist = self._dist_table[(bits >> 11) & 4095]
        new_lots = self._lot_table[(bits >> 23) & 4095]
        frac = ((bits >> 35) & 4095) / 4096.0
        book = self.books[side]
        best = self.best
        trade: Trade | None = None
        n = len(book)
        sign = -1 if side == BID else 1
        if x < 0.12 and n > 5:
            # A market order consumes part or all of the touch on `side`.
            tick = best[side]
            have = book[tick]
            take = have if frac < 0.3 else max(1, int(have * (frac - 0.3) / 0.7))
            lots = have - take
            trade = Trade(self.next_trade_id, tick, take, side == BID)
            self.next_trade_id += 1
        elif x < 0.5 or n < 0.9 * self.target or n <= 5:
            # Add a level (or refresh one): at, behind or inside the spread.
            spread = best[ASK] - best[BID]
            if spread > 1 and frac < 0.15:
                tick = best[side] - sign * (1 + int(frac / 0.15 * (spread - 1)))
            else:
                tick = best[side] + sign * dist
            if tick <= 0:
                tick = best[side]
            lots = new_lots
        else:
            tick = best[side] + sign * dist
            for _ in range(64):  # the first existing level at or beyond `dist` from the touch
                if tick in book:
                    break
                tick += sign
            else:
                tick = best[side]
            lots = new_lots if (x < 0.75 and n <= 1.1 * self.target) else 0
        # apply
        if lots:
            book[tick] = lots
            if (tick > best[BID]) if side == BID else (tick < best[ASK]):
                best[side] = tick
        else:
            del book[tick]
            if tick == best[side]:
                self._refresh_best(side)
        self.last_uid += 1
        change = (side, tick, lots)
        self._hist.extend(change)
        if self.last_uid - self._checkpoints[-1][0] >= self._checkpoint_every:
            self._checkpoint()
        return self.last_uid, change, trade

    def _checkpoint(self) -> None:
        self._checkpoints.append((self.last_uid, dict(self.books[BID]), dict(self.books[ASK])))
        if len(self._hist) > 3 * self.history_limit:
            self._trim()

    def _trim(self) -> None:
        keep_from = min(self.last_uid - self.history_limit, self.pinned_uid)
        while len(self._checkpoints) > 1 and self._checkpoints[1][0] <= keep_from:
            self._checkpoints.pop(0)
        cut = self._checkpoints[0][0] - self._hist_base
        if cut > 0:
            del self._hist[: 3 * cut]
            self._hist_base += cut

    # ---- reading ----------------------------------------------------------------------------------
    def price(self, tick: int) -> str:
        """Wire string of a price (cached: the same prices recur all the time)."""
        spec = self.spec
        return _wire(tick, spec.price_decimals, spec.wire_price_decimals)

    def qty(self, lots: int) -> str:
        spec = self.spec
        return _wire(lots, spec.qty_decimals, spec.wire_qty_decimals)

    def changes(self, after_uid: int, to_uid: int) -> list[Change]:
        """The changes of update ids ``after_uid + 1 .. to_uid`` (must still be in history)."""
        lo = after_uid - self._hist_base
        if lo < 0:
            raise ConfigError(f"update id {after_uid + 1} is no longer in history")
        flat = self._hist[3 * lo : 3 * (to_uid - self._hist_base)]
        return list(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))

    def history_size(self) -> tuple[int, int]:
        """(changes kept, levels in the kept checkpoints): what this market's replay memory holds."""
        return len(self._hist) // 3, sum(len(b) + len(a) for _, b, a in self._checkpoints)

    @property
    def first_available_uid(self) -> int:
        return self._checkpoints[0][0]

    def book_at(self, uid: int) -> tuple[dict[int, int], dict[int, int]]:
        """Exact (bids, asks) as ticks->lots after update id ``uid``."""
        if uid > self.last_uid:
            raise ConfigError(f"update id {uid} is in the future (last is {self.last_uid})")
        if uid < self.first_available_uid:
            raise ConfigError(
                f"update id {uid} is older than the kept history "
                f"(from {self.first_available_uid}; raise history_updates)"
            )
        if uid == self.last_uid:
            return dict(self.books[BID]), dict(self.books[ASK])
        cp = self._checkpoints[0]
        for c in self._checkpoints:
            if c[0] <= uid:
                cp = c
            else:
                break
        bids, asks = dict(cp[1]), dict(cp[2])
        sides = (bids, asks)
        flat = self._hist[3 * (cp[0] - self._hist_base) : 3 * (uid - self._hist_base)]
        for side, tick, lots in zip(flat[0::3], flat[1::3], flat[2::3], strict=True):
            if lots:
                sides[side][tick] = lots
            else:
                sides[side].pop(tick, None)
        return bids, asks

    def snapshot(self, limit: int | None = None, uid: int | None = None) -> BookSnapshot:
        """The book (top ``limit`` levels per side, or all) as of ``uid`` (default: now)."""
        at = self.last_uid if uid is None else uid
        bids, asks = (self.books[BID], self.books[ASK]) if uid is None else self.book_at(uid)
        fp, fq = self.spec.fmt_price, self.spec.fmt_qty
        bt = sorted(bids, reverse=True)[:limit] if limit else sorted(bids, reverse=True)
        at_ = sorted(asks)[:limit] if limit else sorted(asks)
        return BookSnapshot(at, [(fp(t), fq(bids[t])) for t in bt], [(fp(t), fq(asks[t])) for t in at_])
