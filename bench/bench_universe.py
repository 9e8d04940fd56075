"""What `sim --universe binance` costs: start-up, resident memory and CPU of the whole simulated
exchange (spot, USD-M, COIN-M), idle and at a mean rate per symbol, with and without one
subscriber per venue taking every depth stream. Figures go to docs/sim.md.

    python -m bench.bench_universe [--seconds 20] [--rate 2] [--subscribe]    (one run)
    python -m bench universe                                                  (the three of docs/sim.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import tempfile
import time

import aiohttp

from tickpath.clock import VirtualClock, run_virtual
from tickpath.feed import Feed, FeedConfig
from tickpath.feed.universe import parse_selection
from tickpath.sim import SimConfig, Simulator
from tickpath.venues.binance.endpoints import VENUES, endpoints


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _subscribe_all(sim: Simulator, session: aiohttp.ClientSession) -> list[aiohttp.ClientWebSocketResponse]:
    out = []
    for venue, hub in sim.hubs.items():
        names = [f"{s.lower()}@depth@100ms" for s in hub.markets]
        per_conn = endpoints(venue).max_streams_per_connection
        for c in range(0, len(names), per_conn):
            ws = await session.ws_connect(f"{sim.endpoint(venue).ws_url}/stream", max_msg_size=0)
            mine = names[c : c + per_conn]
            for i in range(0, len(mine), 200):
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": mine[i : i + 200], "id": i + 1}))
            out.append(ws)
    return out


async def _drain(ws: aiohttp.ClientWebSocketResponse, counter: list[int]) -> None:
    async for _ in ws:
        counter[0] += 1


async def measure(seconds: float, rate: float, subscribe: bool) -> dict[str, float]:
    venues = tuple(v for v in ("spot", "futures", "coinm") if v in VENUES)
    rss0 = _rss_mb()
    t0, c0 = time.monotonic(), time.process_time()
    cfg = SimConfig(venues=venues, universe="binance", rate=rate, book_levels=200, max_incoming_messages_per_s=1000)
    async with Simulator(cfg) as sim:
        startup_s = time.monotonic() - t0
        symbols = sum(len(h.markets) for h in sim.hubs.values())
        rss_start = _rss_mb()
        frames = [0]
        async with aiohttp.ClientSession() as session:
            socks = await _subscribe_all(sim, session) if subscribe else []
            drains = [asyncio.create_task(_drain(ws, frames)) for ws in socks]
            await asyncio.sleep(2.0)  # subscriptions settle
            events0 = sum(h.events for h in sim.hubs.values())
            t1, c1 = time.monotonic(), time.process_time()
            await asyncio.sleep(seconds)
            wall, cpu = time.monotonic() - t1, time.process_time() - c1
            events = sum(h.events for h in sim.hubs.values()) - events0
            for d in drains:
                d.cancel()
    return {
        "symbols": symbols,
        "rate_mean_per_symbol": rate,
        "subscribed": subscribe,
        "startup_s": round(startup_s, 2),
        "startup_cpu_s": round(c1 - c0, 2),
        "rss_mb_before": round(rss0, 1),
        "rss_mb_started": round(rss_start, 1),
        "rss_mb_end": round(_rss_mb(), 1),
        "cpu_percent": round(100 * cpu / wall, 1),
        "updates_per_s": round(events / wall),
        "frames_received_per_s": round(frames[0] / wall),  # the client's reading shares this process
    }


def startup_virtual(
    size: int = 2000, limit: int = 100, budget: int = 6000, seconds: float = 400.0
) -> dict[str, object]:
    """``feed --symbols all`` on the whole spot universe in virtual time (VirtualClock): how long
    until every book synced, paced within ``budget``; the simulator's own 429/418 counts."""
    clock = VirtualClock()

    async def run() -> dict[str, object]:
        cfg = SimConfig(
            venues=("spot",), universe="binance", universe_size=size, rate=0.5, book_levels=100, weight_budget=budget
        )
        async with Simulator(cfg, clock=clock) as sim:
            ep = sim.endpoint("spot")
            with tempfile.TemporaryDirectory() as tmp:
                feed = Feed(
                    FeedConfig(
                        venue="spot",
                        symbols=(),
                        selection=parse_selection("all"),
                        base_url=ep.ws_url,
                        rest_url=ep.rest_url,
                        sinks=(f"duckdb:{tmp}/t.duckdb",),
                        snapshot_limit=limit,
                        duration_s=seconds,
                        stale_after_s=120.0,
                        listing_poll_s=600.0,
                    ),
                    clock=clock,
                )
                await feed.run()
            s = feed.summary()
            return {
                **s.engine["startup"],
                "connections": s.connections,
                "gaps": s.gaps,
                "answered_429": sim.weights["spot"].answered_429,
                "answered_418": sim.weights["spot"].answered_418,
            }

    t0 = time.monotonic()
    logging.disable(logging.WARNING)  # a straggler's reconnect warnings are not the figure
    try:
        out = run_virtual(run, clock)
    finally:
        logging.disable(logging.NOTSET)
    return {**out, "snapshot_limit": limit, "budget": budget, "wall_s": round(time.monotonic() - t0, 1)}


def main() -> dict[str, object]:
    """``make bench``: idle, with every depth stream subscribed, at 5x the mean rate, and the feed's
    start-up on the whole spot universe in virtual time."""
    runs = {
        "rate2": asyncio.run(measure(15.0, 2.0, False)),
        "rate2_subscribed": asyncio.run(measure(15.0, 2.0, True)),
        "rate10": asyncio.run(measure(15.0, 10.0, False)),
        "feed_startup_virtual": startup_virtual(),
    }
    for name, fig in runs.items():
        print(f"{name}: {json.dumps(fig)}")
    return runs


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--subscribe", action="store_true")
    a = p.parse_args()
    print(json.dumps(asyncio.run(measure(a.seconds, a.rate, a.subscribe))))
