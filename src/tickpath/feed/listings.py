"""Following the venue's listings while a feed runs: ``--symbols all`` and filters stay true.

At start :func:`resolve_selection` reads exchangeInfo once and turns a :class:`Selection` into the
symbols to open. While running, :class:`ListingWatcher` asks exchangeInfo again every
``interval_s`` (its weight granted by the snapshot fetcher's :class:`WeightPacer`, so listing polls
and snapshots share one budget) and reports what changed: a new TRADING symbol the selection
chooses is *added* (the feed subscribes and syncs it), a symbol that disappeared or left TRADING is
*removed* (the feed closes its book with an explicit reset and a log line). A failed poll is
counted and logged; the feed keeps its symbols and asks again next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, TickpathError
from tickpath.feed.snapshots import WeightPacer
from tickpath.feed.universe import Selection
from tickpath.logs import log_event
from tickpath.venues.binance.rest import TRADING, ExchangeInfoApi, SymbolInfo

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 60.0  # spot's full exchangeInfo weighs 20 of 6000 a minute: 0.3 % of the budget


@dataclass(frozen=True)
class ListingChange:
    """What one exchangeInfo poll changed for the feed."""

    added: tuple[str, ...] = ()
    removed: tuple[tuple[str, str], ...] = ()  # (symbol, why: "delisted" or its new status)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def diff_listing(current: Mapping[str, str], selection: Selection, listing: Mapping[str, SymbolInfo]) -> ListingChange:
    """Compare the feed's symbols (symbol -> status when last seen) with a fresh listing.

    Added: chosen by ``selection``, TRADING now, not followed yet. Removed: no longer listed, or
    TRADING when last seen and not now (an explicit symbol that was already in BREAK at start stays).
    """
    added = tuple(
        s for s in selection.select(listing, strict=False) if s not in current and listing[s].status == TRADING
    )
    removed: list[tuple[str, str]] = []
    for sym, was in current.items():
        info = listing.get(sym)
        if info is None:
            removed.append((sym, "delisted"))
        elif was == TRADING and info.status != TRADING:
            removed.append((sym, info.status.lower() or "not trading"))
    return ListingChange(added, tuple(removed))


async def resolve_selection(api: ExchangeInfoApi, selection: Selection) -> tuple[list[str], dict[str, str]]:
    """The symbols a selection chooses now and every listed symbol's status (one exchangeInfo request).

    An explicit symbol the venue does not list is an :class:`UnknownSymbolError` naming the nearest
    listed ones; a selection that chooses nothing is a :class:`ConfigError`."""
    listing = await api.listing()
    symbols = selection.select(listing)
    if not symbols:
        raise ConfigError(f"--symbols chooses no TRADING symbol among the {len(listing)} {api.client.venue} lists")
    for sym in symbols:
        if listing[sym].status != TRADING:
            log_event(log, logging.WARNING, "symbol_not_trading", symbol=sym, status=listing[sym].status)
    return symbols, {s: i.status for s, i in listing.items()}


@dataclass
class ListingStats:
    polls: int = 0
    errors: int = 0
    added: int = 0
    removed: int = 0
    last_error: str = ""
    added_symbols: list[str] = field(default_factory=list)
    removed_symbols: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "polls": self.polls,
            "errors": self.errors,
            "added": self.added,
            "removed": self.removed,
            "added_symbols": list(self.added_symbols[-100:]),
            "removed_symbols": list(self.removed_symbols[-100:]),
        }


class ListingWatcher:
    """Polls exchangeInfo and calls ``on_change`` with each non-empty :class:`ListingChange`."""

    def __init__(
        self,
        api: ExchangeInfoApi,
        selection: Selection,
        current: Mapping[str, str],
        on_change: Callable[[ListingChange], None],
        *,
        interval_s: float = DEFAULT_POLL_S,
        pacer: WeightPacer | None = None,
        clock: Clock = DEFAULT_CLOCK,
    ) -> None:
        if not interval_s > 0:
            raise ConfigError(f"listing poll interval must be positive, got {interval_s}")
        self.api = api
        self.selection = selection
        self.current: dict[str, str] = dict(current)
        self.on_change = on_change
        self.interval_ns = int(interval_s * 1e9)
        self.pacer = pacer
        self.clock = clock
        self.stats = ListingStats()

    async def poll_once(self) -> ListingChange | None:
        """One exchangeInfo request; the change it found (applied to ``current``), None on failure."""
        if self.pacer is not None:
            await self.pacer.acquire(self.api.weight)
        self.stats.polls += 1
        try:
            listing = await self.api.listing()
        except TickpathError as exc:
            self.stats.errors += 1
            self.stats.last_error = str(exc)
            log_event(log, logging.WARNING, "listing_poll_failed", error=str(exc))
            return None
        change = diff_listing(self.current, self.selection, listing)
        for sym, why in change.removed:
            self.current.pop(sym, None)
            self.stats.removed_symbols.append(sym)
            log_event(log, logging.WARNING, "symbol_closed", symbol=sym, reason=why)
        for sym in change.added:
            self.current[sym] = listing[sym].status
            self.stats.added_symbols.append(sym)
            log_event(log, logging.INFO, "symbol_listed", symbol=sym)
        for sym in self.current:
            if sym in listing:
                self.current[sym] = listing[sym].status
        self.stats.added += len(change.added)
        self.stats.removed += len(change.removed)
        if change:
            self.on_change(change)
        return change

    async def run(self) -> None:
        """Poll every ``interval_s`` until cancelled (the first poll one interval after start)."""
        while True:
            await self.clock.sleep_until_ns(self.clock.monotonic_ns() + self.interval_ns)
            await self.poll_once()
