"""The publisher of one venue: drives the markets, builds each event once, fans it out.

Every event is serialised once per stream name (orjson) and framed once per delivery mode (raw or
combined envelope); the same bytes go to every subscriber. Depth windows (100/250/500/1000 ms) are
aligned to the exchange clock and aggregate every change of the window (U..u, latest quantity per
level), so ``pu`` of a futures event is the ``u`` of the previous event of the same stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from tickpath.clock import Clock
from tickpath.errors import UnknownSymbolError
from tickpath.logs import log_event
from tickpath.sim import payloads
from tickpath.sim.channels import ChannelSim
from tickpath.sim.market import ASK, BID, SymbolMarket, Trade
from tickpath.venues.binance.endpoints import Venue
from tickpath.venues.binance.streams import DEPTH_DEFAULT_MS, DEPTH_SPEEDS_MS, StreamName, parse_stream

log = logging.getLogger(__name__)
_MAX_BATCH = 2000  # updates per symbol generated between two flushes


class Subscriber(Protocol):
    combined: bool

    def push(self, frame: bytes) -> None: ...

    def flush(self) -> None: ...


@dataclass
class _Window:
    """One depth stream speed: the update ids since its last event are the market's history after
    ``prev_u``, so nothing is accumulated per update (the hot path stays one dict write)."""

    speed_ms: int
    prev_u: int  # u of the previous event (futures pu); the next event starts at prev_u + 1
    boundary: int = 0  # exchange ms of the current window's end


@dataclass
class StreamFaultState:
    """Pending stream faults of one symbol (see :mod:`tickpath.sim.faults`)."""

    stall_until: float = 0.0  # loop time; frames are held until then
    held: list[tuple[str, bytes]] = field(default_factory=list)
    per_stream: dict[str, list[int]] = field(default_factory=dict)  # name -> [drop, dup, reorder]
    reorder_slot: dict[str, bytes] = field(default_factory=dict)
    muted_until: dict[str, float] = field(default_factory=dict)  # name -> loop time; frames dropped
    frozen_until: float = 0.0  # loop time; the bookTicker repeats frozen_top until then
    frozen_top: tuple[str, str, str, str] | None = None


class Hub:
    """Markets of one venue plus their subscribers."""

    def __init__(
        self, venue: Venue, markets: dict[str, SymbolMarket], clock: Clock, *, rate: float, clock_offset_ms: float
    ) -> None:
        self.venue = venue
        self.markets = markets
        self.clock = clock
        self.rate = rate
        self.offset_ns = int(clock_offset_ms * 1_000_000)
        self.subs: dict[str, set[Subscriber]] = {}
        self.dirty: set[Subscriber] = set()
        self.speeds = [s for s in DEPTH_SPEEDS_MS[venue] if s > 0]
        self._realtime = 0 in DEPTH_SPEEDS_MS[venue]  # USD-M's @depth@0ms: one event per update id
        self.windows: dict[str, dict[int, _Window]] = {
            sym: {s: _Window(s, prev_u=m.last_uid) for s in self.speeds} for sym, m in markets.items()
        }
        self.last_t_ms: dict[str, int] = {sym: 0 for sym in markets}
        lower = {sym: sym.lower() for sym in markets}
        # per symbol: (@depth@0ms, @trade, @aggTrade, @bookTicker) stream names, built once
        self._names: dict[str, tuple[str, str, str, str]] = {
            sym: (f"{lo}@depth@0ms" if self._realtime else "", f"{lo}@trade", f"{lo}@aggTrade", f"{lo}@bookTicker")
            for sym, lo in lower.items()
        }
        self.faults: dict[str, StreamFaultState] = {sym: StreamFaultState() for sym in markets}
        self._faulty = False
        self._last_ticker: dict[str, tuple[int, int, int, int]] = {}
        self._agg_ids: dict[str, int] = {sym: m.next_trade_id * 3 for sym, m in markets.items()}
        self.frames_sent = 0
        self.events = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.channels = ChannelSim(self)  # klines, 24 h tickers, mark price, liquidations, arrays

    # ---- time -------------------------------------------------------------------------------------
    def exchange_ms(self) -> int:
        """Exchange time now: the true wall clock plus the configured offset, in ms."""
        return (self.clock.wall_ns() + self.offset_ns) // 1_000_000

    # ---- subscriptions ----------------------------------------------------------------------------
    def validate(self, name: str) -> StreamName:
        """Parse ``name`` and check that this venue simulates it; errors are UnknownSymbolError."""
        s = parse_stream(name, self.venue)
        if s.kind != "allMarket" and s.symbol_upper not in self.markets:
            raise UnknownSymbolError(f"invalid stream name {name!r}: symbol {s.symbol_upper} is not simulated")
        return s

    def subscribe(self, sub: Subscriber, name: str) -> None:
        self.subs.setdefault(name, set()).add(sub)

    def unsubscribe(self, sub: Subscriber, name: str) -> None:
        subs = self.subs.get(name)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subs[name]

    def drop_subscriber(self, sub: Subscriber) -> None:
        for name in [n for n, s in self.subs.items() if sub in s]:
            self.unsubscribe(sub, name)
        self.dirty.discard(sub)

    # ---- delivery ---------------------------------------------------------------------------------
    def _deliver(self, name: str, raw: bytes) -> None:
        subs = self.subs.get(name)
        if not subs:
            return
        raw_frame: bytes | None = None
        comb_frame: bytes | None = None
        for sub in subs:
            if sub.combined:
                if comb_frame is None:
                    comb_frame = payloads.ws_frame(payloads.envelope(name.encode(), raw))
                sub.push(comb_frame)
            else:
                if raw_frame is None:
                    raw_frame = payloads.ws_frame(raw)
                sub.push(raw_frame)
            self.dirty.add(sub)
        self.frames_sent += len(subs)

    def _publish(self, symbol: str, name: str, raw: bytes, *, depth: bool) -> None:
        if self._faulty:
            self._publish_faulty(symbol, name, raw, depth)
        else:
            self._deliver(name, raw)

    def _publish_faulty(self, symbol: str, name: str, raw: bytes, depth: bool) -> None:
        st = self.faults[symbol]
        loop_now = asyncio.get_running_loop().time()
        if st.muted_until.get(name, 0.0) > loop_now:
            return  # a dead stream: never sent, not held
        if st.stall_until:
            if st.stall_until > loop_now:
                st.held.append((name, raw))
                return
            self._release(st)  # held frames go before anything newer
        counters = st.per_stream.get(name) if depth and name in self.subs else None
        if counters is not None:
            if counters[0] > 0:
                counters[0] -= 1
                return
            if counters[2] > 0 and name not in st.reorder_slot:
                counters[2] -= 1
                st.reorder_slot[name] = raw
                return
            self._deliver(name, raw)
            if counters[1] > 0:
                counters[1] -= 1
                self._deliver(name, raw)
            held = st.reorder_slot.pop(name, None)
            if held is not None:
                self._deliver(name, held)
            return
        self._deliver(name, raw)

    def _frozen(self, symbol: str, values: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
        """The ticker values to send: those of the freeze's start while the symbol is frozen."""
        st = self.faults[symbol]
        if st.frozen_until <= asyncio.get_running_loop().time():
            st.frozen_top = None
            return values
        if st.frozen_top is None:
            st.frozen_top = values
        return st.frozen_top

    def release_stalls(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        for st in self.faults.values():
            if st.stall_until and st.stall_until <= loop_now:
                self._release(st)
            for name in [n for n, until in st.muted_until.items() if until <= loop_now]:
                del st.muted_until[name]
            if st.frozen_until and st.frozen_until <= loop_now:
                st.frozen_until, st.frozen_top = 0.0, None

    def _release(self, st: StreamFaultState) -> None:
        st.stall_until = 0.0
        held, st.held = st.held, []
        for name, raw in held:
            self._deliver(name, raw)

    def refresh_fault_flag(self) -> None:
        self._faulty = any(
            st.stall_until > 0
            or st.held
            or any(any(c) for c in st.per_stream.values())
            or st.reorder_slot
            or st.muted_until
            or st.frozen_until > 0
            for st in self.faults.values()
        )

    def flush(self) -> None:
        if self.dirty:
            dirty, self.dirty = self.dirty, set()
            for sub in dirty:
                sub.flush()

    # ---- the market -------------------------------------------------------------------------------
    def step(self, symbol: str, now_ms: int | None = None) -> int:
        """Advance ``symbol`` by one update id and publish what it produced; returns the id."""
        m = self.markets[symbol]
        t_ms = self.exchange_ms() if now_ms is None else now_ms
        uid, (side, tick, lots), trade = m.step()
        self.last_t_ms[symbol] = t_ms
        names = self._names[symbol]
        subs = self.subs
        if names[0] in subs:  # futures @depth@0ms: one event per update id
            raw = payloads.depth_update_one(symbol, t_ms, uid, m.price(tick), m.qty(lots), side == BID)
            if self._faulty:
                self._publish_faulty(symbol, names[0], raw, True)
            else:
                self._deliver(names[0], raw)
        if trade is not None:
            self._publish_trade(symbol, names, trade, t_ms)
        if names[3] in subs or "!bookTicker" in subs:
            bb, ba = m.best
            bids, asks = m.books
            top = (bb, bids.get(bb, 0), ba, asks.get(ba, 0))
            if self._last_ticker.get(symbol) != top:
                self._last_ticker[symbol] = top
                values = (m.price(bb), m.qty(top[1]), m.price(ba), m.qty(top[3]))
                if self._faulty:
                    values = self._frozen(symbol, values)
                raw = payloads.book_ticker(self.venue, symbol, uid, *values, t_ms, t_ms)
                self._publish(symbol, names[3], raw, depth=False)
                self._publish(symbol, "!bookTicker", raw, depth=False)  # futures' all-market stream
        self.events += 1
        return uid

    def _publish_trade(self, symbol: str, names: tuple[str, str, str, str], trade: Trade, t_ms: int) -> None:
        m = self.markets[symbol]
        self.channels.on_trade(
            symbol, m.price(trade.tick), m.qty(trade.lots), trade.trade_id, not trade.buyer_is_maker, t_ms
        )
        if names[1] in self.subs:
            self._publish(
                symbol,
                names[1],
                payloads.trade(
                    self.venue,
                    symbol,
                    trade.trade_id,
                    m.price(trade.tick),
                    m.qty(trade.lots),
                    t_ms,
                    t_ms,
                    trade.buyer_is_maker,
                ),
                depth=False,
            )
        self._agg_ids[symbol] += 1
        if names[2] in self.subs:
            self._publish(
                symbol,
                names[2],
                payloads.agg_trade(
                    self.venue,
                    symbol,
                    self._agg_ids[symbol],
                    m.price(trade.tick),
                    m.qty(trade.lots),
                    trade.trade_id,
                    t_ms,
                    t_ms,
                    trade.buyer_is_maker,
                ),
                depth=False,
            )

    def close_windows(self, now_ms: int) -> None:
        """Emit the aggregated depth event of every window that ended by ``now_ms``."""
        for symbol, wins in self.windows.items():
            m = self.markets[symbol]
            last = m.last_uid
            for speed, w in wins.items():
                if w.boundary == 0:
                    w.boundary = (now_ms // speed + 1) * speed
                    continue
                if now_ms < w.boundary:
                    continue
                w.boundary = (now_ms // speed + 1) * speed
                if last == w.prev_u:
                    continue  # nothing changed: Binance sends no empty diff
                self._emit_window(symbol, m, w, now_ms, last)
            m.pinned_uid = min(w.prev_u for w in wins.values())

    def _emit_window(self, symbol: str, m: SymbolMarket, w: _Window, now_ms: int, last: int) -> None:
        """One window's aggregated diff (the last size of each changed level), to its subscribers."""
        names = self._depth_names(symbol.lower(), w.speed_ms)
        if any(n in self.subs for n in names):
            latest: dict[tuple[int, int], int] = {}
            for side, tick, lots in m.changes(w.prev_u, last):
                latest[(side, tick)] = lots
            items = sorted(latest.items())
            bids = [[m.price(t), m.qty(q)] for (s, t), q in items if s == BID]
            asks = [[m.price(t), m.qty(q)] for (s, t), q in items if s == ASK]
            raw = payloads.depth_update(
                self.venue, symbol, now_ms, self.last_t_ms[symbol], w.prev_u + 1, last, w.prev_u, bids, asks
            )
            for n in names:
                self._publish(symbol, n, raw, depth=True)
        w.prev_u = last

    def depth_names(self, symbol: str) -> list[str]:
        """Every depth stream name of ``symbol`` on this venue (both spellings of the default)."""
        lower = symbol.lower()
        names = [n for s in self.speeds for n in self._depth_names(lower, s)]
        return [*names, f"{lower}@depth@0ms"] if self._realtime else names

    def _depth_names(self, lower: str, speed: int) -> tuple[str, ...]:
        default = DEPTH_DEFAULT_MS[self.venue]
        if speed == default:
            return (f"{lower}@depth", f"{lower}@depth@{speed}ms")
        return (f"{lower}@depth@{speed}ms",)

    async def run(self) -> None:
        """Generate ``rate`` updates per second per symbol until cancelled."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        symbols = list(self.markets)
        min_window = min(self.speeds) / 1000.0
        try:
            while True:
                now = loop.time()
                if self.rate > 0:
                    # + 1e-6: woken at next_step exactly (virtual time), the product can fall a hair
                    # short of done + 1 and the loop would spin on sleep(0) with time standing still
                    due = int((now - start) * self.rate + 1e-6) - done
                    if due > self.rate * 0.25 + 1:  # the loop was starved: skip ahead, do not burst
                        done += due - int(self.rate * 0.25 + 1)
                        due = int(self.rate * 0.25 + 1)
                    due = min(due, _MAX_BATCH)  # keep frames flowing while generating
                    if due > 0:
                        now_ms = self.exchange_ms()
                        for _ in range(due):
                            for sym in symbols:
                                self.step(sym, now_ms)
                        done += due
                now_ms = self.exchange_ms()
                self.close_windows(now_ms)
                self.channels.tick(now_ms)
                if self._faulty:
                    self.release_stalls()
                    self.refresh_fault_flag()
                self.flush()
                next_step = start + (done + 1) / self.rate if self.rate > 0 else now + min_window
                wait = min(next_step - loop.time(), min_window / 4)
                # behind schedule: yield once to the loop (I/O, clients) and carry on at full speed
                await asyncio.sleep(wait if wait > 0.0005 else 0 if wait <= 0 else 0.0005)
        except asyncio.CancelledError:
            log_event(
                log, logging.INFO, "sim_hub_stopped", venue=self.venue, events=self.events, frames=self.frames_sent
            )
            raise
