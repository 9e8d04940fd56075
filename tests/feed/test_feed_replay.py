"""The shared real Binance captures, replayed through the simulator: zero gaps, books match an
independent application of Binance's rules; and --record / /metrics of a live run."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.feed import Feed
from tickpath.feed.status import status_text
from tickpath.sim import ReplayConfig, SimConfig, Simulator
from tickpath.venues.binance.capture import read_http_capture, read_ws_capture

from .helpers import all_synced, assert_books_match_truth, feed_config, run_until

CAPTURES = {"futures": "usdm_futures", "spot": "spot"}


def reference_books(
    ws_path: Path, http_path: Path, venue: str
) -> dict[str, tuple[int, dict[str, str], dict[str, str]]]:
    """Binance's rules applied independently (plain dicts, first recorded snapshot per symbol)."""
    snaps: dict[str, dict[str, Any]] = {}
    for rec in read_http_capture(http_path):
        snaps.setdefault(rec.params["symbol"], json.loads(rec.body))
    out: dict[str, tuple[int, dict[str, str], dict[str, str]]] = {}
    for sym, snap in snaps.items():
        last = snap["lastUpdateId"]
        bids = {p: q for p, q in snap["bids"]}
        asks = {p: q for p, q in snap["asks"]}
        first = True
        for frame in read_ws_capture(ws_path).frames:
            d = json.loads(frame.text)["data"]
            if d.get("e") != "depthUpdate" or d["s"] != sym:
                continue
            if venue == "futures":
                if d["u"] < last:
                    continue
                assert (d["U"] <= last <= d["u"]) if first else d["pu"] == last, "reference found a gap"
            else:
                if d["u"] <= last:
                    continue
                assert (d["U"] <= last + 1 <= d["u"]) if first else d["U"] == last + 1, "reference gap"
            first = False
            for side, levels in ((bids, d["b"]), (asks, d["a"])):
                for p, q in levels:
                    if Decimal(q) == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
            last = d["u"]
        out[sym] = (last, bids, asks)
    return out


async def _replay(venue: str, shared: Path, tmp_path: Path) -> None:
    name = CAPTURES[venue]
    ws_path, http_path = shared / f"{name}.ws.txt", shared / f"{name}.http.txt"
    ref = reference_books(ws_path, http_path, venue)
    symbols = tuple(sorted(ref))
    cap_frames = read_ws_capture(ws_path).frames
    depth_frames = sum('"depthUpdate"' in f.text for f in cap_frames)
    cfg = SimConfig(venues=(venue,), symbols=(), replay=(ReplayConfig(ws_path, http_path, speed=0.0),))
    async with Simulator(cfg) as sim:
        ep = sim.endpoint(venue)
        feed = Feed(feed_config(ep, venue, symbols, sinks=(f"duckdb:{tmp_path}/r.duckdb",), clock_samples=0))

        def done(f: Feed) -> bool:
            assert f.engine is not None
            return (
                f.engine.stats.depth >= depth_frames
                and all_synced(f)
                and all(b.last_update_id == ref[s][0] for s, b in f.engine.books.items())
            )

        summary = await run_until(feed, done, timeout_s=30)
    assert summary.gaps == 0 and summary.resyncs == 0 and summary.malformed == 0
    assert feed.engine is not None
    for sym, (last, bids, asks) in ref.items():
        bs = feed.engine.books[sym]
        assert bs.last_update_id == last
        got_b, got_a = bs.book.as_dicts()
        assert got_b == bids and got_a == asks, sym
        assert bs.stats.dropped_before_sync > 0 or venue == "spot"


async def test_replayed_futures_capture_syncs_with_zero_gaps(shared_captures: Path, tmp_path: Path) -> None:
    """The real USD-M capture replays into books equal to an independent application of the rules."""
    await _replay("futures", shared_captures, tmp_path)


async def test_replayed_spot_capture_syncs_with_zero_gaps(shared_captures: Path, tmp_path: Path) -> None:
    """The real spot capture replays into books equal to an independent application of the rules."""
    await _replay("spot", shared_captures, tmp_path)


@virtual_time
async def test_record_writes_a_replayable_capture_and_metrics_are_served(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    """--record writes every frame and snapshot in the capture format; /metrics exports the counters."""
    rec_dir = tmp_path / "rec"
    cfg = SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=200.0, book_levels=60)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        ep = sim.endpoint("futures")
        feed = Feed(
            feed_config(
                ep, "futures", ("BTCUSDT",), sinks=(f"duckdb:{tmp_path}/t.duckdb",), record_dir=rec_dir, metrics_port=0
            ),
            clock=virtual_clock,
        )
        scraped: dict[str, str] = {}

        def cond(f: Feed) -> bool:
            return all_synced(f) and f.pipeline.stats.by_channel["l2"] > 10

        async def scrape_then(f: Feed) -> bool:
            port = f.snapshot().metrics_port
            assert port
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
                scraped["text"] = await r.text()
            return True

        import asyncio

        # Stop only once scraped: both loops poll cond, and the feed's /metrics closes when it stops.
        task = asyncio.create_task(run_until(feed, lambda f: cond(f) and "text" in scraped, timeout_s=20))
        while not (feed.engine is not None and cond(feed)) and not task.done():
            await asyncio.sleep(0.05)
        await scrape_then(feed)
        assert_books_match_truth(feed, sim)
        line = status_text(feed.snapshot(), 10.0, 20.0).plain
        assert "books 1/1 synced" in line and "resyncs 0" in line
        summary = await task
    text = scraped["text"]
    assert 'tickpath_feed_frames_total{kind="depth",venue="futures"}' in text
    assert "tickpath_feed_receipt_minus_event_seconds_bucket" in text
    assert "tickpath_feed_resyncs_total" in text and "tickpath_feed_queue_depth" in text
    ws_files = sorted(rec_dir.glob("futures-*.ws.txt"))
    assert ws_files, summary.record_files
    cap = read_ws_capture(ws_files[0])
    assert "btcusdt@depth@100ms" in cap.streams
    assert feed.engine is not None and len(cap.frames) == feed.engine.stats.frames
    http = read_http_capture(rec_dir / "futures.http.txt")
    assert any(r.path.endswith("/depth") and "lastUpdateId" in r.body for r in http)
    # The recording replays through the simulator into the same synced book.
    cfg = SimConfig(
        venues=("futures",), symbols=(), replay=(ReplayConfig(ws_files[0], rec_dir / "futures.http.txt", speed=0.0),)
    )
    async with Simulator(cfg) as sim2:
        feed2 = Feed(
            feed_config(
                sim2.endpoint("futures"),
                "futures",
                ("BTCUSDT",),
                sinks=(f"duckdb:{tmp_path}/t2.duckdb",),
                clock_samples=0,
            )
        )
        assert feed.engine is not None
        target = feed.engine.books["BTCUSDT"].last_update_id
        await run_until(
            feed2,
            lambda f: f.engine.books["BTCUSDT"].last_update_id == target,  # type: ignore[union-attr]
            timeout_s=20,
        )
    assert feed2.engine is not None
    assert feed2.engine.books["BTCUSDT"].book.as_dicts() == feed.engine.books["BTCUSDT"].book.as_dicts()
