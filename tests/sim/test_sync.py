"""Ground truth equals the book a real client builds from a REST snapshot plus WebSocket diffs."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.sim import Simulator

from .helpers import ClientBook, recv_json, small_config, ws_connect


@pytest.mark.parametrize(
    ("venue", "stream"),
    [
        ("futures", "btcusdt@depth@100ms"),
        ("futures", "btcusdt@depth@0ms"),
        ("futures", "btcusdt@depth"),
        ("spot", "btcusdt@depth@100ms"),
        ("spot", "btcusdt@depth"),
    ],
)
@virtual_time
async def test_client_book_matches_ground_truth(virtual_clock: VirtualClock, venue: str, stream: str) -> None:
    """A book synced by Binance's rules from snapshot + diffs equals sim.ground_truth at the same update id."""
    async with Simulator(small_config(venues=(venue,), rate=300.0), clock=virtual_clock) as sim:
        ep = sim.endpoint(venue)
        ws = await ws_connect(ep.raw_url(stream))
        try:
            first = await recv_json(ws)  # the stream is flowing before the snapshot, as the rules say
            async with aiohttp.ClientSession() as http, http.get(ep.depth_url("BTCUSDT", 1000)) as r:
                assert r.status == 200
                book = ClientBook(venue, await r.json())
            book.apply(first) if first["u"] >= book.last_update_id else None
            applied = 0
            while applied < 2:
                if book.apply(await recv_json(ws)):
                    applied += 1
            truth = sim.ground_truth(venue, "BTCUSDT", book.last_update_id)
            bids, asks = book.levels()
            # the snapshot holds the top 1000 levels: compare what it could know
            assert truth.last_update_id == book.last_update_id
            assert bids[:150] == truth.bids[:150]
            assert asks[:150] == truth.asks[:150]
        finally:
            await ws.close()


@virtual_time
async def test_ground_truth_is_exact_at_past_update_ids(virtual_clock: VirtualClock) -> None:
    """ground_truth(uid) replays history exactly: applying the 0ms diffs to an old truth gives a newer one."""
    async with Simulator(small_config(venues=("futures",), rate=0.0), clock=virtual_clock) as sim:
        start = sim.last_update_id("futures", "BTCUSDT")
        before = sim.ground_truth("futures", "BTCUSDT", start)
        ep = sim.endpoint("futures")
        ws = await ws_connect(ep.raw_url("btcusdt@depth@0ms"))
        try:
            await asyncio.sleep(0.05)
            sim.step("futures", "BTCUSDT", 300)
            book = ClientBook("futures", {"lastUpdateId": start, "bids": before.bids, "asks": before.asks})
            book.synced, book.prev_u = True, start  # the truth at `start` is the sync point itself
            for _ in range(300):
                book.apply(await recv_json(ws))
            assert book.last_update_id == start + 300
            truth = sim.ground_truth("futures", "BTCUSDT", start + 300)
            assert book.levels() == (truth.bids, truth.asks)
            mid = sim.ground_truth("futures", "BTCUSDT", start + 150)
            assert mid.last_update_id == start + 150 and mid != truth
        finally:
            await ws.close()
