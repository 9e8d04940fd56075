"""``--universe binance``: the whole exchange's order of magnitude, cheap enough for a laptop.

About 2,000 spot, 400 USD-M and 50 COIN-M symbols (:data:`UNIVERSES`), named like Binance's (a few
dozen well-known bases, then made-up ones, times the venue's quote assets; COIN-M ``XXXUSD_PERP``
and quarterly ``XXXUSD_YYMMDD``), a few per cent of spot in ``BREAK``. Traffic is heavy-tailed:
symbol ``r`` (by rank) gets a share proportional to ``1 / (r + 1) ** ZIPF_S``, so the top 1 % of
symbols carry about a third of the updates and the tail updates every few seconds, as on the real
venue; ``rate`` is the *mean* per symbol. Every ``BURST_EVERY_S`` (seeded phase) the whole venue
runs at ``BURST_FACTOR`` times its rate for ``BURST_S`` seconds. Everything is deterministic from
the seed (which symbol each update goes to is drawn from one seeded generator).

What keeps 2,000 books cheap: symbols share their random tables (one pair per grid and depth, not
80 kB each), books are small outside the top (``book_levels`` for the top 20, 200 levels for the
next 200, 50 below), history is 20,000 updates per symbol, and depth windows are closed only for
symbols that changed since their last event (:class:`UniverseHub`), not 2,000 x 4 per tick.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import accumulate
from typing import TYPE_CHECKING

from tickpath.clock import Clock
from tickpath.errors import ConfigError
from tickpath.logs import log_event
from tickpath.sim.hub import Hub, StreamFaultState, _Window
from tickpath.sim.market import SymbolMarket, spec_for
from tickpath.venues.binance.endpoints import Venue
from tickpath.venues.binance.streams import DEPTH_SPEEDS_MS

if TYPE_CHECKING:
    from tickpath.sim.config import ListingEvent, SimConfig

log = logging.getLogger(__name__)

UNIVERSES: dict[str, dict[str, int]] = {"binance": {"spot": 2000, "futures": 400, "coinm": 50}}
ZIPF_S = 1.1
BURST_FACTOR = 5.0
BURST_S = 10.0
BURST_EVERY_S = 120.0
TRADING, BREAK = "TRADING", "BREAK"
_MAJOR_WORDS = (
    "BTC ETH BNB SOL XRP DOGE ADA TRX AVAX LINK DOT TON SHIB LTC BCH NEAR UNI APT ICP FIL ARB OP ATOM ETC XLM "
    "INJ SUI PEPE AAVE RNDR IMX HBAR GRT MKR ALGO SEI TIA FET STX EGLD SAND MANA AXS FTM THETA RUNE LDO CRV DYDX"
)
_MAJORS = tuple(_MAJOR_WORDS.split())
# Spot quote assets with the share of bases quoted in each (after USDT, which every base has).
_SPOT_QUOTES = (("USDC", 0.35), ("FDUSD", 0.2), ("BTC", 0.3), ("ETH", 0.12), ("BNB", 0.1), ("TRY", 0.25), ("EUR", 0.06))
_CONS, _VOWELS = "BCDFGHJKLMNPRSTVWXZ", "AEIOU"
_MAX_BATCH = 20_000  # updates generated between two flushes


@dataclass(frozen=True)
class UniverseSymbol:
    symbol: str
    base: str
    quote: str
    status: str
    weight: float  # share of the venue's traffic (sums to 1 over TRADING symbols at start)


def _bases(rng: random.Random, n: int) -> list[str]:
    """``n`` base assets: the well-known ones first, then pronounceable made-up ones (unique)."""
    out = list(_MAJORS[:n])
    seen = set(out)
    while len(out) < n:
        k = rng.choice((2, 2, 3))
        name = "".join(rng.choice(_CONS) + rng.choice(_VOWELS) for _ in range(k))[: rng.choice((3, 4, 4, 5, 6))]
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _quarter_ends(today: date, n: int) -> list[str]:
    """The next ``n`` quarterly delivery dates (last Friday of Mar/Jun/Sep/Dec) as YYMMDD."""
    out: list[str] = []
    year, month = today.year, ((today.month - 1) // 3 + 1) * 3
    while len(out) < n:
        last = date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1
        friday = date.fromordinal(last - (date.fromordinal(last).weekday() - 4) % 7)
        if friday > today:
            out.append(friday.strftime("%y%m%d"))
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return out


def universe_symbols(
    name: str, venue: str, seed: int, *, size: int | None = None, today: date | None = None
) -> list[UniverseSymbol]:
    """The symbols of ``venue`` in universe ``name``, in traffic rank order (deterministic)."""
    if name not in UNIVERSES:
        raise ConfigError(f"unknown universe {name!r}: use {', '.join(UNIVERSES)}")
    n = size if size is not None else UNIVERSES[name].get(venue, 0)
    if n < 1:
        raise ConfigError(f"universe {name!r} has no symbols for {venue}")
    rng = random.Random(f"{seed}/universe/{venue}")
    rows: list[tuple[str, str, str]] = []
    if venue == "coinm":
        dates = _quarter_ends(today or datetime.now(UTC).date(), 2)
        for base in _bases(rng, n):
            rows.append((f"{base}USD_PERP", base, "USD"))
            if base in _MAJORS[:8]:
                rows.extend((f"{base}USD_{d}", base, "USD") for d in dates)
    elif venue == "futures":
        for i, base in enumerate(_bases(rng, n)):
            rows.append((f"{base}USDT", base, "USDT"))
            if i < n // 20:
                rows.append((f"{base}USDC", base, "USDC"))
    else:
        for base in _bases(rng, n):
            rows.append((f"{base}USDT", base, "USDT"))
            rows.extend(
                (f"{base}{q}", base, q) for q, p in _SPOT_QUOTES if q != base and (base in _MAJORS or rng.random() < p)
            )
    rows = rows[:n]
    shares = [1.0 / (r + 1) ** ZIPF_S for r in range(len(rows))]
    total = sum(shares)
    out = []
    for (sym, base, quote), share in zip(rows, shares, strict=True):
        halted = venue != "coinm" and base not in _MAJORS and rng.random() < (0.03 if venue == "spot" else 0.01)
        out.append(UniverseSymbol(sym, base, quote, BREAK if halted else TRADING, share / total))
    return out


def burst_factor(t_s: float, phase_s: float) -> float:
    """The rate multiplier ``t_s`` seconds into the run: BURST_FACTOR for BURST_S every BURST_EVERY_S."""
    return BURST_FACTOR if (t_s - phase_s) % BURST_EVERY_S < BURST_S and t_s >= phase_s else 1.0


class UniverseHub(Hub):
    """A :class:`Hub` whose updates go to symbols by weight, with bursts and listing changes."""

    def __init__(
        self,
        venue: Venue,
        symbols: Sequence[UniverseSymbol],
        clock: Clock,
        *,
        seed: int,
        rate: float,
        levels: int,
        clock_offset_ms: float,
        listings: Sequence[ListingEvent] = (),
        history: int = 20_000,
    ) -> None:
        self.seed = seed
        self._history = history  # update ids kept per symbol (a pre-render keeps all of them)
        self.info = {u.symbol: u for u in symbols}
        self.statuses = {u.symbol: u.status for u in symbols}
        self._levels = levels
        self._tables: dict[tuple[int, int, int], tuple[tuple[int, ...], tuple[int, ...]]] = {}
        markets = {u.symbol: self._market(venue, u.symbol, rank) for rank, u in enumerate(symbols)}
        super().__init__(venue, markets, clock, rate=rate, clock_offset_ms=clock_offset_ms)
        self.mean_rate = rate
        self._rng = random.Random(f"{seed}/universe/{venue}/steps")
        self.phase_s = random.Random(f"{seed}/bursts/{venue}").uniform(10.0, BURST_EVERY_S)
        self._pending = sorted((e for e in listings if e.venue == venue), key=lambda e: e.at_s)
        self._active: set[str] = set()
        self._reweigh()

    def _market(self, venue: Venue, symbol: str, rank: int) -> SymbolMarket:
        spec = spec_for(venue, symbol)
        levels = self._levels if rank < 20 else 200 if rank < 220 else 50
        key = (spec.typical_lots, levels, spec.price_decimals)
        tables = self._tables.get(key)
        m = SymbolMarket(venue, spec, self.seed, levels=levels, history=self._history, tables=tables)
        if tables is None:
            self._tables[key] = (m._lot_table, m._dist_table)
        return m

    def _reweigh(self) -> None:
        self._live = [s for s in self.markets if self.statuses.get(s) == TRADING]
        weights = [self.info[s].weight for s in self._live]
        self._cum = list(accumulate(weights))
        # rate is the mean per trading symbol: the venue's total follows the listing
        self.total_rate = self.mean_rate * len(self._live)

    # ---- listings -----------------------------------------------------------------------------
    def list_symbol(self, symbol: str) -> None:
        """List ``symbol`` now (TRADING, a mid-table share of the traffic)."""
        if symbol in self.markets:
            raise ConfigError(f"{symbol} is already listed on {self.venue}")
        m = self._market(self.venue, symbol, len(self.markets))
        weights = sorted(u.weight for u in self.info.values())
        self.info[symbol] = UniverseSymbol(symbol, symbol, "", TRADING, weights[len(weights) // 2])
        self.statuses[symbol] = TRADING
        self.markets[symbol] = m
        self.windows[symbol] = {s: _Window(s, prev_u=m.last_uid) for s in self.speeds}
        self.last_t_ms[symbol] = 0
        lo = symbol.lower()
        realtime = 0 in DEPTH_SPEEDS_MS[self.venue]
        self._names[symbol] = (
            f"{lo}@depth@0ms" if realtime else "",
            f"{lo}@trade",
            f"{lo}@aggTrade",
            f"{lo}@bookTicker",
        )
        self.faults[symbol] = StreamFaultState()
        self._agg_ids[symbol] = m.next_trade_id * 3
        self._reweigh()
        log_event(log, logging.INFO, "sim_symbol_listed", venue=self.venue, symbol=symbol)

    def delist(self, symbol: str) -> None:
        """Remove ``symbol``: gone from exchangeInfo and depth (-1121), its streams silent."""
        self._known(symbol)
        del self.markets[symbol], self.windows[symbol], self.statuses[symbol], self.info[symbol]
        self._active.discard(symbol)
        self._reweigh()
        log_event(log, logging.INFO, "sim_symbol_delisted", venue=self.venue, symbol=symbol)

    def set_status(self, symbol: str, status: str) -> None:
        """``BREAK`` halts updates (listed, snapshots still served); ``TRADING`` resumes them."""
        self._known(symbol)
        self.statuses[symbol] = status
        self._reweigh()

    def _known(self, symbol: str) -> None:
        if symbol not in self.markets:
            raise ConfigError(f"{symbol} is not listed on {self.venue}")

    def apply_listings(self, t_s: float) -> None:
        """Apply the scheduled listing changes due ``t_s`` seconds into the run."""
        while self._pending and self._pending[0].at_s <= t_s:
            ev = self._pending.pop(0)
            try:
                if ev.action == "list":
                    self.list_symbol(ev.symbol)
                elif ev.action == "delist":
                    self.delist(ev.symbol)
                else:
                    self.set_status(ev.symbol, BREAK if ev.action == "halt" else TRADING)
            except ConfigError as exc:
                log_event(log, logging.WARNING, "sim_listing_skipped", venue=self.venue, error=str(exc))

    # ---- generation -------------------------------------------------------------------------------
    def step(self, symbol: str, now_ms: int | None = None) -> int:
        uid = super().step(symbol, now_ms)
        if symbol not in self._active:  # its windows were idle: they start at this update
            self._active.add(symbol)
            t = self.last_t_ms[symbol]
            for w in self.windows[symbol].values():
                w.boundary = (t // w.speed_ms + 1) * w.speed_ms
        return uid

    def close_windows(self, now_ms: int) -> None:
        """Like :meth:`Hub.close_windows`, for the symbols that changed since their last event only."""
        for symbol in list(self._active):
            m = self.markets[symbol]
            last = m.last_uid
            wins = self.windows[symbol]
            for speed, w in wins.items():
                if now_ms < w.boundary:
                    continue
                w.boundary = (now_ms // speed + 1) * speed
                if last != w.prev_u:
                    self._emit_window(symbol, m, w, now_ms, last)
            m.pinned_uid = min(w.prev_u for w in wins.values())
            if m.pinned_uid == last:  # every window caught up: idle until its next update
                self._active.discard(symbol)

    async def run(self) -> None:
        """Generate the venue's traffic (weights, bursts, listing changes) until cancelled."""
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        credit = 0.0
        tick_s = min(self.speeds) / 4000.0
        try:
            while True:
                now = loop.time()
                self.apply_listings(now - start)
                total = self.total_rate * burst_factor(now - start, self.phase_s)
                credit = min(credit + (now - last) * total, total * 0.25 + 1)  # starved: skip, do not burst
                last = now
                n = min(int(credit), _MAX_BATCH)
                now_ms = self.exchange_ms()
                if n > 0 and self._live:
                    credit -= n
                    for sym in self._rng.choices(self._live, cum_weights=self._cum, k=n):
                        self.step(sym, now_ms)
                self.close_windows(now_ms)
                if self._faulty:
                    self.release_stalls()
                    self.refresh_fault_flag()
                self.flush()
                await asyncio.sleep(tick_s)
        except asyncio.CancelledError:
            log_event(
                log, logging.INFO, "sim_hub_stopped", venue=self.venue, events=self.events, frames=self.frames_sent
            )
            raise


def universe_hub(venue: Venue, cfg: SimConfig, clock: Clock, *, history: int = 20_000) -> UniverseHub:
    """The hub of ``venue`` for ``cfg.universe`` (``cfg.symbols`` are not used)."""
    assert cfg.universe is not None
    symbols = universe_symbols(cfg.universe, venue, cfg.seed, size=cfg.universe_size)
    return UniverseHub(
        venue,
        symbols,
        clock,
        seed=cfg.seed,
        rate=cfg.rate,
        levels=cfg.book_levels,
        clock_offset_ms=cfg.clock_offset_ms,
        listings=cfg.listings,
        history=history,
    )


def parse_listing(spec: str, venues: Sequence[str]) -> ListingEvent:
    """``AT:ACTION:SYMBOL[@VENUE]`` (``30:list:NEWUSDT``, ``90s:delist:ETHBTC@spot``); the venue
    defaults to the first simulated one."""
    from tickpath.sim.config import ListingEvent

    parts = spec.strip().split(":")
    if len(parts) != 3:
        raise ConfigError(f"bad listing change {spec!r}: expected AT:ACTION:SYMBOL[@VENUE], e.g. 30:list:NEWUSDT")
    at, action, target = parts
    symbol, _, venue = target.partition("@")
    try:
        at_s = float(at.strip().removesuffix("s"))
    except ValueError:
        raise ConfigError(f"bad listing time {at!r} in {spec!r}: seconds, e.g. 30 or 30s") from None
    return ListingEvent(at_s, venue.strip().lower() or venues[0], action.strip().lower(), symbol.strip().upper())
