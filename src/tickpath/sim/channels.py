"""The simulated low-rate channels: candles, 24 h tickers, mark price, liquidations, all-market arrays.

Built from the hub's own market (its trades and best prices), in Binance's payload shapes
(``venues/binance/schemas.py`` cites the docs), once a second of exchange time for the streams that
have a subscriber; nothing is computed for a stream nobody reads. Candles follow every trade and close
on their interval's boundary (an interval with no trade closes flat, so closed candles are contiguous);
the 24 h statistics run from the simulator's start. Liquidations come from a seeded generator per symbol.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from tickpath.venues.binance.channels import KLINE_INTERVALS, is_derivatives

if TYPE_CHECKING:
    from tickpath.sim.hub import Hub

_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_WEEK_OFFSET = 4 * 86_400_000  # Binance's weeks start on Monday; 1970-01-01 was a Thursday
FUNDING_EVERY_MS = 8 * 3_600_000
LIQUIDATION_P = 0.05  # per symbol and second
_MAX_FILL = 1000  # flat candles filled in one go after a stall (beyond: the gap is real)


def interval_bounds(interval: str, t_ms: int) -> tuple[int, int]:
    """Open and close time (inclusive, ms) of the ``interval`` candle containing ``t_ms``."""
    if interval == "1M":
        d = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
        first = datetime(d.year, d.month, 1, tzinfo=UTC)
        after = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
        return int(first.timestamp() * 1000), int(after.timestamp() * 1000) - 1
    n, unit = int(interval[:-1]), interval[-1]
    span = n * _MS[unit]
    shift = _WEEK_OFFSET if unit == "w" else 0
    start = (t_ms - shift) // span * span + shift
    return start, start + span - 1


@dataclass
class _Candle:
    interval: str
    open_ms: int
    close_ms: int
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    v: Decimal = Decimal(0)
    q: Decimal = Decimal(0)
    bv: Decimal = Decimal(0)  # taker buy volume
    bq: Decimal = Decimal(0)
    n: int = 0
    first: int = -1
    last: int = -1

    def add(self, price: Decimal, qty: Decimal, trade_id: int, taker_buy: bool) -> None:
        self.h, self.low, self.c = max(self.h, price), min(self.low, price), price
        self.v += qty
        self.q += price * qty
        if taker_buy:
            self.bv += qty
            self.bq += price * qty
        self.n += 1
        self.first = trade_id if self.first < 0 else self.first
        self.last = trade_id

    def following(self) -> _Candle:
        start, end = interval_bounds(self.interval, self.close_ms + 1)
        return _Candle(self.interval, start, end, self.c, self.c, self.c, self.c)


@dataclass
class _Day:
    """Statistics since the simulator started (its "24 h")."""

    start_ms: int
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    last_qty: Decimal = Decimal(0)
    v: Decimal = Decimal(0)
    q: Decimal = Decimal(0)
    n: int = 0
    first: int = -1
    last: int = -1


@dataclass
class ChannelSim:
    """Per hub: the state of every symbol's low-rate channels."""

    hub: Hub
    candles: dict[tuple[str, str], _Candle] = field(default_factory=dict)
    days: dict[str, _Day] = field(default_factory=dict)
    next_second: int = 0
    rngs: dict[str, random.Random] = field(default_factory=dict)
    active: bool = False  # a low-rate stream has a subscriber (refreshed every second)

    def wanted(self, name: str) -> bool:
        return name in self.hub.subs

    def on_trade(self, symbol: str, price_s: str, qty_s: str, trade_id: int, taker_buy: bool, t_ms: int) -> None:
        """A trade of the market: into its candles and its day (only while someone listens)."""
        if not self.active:  # the hot path of every other stream: one attribute read
            return
        price, qty = Decimal(price_s), Decimal(qty_s)
        lo = symbol.lower()
        for interval in KLINE_INTERVALS:
            name = f"{lo}@kline_{interval}"
            if name in self.hub.subs:
                self._roll(symbol, name, interval, t_ms, price).add(price, qty, trade_id, taker_buy)
        d = self._day(symbol, t_ms, price)
        d.h, d.low, d.c, d.last_qty = max(d.h, price), min(d.low, price), price, qty
        d.v += qty
        d.q += price * qty
        d.n += 1
        d.first = trade_id if d.first < 0 else d.first
        d.last = trade_id

    def _candle(self, symbol: str, interval: str, t_ms: int, price: Decimal) -> _Candle:
        c = self.candles.get((symbol, interval))
        if c is None:
            start, end = interval_bounds(interval, t_ms)
            c = self.candles[(symbol, interval)] = _Candle(interval, start, end, price, price, price, price)
        return c

    def _day(self, symbol: str, t_ms: int, price: Decimal) -> _Day:
        d = self.days.get(symbol)
        if d is None:
            d = self.days[symbol] = _Day(t_ms, price, price, price, price)
        return d

    def tick(self, now_ms: int) -> None:
        """Publish once per second of exchange time what subscribers asked for."""
        if now_ms < self.next_second:
            return
        self.next_second = (now_ms // 1000 + 1) * 1000
        self.active = any(_is_channel_stream(n) for n in self.hub.subs)
        if not self.active:
            return
        minis, days, marks = [], [], []
        for symbol, m in self.hub.markets.items():
            lo = symbol.lower()
            bb, ba = m.best
            mid = (Decimal(m.price(bb)) + Decimal(m.price(ba))) / 2
            self._candles(symbol, lo, now_ms, mid)
            d = self._day(symbol, now_ms, mid)
            mini, day = _mini_ticker(symbol, d, now_ms), _day_ticker(self.hub.venue, symbol, d, m, now_ms)
            minis.append(mini)
            days.append(day)
            self._send(f"{lo}@miniTicker", mini)
            self._send(f"{lo}@ticker", day)
            if is_derivatives(self.hub.venue):
                mark = _mark_price(symbol, mid, now_ms)
                marks.append(mark)
                self._send(f"{lo}@markPrice@1s", mark)
                self._send(f"{lo}@markPrice", mark)
                self._liquidation(symbol, lo, m, now_ms)
        self._send("!miniTicker@arr", minis)
        if is_derivatives(self.hub.venue):
            self._send("!ticker@arr", days)
            self._send("!markPrice@arr@1s", marks)
            self._send("!markPrice@arr", marks)

    def _send(self, name: str, payload: Any) -> None:
        if name in self.hub.subs:
            self.hub._deliver(name, orjson.dumps(payload))  # the hub's fan-out, faults aside

    def _candles(self, symbol: str, lo: str, now_ms: int, mid: Decimal) -> None:
        for interval in KLINE_INTERVALS:
            name = f"{lo}@kline_{interval}"
            if name not in self.hub.subs:
                continue
            c = self._roll(symbol, name, interval, now_ms, mid)
            self._send(name, _kline(symbol, c, now_ms, closed=False))

    def _roll(self, symbol: str, name: str, interval: str, t_ms: int, price: Decimal) -> _Candle:
        """The candle containing ``t_ms``, closing (and publishing) the ones that ended before it."""
        c = self._candle(symbol, interval, t_ms, price)
        for _ in range(_MAX_FILL):
            if t_ms <= c.close_ms:
                break
            self._send(name, _kline(symbol, c, c.close_ms, closed=True))
            c = self.candles[(symbol, interval)] = c.following()
        return c

    def _liquidation(self, symbol: str, lo: str, m: Any, now_ms: int) -> None:
        names = (f"{lo}@forceOrder", "!forceOrder@arr")
        if not any(n in self.hub.subs for n in names):
            return
        rng = self.rngs.setdefault(symbol, random.Random(f"liquidations/{self.hub.venue}/{symbol}"))
        if rng.random() >= LIQUIDATION_P:
            return
        sell = rng.random() < 0.5
        price = m.price(m.best[0] if sell else m.best[1])
        qty = m.qty(1 + rng.randrange(50))
        body = {"s": symbol, "S": "SELL" if sell else "BUY", "o": "LIMIT", "f": "IOC", "q": qty, "p": price}
        body |= {"ap": price, "X": "FILLED", "l": qty, "z": qty, "T": now_ms}
        for n in names:
            self._send(n, {"e": "forceOrder", "E": now_ms, "o": body})


def _is_channel_stream(name: str) -> bool:
    kind = name.partition("@")[2]
    return name.startswith("!") or kind.startswith(("kline_", "ticker", "miniTicker", "markPrice", "forceOrder"))


def _s(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


def _kline(symbol: str, c: _Candle, e_ms: int, *, closed: bool) -> dict[str, Any]:
    k = {"t": c.open_ms, "T": c.close_ms, "s": symbol, "i": c.interval, "f": c.first, "L": c.last}
    k |= {"o": _s(c.o), "c": _s(c.c), "h": _s(c.h), "l": _s(c.low), "v": _s(c.v), "n": c.n, "x": closed}
    k |= {"q": _s(c.q), "V": _s(c.bv), "Q": _s(c.bq), "B": "0"}
    return {"e": "kline", "E": e_ms, "s": symbol, "k": k}


def _mini_ticker(symbol: str, d: _Day, now_ms: int) -> dict[str, Any]:
    return {"e": "24hrMiniTicker", "E": now_ms, "s": symbol, "c": _s(d.c), "o": _s(d.o), "h": _s(d.h)} | {
        "l": _s(d.low),
        "v": _s(d.v),
        "q": _s(d.q),
    }


def _day_ticker(venue: str, symbol: str, d: _Day, m: Any, now_ms: int) -> dict[str, Any]:
    change = d.c - d.o
    pct = change / d.o * 100 if d.o else Decimal(0)
    avg = d.q / d.v if d.v else d.c
    out: dict[str, Any] = {"e": "24hrTicker", "E": now_ms, "s": symbol, "p": _s(change), "P": f"{pct:.3f}"}
    out |= {"w": _s(avg.quantize(Decimal("0.00000001"))), "c": _s(d.c), "Q": _s(d.last_qty), "o": _s(d.o)}
    out |= {"h": _s(d.h), "l": _s(d.low), "v": _s(d.v), "q": _s(d.q)}
    out |= {"O": max(d.start_ms, now_ms - 86_400_000), "C": now_ms, "F": d.first, "L": d.last, "n": d.n}
    if not is_derivatives(venue):  # type: ignore[arg-type]
        bb, ba = m.best
        bids, asks = m.books
        out |= {
            "x": _s(d.o),
            "b": m.price(bb),
            "B": m.qty(bids.get(bb, 0)),
            "a": m.price(ba),
            "A": m.qty(asks.get(ba, 0)),
        }
    return out


def _mark_price(symbol: str, mid: Decimal, now_ms: int) -> dict[str, Any]:
    mark = mid.quantize(Decimal("0.00000001"))
    index = (mid * Decimal("0.9999")).quantize(Decimal("0.00000001"))
    delivery = "_" in symbol and not symbol.endswith("_PERP")  # COIN-M dated contract: no funding
    rate, next_funding = ("", 0) if delivery else ("0.00010000", (now_ms // FUNDING_EVERY_MS + 1) * FUNDING_EVERY_MS)
    return {"e": "markPriceUpdate", "E": now_ms, "s": symbol, "p": _s(mark), "i": _s(index), "P": _s(index)} | {
        "r": rate,
        "T": next_funding,
    }


def open_interest_body(hub: Hub, symbol: str, now_ms: int) -> bytes | None:
    """``GET /fapi/v1/openInterest`` (``/dapi/...``) for ``symbol``: contracts open, moving with the
    traded volume; None for a symbol the hub does not simulate."""
    m = hub.markets.get(symbol)
    if m is None:
        return None
    d = hub.channels.days.get(symbol)
    base = Decimal(10_000) + (d.v if d is not None else Decimal(0)) / 10
    body: dict[str, Any] = {"openInterest": _s(base.quantize(Decimal("0.001"))), "symbol": symbol, "time": now_ms}
    if "_" in symbol:  # COIN-M adds the pair and contract type
        body |= {
            "pair": symbol.split("_")[0],
            "contractType": "PERPETUAL" if symbol.endswith("_PERP") else "CURRENT_QUARTER",
        }
    return orjson.dumps(body)
