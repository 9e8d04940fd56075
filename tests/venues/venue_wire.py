"""Frames and snapshots in each new venue's documented wire shape, built here from Binance's docs
(not from the simulator's payloads), and an independent model of the book they describe.

* COIN-M (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams):
  depth ``e E T s ps U u pu b a``; bookTicker ``e u s ps b B a A T E``; aggTrade ``e E a s p q f l T m``
  (q in contracts); ``GET /dapi/v1/depth``: ``lastUpdateId symbol pair E T bids asks``.
* Binance.US / Binance TR: spot's shapes, depth ``e E s U u b a``, snapshot ``lastUpdateId bids asks``.

One update id changes one level (as the simulator's market does), so the book after any id is exact:
a snapshot at ``L`` is the state after id ``L``, whatever the event boundaries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tickpath.venues.binance.endpoints import endpoints


def _dumps(obj: Any) -> str:
    """Compact JSON, as Binance sends it."""
    return json.dumps(obj, separators=(",", ":"))


SYMBOL = {"coinm": "BTCUSD_PERP", "us": "BTCUSDT", "tr": "BTCTRY"}

Change = tuple[int, int, int]  # (0 bid / 1 ask, price in ticks, qty in lots; 0 removes)


def price_str(venue: str, ticks: int) -> str:
    """COIN-M prints its own precision (BTCUSD: 1 decimal); spot-family venues print 8 decimals."""
    return f"{ticks / 10:.1f}" if venue == "coinm" else f"{ticks / 100:.8f}"


def qty_str(venue: str, lots: int) -> str:
    """COIN-M quantities are whole contracts; spot-family quantities are decimals of the base asset."""
    return str(lots) if venue == "coinm" else f"{lots / 1000:.8f}"


@dataclass
class Market:
    """An independent book: ``changes[i]`` is update id ``first_id + i``."""

    venue: str
    first_id: int
    changes: list[Change]
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)

    def state_after(self, last_id: int) -> tuple[dict[int, int], dict[int, int]]:
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for i, (side, px, lots) in enumerate(self.changes):
            if self.first_id + i > last_id:
                break
            book = bids if side == 0 else asks
            if lots:
                book[px] = lots
            else:
                book.pop(px, None)
        return bids, asks

    def top(self, last_id: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids, asks = self.state_after(last_id)
        v = self.venue
        return (
            [(price_str(v, p), qty_str(v, q)) for p, q in sorted(bids.items(), reverse=True)],
            [(price_str(v, p), qty_str(v, q)) for p, q in sorted(asks.items())],
        )


def depth_frame(venue: str, m: Market, first: int, last: int, prev: int, *, combined: bool = True) -> str:
    """One diff-depth event covering update ids ``first..last`` (later changes of a level win)."""
    b: dict[int, int] = {}
    a: dict[int, int] = {}
    for uid in range(first, last + 1):
        side, px, lots = m.changes[uid - m.first_id]
        (b if side == 0 else a)[px] = lots
    sym = SYMBOL[venue]
    bl = [[price_str(venue, p), qty_str(venue, q)] for p, q in b.items()]
    al = [[price_str(venue, p), qty_str(venue, q)] for p, q in a.items()]
    data: dict[str, Any]
    if endpoints(venue).rules == "futures":
        pair = sym.split("_")[0]
        data = {"e": "depthUpdate", "E": 1_700_000_000_000 + last, "T": 1_700_000_000_000 + last, "s": sym}
        data.update({"ps": pair, "U": first, "u": last, "pu": prev, "b": bl, "a": al})
    else:
        data = {"e": "depthUpdate", "E": 1_700_000_000_000 + last, "s": sym, "U": first, "u": last, "b": bl, "a": al}
    if not combined:
        return _dumps(data)
    speed = "@depth@100ms"
    return _dumps({"stream": f"{sym.lower()}{speed}", "data": data})


def snapshot_body(venue: str, m: Market, last_id: int) -> str:
    bids, asks = m.top(last_id)
    if venue == "coinm":
        sym = SYMBOL[venue]
        body: dict[str, Any] = {"lastUpdateId": last_id, "symbol": sym, "pair": sym.split("_")[0]}
        body.update({"E": 1_700_000_000_000, "T": 1_700_000_000_000, "bids": bids, "asks": asks})
        return _dumps(body)
    return _dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks})


def book_ticker_frame(venue: str, uid: int, bid: tuple[str, str], ask: tuple[str, str]) -> str:
    sym = SYMBOL[venue]
    if venue == "coinm":
        data: dict[str, Any] = {"e": "bookTicker", "u": uid, "s": sym, "ps": sym.split("_")[0]}
        data.update({"b": bid[0], "B": bid[1], "a": ask[0], "A": ask[1], "T": 1_700_000_000_000 + uid})
        data["E"] = 1_700_000_000_000 + uid
    else:
        data = {"u": uid, "s": sym, "b": bid[0], "B": bid[1], "a": ask[0], "A": ask[1]}
    return _dumps({"stream": f"{sym.lower()}@bookTicker", "data": data})


def agg_trade_frame(venue: str, agg_id: int, price: str, qty: str) -> str:
    sym = SYMBOL[venue]
    t = 1_700_000_000_000 + agg_id
    if venue == "coinm":
        data: dict[str, Any] = {"e": "aggTrade", "E": t, "a": agg_id, "s": sym, "p": price, "q": qty}
        data.update({"f": agg_id * 2, "l": agg_id * 2 + 1, "T": t, "m": True})
    else:
        data = {"e": "aggTrade", "E": t, "s": sym, "a": agg_id, "p": price, "q": qty}
        data.update({"f": agg_id * 2, "l": agg_id * 2 + 1, "T": t, "m": False, "M": True})
    return _dumps({"stream": f"{sym.lower()}@aggTrade", "data": data})


def events_over(m: Market, sizes: list[int]) -> list[tuple[int, int, int]]:
    """(U, u, pu) of consecutive events of ``sizes`` update ids each, covering the market's ids."""
    out = []
    uid, prev, end = m.first_id, m.first_id - 1, m.first_id + len(m.changes) - 1
    i = 0
    while uid <= end:
        last = min(uid + max(1, sizes[i % len(sizes)]) - 1, end)
        out.append((uid, last, prev))
        prev, uid, i = last, last + 1, i + 1
    return out
