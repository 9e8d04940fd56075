"""The top-N window of a book, and the level changes that keep a consumer's copy of it exact.

A consumer of a top-N stream holds at most N levels per side. When a level changes inside the window
it needs that change; when a better level arrives and pushes the Nth level out, it needs the insert
*and* a delete of the level that left; when a level inside the window is removed, it needs the
delete *and* the insert of the level that moved up from beyond the window (a level it has never
seen). :meth:`TopNWindow.diff` produces exactly those changes by comparing the window last
published with the book's current best N, so applying them (quantity ``"0"`` deletes) to the
consumer's copy yields the true top N after every update.

The comparison is O(N) per side, independent of the book's size.
"""

from __future__ import annotations

from tickpath.book.orderbook import BookSide, Level, OrderBook
from tickpath.errors import ConfigError

ZERO = "0"


class TopNWindow:
    """The last published best ``n`` levels per side (rank -> level)."""

    __slots__ = ("_asks", "_bids", "n")

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ConfigError(f"top-N depth must be at least 1, got {n}")
        self.n = n
        self._bids: dict[float, Level] = {}
        self._asks: dict[float, Level] = {}

    def reset(self, book: OrderBook) -> tuple[list[Level], list[Level]]:
        """Take the book's current window as published; returns it (best first) for a snapshot."""
        self._bids = self._window(book.bids)
        self._asks = self._window(book.asks)
        return list(self._bids.values()), list(self._asks.values())

    def clear(self) -> None:
        self._bids = {}
        self._asks = {}

    def _window(self, side: BookSide) -> dict[float, Level]:
        levels = side.levels
        return {r: levels[r] for r in side.top_ranks(self.n)}

    def diff(self, book: OrderBook) -> tuple[list[Level], list[Level]]:
        """Changes since the last call (or reset) that turn the old window into the current one."""
        bids, self._bids = self._diff_side(self._bids, book.bids)
        asks, self._asks = self._diff_side(self._asks, book.asks)
        return bids, asks

    def _diff_side(self, old: dict[float, Level], side: BookSide) -> tuple[list[Level], dict[float, Level]]:
        levels = side.levels
        ranks = side.top_ranks(self.n)
        # Fast path: same prices with identical level objects means nothing visible changed.
        if len(ranks) == len(old):
            for r in ranks:
                if old.get(r) is not levels[r]:
                    break
            else:
                return [], old
        new = {r: levels[r] for r in ranks}
        changes: list[Level] = []
        for r, lvl in old.items():
            if r not in new:
                changes.append((lvl[0], ZERO))
        for r, lvl in new.items():
            prev = old.get(r)
            if prev is None or prev[1] != lvl[1] or prev[0] != lvl[0]:
                changes.append(lvl)
        return changes, new
