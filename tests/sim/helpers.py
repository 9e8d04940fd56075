"""Helpers for simulator tests: a real WebSocket client (websockets) and book building by Binance's rules."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tickpath.sim import SimConfig


def small_config(**kw: Any) -> SimConfig:
    """A fast config: small books, both venues, one symbol unless told."""
    base: dict[str, Any] = {"venues": ("spot", "futures"), "symbols": ("BTCUSDT",), "rate": 200.0, "book_levels": 200}
    base.update(kw)
    return SimConfig(**base)


async def ws_connect(url: str, **kw: Any) -> ClientConnection:
    """Open a websockets client without proxies or compression (the simulator offers none)."""
    return await connect(url, proxy=None, compression=None, open_timeout=5, **kw)


async def recv_json(ws: ClientConnection, timeout: float = 3.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: ClientConnection, pred: Any, timeout: float = 3.0) -> Any:
    """Receive messages until ``pred(msg)`` is true; returns that message."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, end - loop.time()))
        if pred(msg):
            return msg


class ClientBook:
    """A client's local book kept by Binance's documented sync rules (the thing ground truth checks)."""

    def __init__(self, venue: str, snapshot: dict[str, Any]) -> None:
        self.venue = venue
        self.last_update_id = int(snapshot["lastUpdateId"])
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.synced = False
        self.prev_u: int | None = None

    def apply(self, ev: dict[str, Any]) -> bool:
        """Apply one depth event; returns False while still before the sync point. Raises on a gap."""
        first, last = ev["U"], ev["u"]
        if last < self.last_update_id or (self.venue == "spot" and last <= self.last_update_id):
            return False  # older than the snapshot: drop, as the rules require
        if not self.synced:
            if self.venue == "futures":
                assert first <= self.last_update_id <= last, (first, self.last_update_id, last)
            else:
                assert first <= self.last_update_id + 1 <= last, (first, self.last_update_id, last)
            self.synced = True
        elif self.venue == "futures":
            assert ev["pu"] == self.prev_u, f"gap: pu {ev['pu']} != previous u {self.prev_u}"
        else:
            assert first == (self.prev_u or 0) + 1, f"gap: U {first} != previous u + 1 ({self.prev_u} + 1)"
        for side, book in (("b", self.bids), ("a", self.asks)):
            for p, q in ev[side]:
                if Decimal(q) == 0:
                    book.pop(p, None)
                else:
                    book[p] = q
        self.prev_u = last
        self.last_update_id = last
        return True

    def levels(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        return bids, asks
