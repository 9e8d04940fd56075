"""A price-level order book that keeps the exchange's decimal strings and sorts by exact price.

Each side is a dict ``rank -> (price, qty)`` plus an ascending list of ranks kept sorted with
``bisect``. The rank is the price as a float, negated for asks, so on both sides the best level is
the *last* element: most updates land near the best price, and inserting or deleting near the end of
a list moves few pointers. The best N levels are a reversed slice.

Why a float key is exact here: a decimal string with at most 15 significant digits round-trips
through an IEEE-754 double, so ``float`` is injective and order-preserving on such prices, and two
spellings of one price (``"7.611"``, ``"7.6110"``) land on one key. Longer prices are rejected
(:class:`InvalidLevelError`) rather than risk two prices sharing a key. The strings themselves are
what the book stores and exports, so no rounding ever reaches a consumer.

Prices and quantities must be plain decimals as Binance spells them (:func:`check_decimal`:
``(0|[1-9][0-9]*)(\\.[0-9]+)?``, at most 17 digits); what ``float`` would also take (``1e5``,
``+1``, ``1_0``, `` 1``, ``.5``) is an invalid level. The native core stores such a string as one
64-bit exact decimal and prints it back as sent, so both implementations accept the same levels.

Snapshots (and :meth:`OrderBook.apply_atomic`) are validated in full before any level changes; the
hot-path :meth:`OrderBook.apply` validates as it goes, and its caller discards the book on error.
Only inserting a new price or removing one touches the sorted list (a C-level ``memmove``); changing
the quantity of an existing price (most updates on real streams) is one dict store, and a price
string seen before is not parsed again.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence

from tickpath.errors import TickpathError

Level = tuple[str, str]  # (price, qty) as the exchange spelled them
MAX_SIGNIFICANT_DIGITS = 15
_INF = float("inf")
RANK_CACHE_SIZE = 256  # per side: ~25 kB, so 300 books x 2 sides stay around 15 MB
MAX_DIGITS = 17  # the native core's exact decimal: 10^17 < 2^57, plus a 5-bit scale
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def check_decimal(s: str) -> bool:
    """Whether ``s`` is a plain decimal the books accept (see the module docstring)."""
    return len(s) <= MAX_DIGITS + 1 and _DECIMAL.fullmatch(s) is not None and len(s) - ("." in s) <= MAX_DIGITS


class InvalidLevelError(TickpathError):
    """A price or quantity that is not a non-negative decimal the book can key exactly."""


def _check_price(p: str) -> None:
    """Slow path for long price strings: count significant digits."""
    digits = p.replace(".", "").lstrip("0").rstrip("0") if "." in p else p.lstrip("0")
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        raise InvalidLevelError(f"price {p[:40]!r} has more than {MAX_SIGNIFICANT_DIGITS} significant digits")


def _prepare(levels: Sequence[Level], sign: float) -> list[tuple[float, Level, bool]]:
    """(rank, level, is_delete) per level; raises before anything is applied."""
    out: list[tuple[float, Level, bool]] = []
    append = out.append
    try:
        for lvl in levels:
            p, q = lvl
            r = float(p)
            fq = float(q)
            if not (0.0 < r < _INF and 0.0 <= fq < _INF):
                raise InvalidLevelError(f"level {lvl!r}: price must be positive and quantity non-negative")
            if not (check_decimal(p) and check_decimal(q)):
                raise InvalidLevelError(f"level {lvl!r} is not a pair of plain decimals")
            _check_price(p)
            append((sign * r, lvl, fq == 0.0))
    except (ValueError, TypeError):
        raise InvalidLevelError(f"level {lvl!r} is not a pair of decimal strings") from None
    return out


_plain = check_decimal


class BookSide:
    """One side of the book, best level first."""

    __slots__ = ("_rank_of", "levels", "ranks", "sign")

    def __init__(self, sign: float) -> None:
        self.sign = sign  # +1.0 for bids (highest price last), -1.0 for asks (lowest price last)
        self.levels: dict[float, Level] = {}
        self.ranks: list[float] = []
        # Price string -> rank, so a recently seen price costs one dict lookup instead of a parse
        # and validation; at most RANK_CACHE_SIZE entries.
        self._rank_of: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.ranks)

    def clear(self) -> None:
        self.levels.clear()
        self.ranks.clear()

    def load_prepared(self, prepared: Iterable[tuple[float, Level, bool]]) -> None:
        """Replace the side (a snapshot); zero quantities are skipped."""
        self.levels = {r: lvl for r, lvl, delete in prepared if not delete}
        self.ranks = sorted(self.levels)

    def apply_prepared(self, prepared: Iterable[tuple[float, Level, bool]]) -> None:
        levels = self.levels
        ranks = self.ranks
        for r, lvl, delete in prepared:
            if delete:
                if levels.pop(r, None) is not None:
                    del ranks[bisect_left(ranks, r)]
            else:
                if r not in levels:
                    insort(ranks, r)
                levels[r] = lvl

    def apply(self, updates: Sequence[Level]) -> None:
        """Validate and apply in one pass (the hot path): see :meth:`OrderBook.apply`."""
        levels = self.levels
        ranks = self.ranks
        cache = self._rank_of
        for lvl in updates:
            p, q = lvl
            try:
                # A subscript in a try costs less than .get() plus a None test (no method call);
                # a miss (a price not seen lately, well under 1 % on real streams) raises once.
                r = cache[p]
            except KeyError:
                r = self._rank(p, lvl)
            try:
                fq = float(q)
            except ValueError:
                raise InvalidLevelError(f"level {lvl!r}: quantity is not a decimal") from None
            if not _plain(q):
                raise InvalidLevelError(f"level {lvl!r}: quantity is not a plain decimal")
            if 0.0 < fq < _INF:
                if r not in levels:
                    insort(ranks, r)
                levels[r] = lvl
            elif fq == 0.0:
                if levels.pop(r, None) is not None:
                    del ranks[bisect_left(ranks, r)]
            else:
                raise InvalidLevelError(f"level {lvl!r}: quantity must be a non-negative decimal")

    def _rank(self, p: str, lvl: Level) -> float:
        """Validate a price string seen for the first time and remember its rank."""
        try:
            r = float(p)
        except ValueError:
            raise InvalidLevelError(f"level {lvl!r}: price is not a decimal") from None
        if not 0.0 < r < _INF:
            raise InvalidLevelError(f"level {lvl!r}: price must be a positive decimal")
        if not check_decimal(p):
            raise InvalidLevelError(f"level {lvl!r}: price is not a plain decimal")
        _check_price(p)
        cache = self._rank_of
        if len(cache) >= RANK_CACHE_SIZE:
            cache.clear()  # prices drift; updates cluster near the touch, which refills it at once
        r *= self.sign
        cache[p] = r
        return r

    def best(self) -> Level | None:
        return self.levels[self.ranks[-1]] if self.ranks else None

    def top(self, n: int | None = None) -> list[Level]:
        """The best ``n`` levels (all when None), best first, as the exchange's strings."""
        levels = self.levels
        return [levels[r] for r in self.top_ranks(n)]

    def top_ranks(self, n: int | None = None) -> list[float]:
        """Ranks of the best ``n`` levels (all when None), best first."""
        return self.ranks[::-1] if n is None else self.ranks[: -n - 1 : -1]

    def get(self, price: str) -> str | None:
        """Quantity at ``price`` (any spelling of the same decimal), or None."""
        lvl = self.levels.get(self.sign * float(price))
        return None if lvl is None else lvl[1]


class OrderBook:
    """Bids and asks of one symbol. Mutate with :meth:`load` (snapshot) and :meth:`apply` (delta)."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(1.0)
        self.asks = BookSide(-1.0)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def load(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Replace the whole book; validated first, so a bad snapshot leaves the book as it was."""
        pb = _prepare(bids, 1.0)
        pa = _prepare(asks, -1.0)
        self.bids.load_prepared(pb)
        self.asks.load_prepared(pa)

    def apply(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Set each level's quantity (``"0"`` deletes).

        Validation happens level by level in the same pass (the hot path), so on
        :class:`InvalidLevelError` the levels before the bad one are applied: the caller must discard
        the book, as :class:`~tickpath.venues.binance.sync.BookSync` does by resyncing. Use
        :meth:`apply_atomic` where a half-applied update must never be seen.
        """
        self.bids.apply(bids)
        self.asks.apply(asks)

    def apply_atomic(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        """Like :meth:`apply`, but validates every level first: on error nothing has changed."""
        pb = _prepare(bids, 1.0)
        pa = _prepare(asks, -1.0)
        self.bids.apply_prepared(pb)
        self.asks.apply_prepared(pa)

    def is_crossed(self) -> bool:
        """Best bid at or above best ask: impossible in a consistent book."""
        b = self.bids.ranks
        a = self.asks.ranks
        return bool(b) and bool(a) and b[-1] >= -a[-1]

    def best_bid(self) -> Level | None:
        return self.bids.best()

    def best_ask(self) -> Level | None:
        return self.asks.best()

    def top(self, n: int | None = None) -> tuple[list[Level], list[Level]]:
        """(bids, asks), each best first, limited to ``n`` levels per side when given."""
        return self.bids.top(n), self.asks.top(n)

    def as_dicts(self) -> tuple[dict[str, str], dict[str, str]]:
        """``{price: qty}`` per side: handy for comparing with a ground truth."""
        return dict(self.bids.levels.values()), dict(self.asks.levels.values())

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)
