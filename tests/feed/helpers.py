"""Test helpers: run a feed against the simulator, and rebuild books the way a consumer would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from tickpath.feed import Feed, FeedConfig
from tickpath.sim import Endpoint, Simulator


def feed_config(ep: Endpoint, venue: str, symbols: tuple[str, ...], **kw: Any) -> FeedConfig:
    """A FeedConfig pointed at the simulator endpoint, with fast timings for tests."""
    base: dict[str, Any] = dict(
        venue=venue,
        symbols=symbols,
        base_url=ep.ws_url,
        rest_url=ep.rest_url,
        clock_samples=3,
        reconnect_base_s=0.05,
        reconnect_max_s=0.5,
        flush_interval_s=0.05,
    )
    base.update(kw)
    return FeedConfig(**base)


async def run_until(feed: Feed, cond: Callable[[Feed], bool], timeout_s: float = 15.0, min_s: float = 0.0) -> Any:
    """Run ``feed`` until ``cond(feed)`` holds (after at least ``min_s``), then stop it; returns the summary.

    Seconds are the loop's: virtual ones on a :class:`tickpath.clock.VirtualClock` loop."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(feed.run())
    start = loop.time()
    try:
        while True:
            await asyncio.sleep(0.05)
            if task.done():
                return task.result()
            elapsed = loop.time() - start
            if elapsed >= min_s and feed.engine is not None and cond(feed):
                break
            if elapsed > timeout_s:
                raise AssertionError(f"condition not met within {timeout_s} s: {feed.summary().to_dict()}")
    finally:
        feed.stop()
    return await task


def all_synced(feed: Feed) -> bool:
    assert feed.engine is not None
    return all(b.synced for b in feed.engine.books.values())


def assert_books_match_truth(feed: Feed, sim: Simulator) -> None:
    """The feed's current books equal the simulator's exact book at the same update id."""
    assert feed.engine is not None
    for sym, bs in feed.engine.books.items():
        assert bs.synced, f"{sym} not synced"
        uid = bs.last_update_id
        assert uid is not None
        bids, asks = bs.book.top()
        truth = sim.ground_truth(feed.config.venue, sym, uid)
        assert (bids, asks) == (truth.bids, truth.asks), f"{sym} differs from truth at update id {uid}"


def l2_rows(db: Path, symbol: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute("SELECT * FROM l2 WHERE symbol = ? ORDER BY seq", [symbol])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def rebuild_and_check(
    rows: list[dict[str, Any]], truth: Callable[[int], tuple[list[Any], list[Any]]], depth: int | None = None
) -> dict[str, int]:
    """Apply l2 rows in seq order like a consumer; after every snapshot and delta compare with truth.

    Returns counts of checked snapshots, deltas and resets. Sequence must be contiguous from 1.
    """
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    live = False
    counts = {"snapshot": 0, "delta": 0, "reset": 0}
    for i, r in enumerate(rows, start=1):
        assert r["seq"] == i, f"seq gap: expected {i}, got {r['seq']}"
        kind = r["kind"]
        counts[kind] += 1
        if kind == "reset":
            bids.clear()
            asks.clear()
            live = False
            continue
        if kind == "snapshot":
            bids = {lv["price"]: lv["qty"] for lv in r["bids"]}
            asks = {lv["price"]: lv["qty"] for lv in r["asks"]}
            live = True
        else:
            assert live, "delta before any snapshot"
            for side, levels in ((bids, r["bids"]), (asks, r["asks"])):
                for lv in levels:
                    if float(lv["qty"]) == 0.0:
                        side.pop(lv["price"], None)
                    else:
                        side[lv["price"]] = lv["qty"]
        got_b = sorted(bids.items(), key=lambda kv: -float(kv[0]))
        got_a = sorted(asks.items(), key=lambda kv: float(kv[0]))
        tb, ta = truth(r["final_update_id"])
        if depth is not None:
            tb, ta = tb[:depth], ta[:depth]
        assert got_b == [tuple(x) for x in tb], f"bids differ at seq {i} ({kind}, u={r['final_update_id']})"
        assert got_a == [tuple(x) for x in ta], f"asks differ at seq {i} ({kind}, u={r['final_update_id']})"
    return counts
