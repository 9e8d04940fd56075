"""End to end against the simulator: books equal ground truth exactly, under every fault."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.events import SessionInfo
from tickpath.feed import Feed
from tickpath.sim import SimConfig, Simulator
from tickpath.sinks.duckdb import DuckDBSink

from .helpers import all_synced, assert_books_match_truth, feed_config, l2_rows, rebuild_and_check, run_until

SYMS = ("BTCUSDT", "ETHUSDT")


def _sim(venue: str, clock: VirtualClock, **kw: object) -> Simulator:
    base: dict[str, object] = dict(venues=(venue,), symbols=SYMS, seed=7, rate=200.0, book_levels=60)
    base.update(kw)
    return Simulator(SimConfig(**base), clock=clock)  # type: ignore[arg-type]


def _truth(sim: Simulator, venue: str, sym: str):  # type: ignore[no-untyped-def]
    def f(uid: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        t = sim.ground_truth(venue, sym, uid)
        return t.bids, t.asks

    return f


@pytest.mark.parametrize("venue", ["spot", "futures"])
@virtual_time
async def test_clean_run_books_and_stored_rows_equal_truth(
    virtual_clock: VirtualClock, venue: str, tmp_path: Path
) -> None:
    """With no faults every book syncs, and the l2 rows rebuilt from DuckDB equal truth at every step."""
    db = tmp_path / "t.duckdb"
    async with _sim(venue, virtual_clock) as sim:
        ep = sim.endpoint(venue)
        feed = Feed(feed_config(ep, venue, SYMS, sinks=(f"duckdb:{db}",)), clock=virtual_clock)
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 24)
        assert_books_match_truth(feed, sim)
        assert summary.gaps == 0 and summary.resyncs == 0 and summary.malformed == 0
        assert summary.dropped == 0
        for sym in SYMS:
            counts = rebuild_and_check(l2_rows(db, sym), _truth(sim, venue, sym))
            assert counts["snapshot"] == 1 and counts["delta"] > 5
    con = duckdb.connect(str(db), read_only=True)
    trades = con.execute("SELECT symbol, count(*), max(seq) FROM trades GROUP BY symbol").fetchall()
    assert trades and all(n == mx for _, n, mx in trades)  # contiguous per-stream seq
    row = con.execute("SELECT streams, clock_offset_bound_ns FROM feed_sessions").fetchone()
    assert row is not None and f"{SYMS[0].lower()}@depth@100ms" in row[0] and row[1] > 0
    assert summary.sinks["duckdb"]["written"] == summary.emitted
    con.close()


@virtual_time
async def test_session_row_is_written_at_start_and_replaced_at_stop(
    virtual_clock: VirtualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed hands its session row to the sinks once its connections open (no end yet) and again
    at stop; the store keeps the final one."""
    db = tmp_path / "t.duckdb"
    written: list[dict[str, object]] = []
    original = DuckDBSink.write_session

    async def record(self: DuckDBSink, session: SessionInfo) -> None:
        written.append(session.row())
        await original(self, session)

    monkeypatch.setattr(DuckDBSink, "write_session", record)
    async with _sim("futures", virtual_clock) as sim:
        feed = Feed(feed_config(sim.endpoint("futures"), "futures", SYMS, sinks=(f"duckdb:{db}",)), clock=virtual_clock)
        await run_until(feed, lambda f: bool(written) and all_synced(f))
    assert [r["ended_ns"] is None for r in written] == [True, False]
    assert written[0]["streams"] == written[1]["streams"] and written[0]["streams"]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), min(ended_ns) FROM feed_sessions").fetchone() == (1, written[1]["ended_ns"])
    con.close()


@pytest.mark.parametrize("fault", ["gap", "duplicate", "reorder"])
@virtual_time
async def test_sequence_faults_resync_to_exact_books(virtual_clock: VirtualClock, fault: str, tmp_path: Path) -> None:
    """Gaps and reorders force a reset and resync; duplicates are ignored; books end exact."""
    venue = "futures"
    db = tmp_path / "t.duckdb"
    async with _sim(venue, virtual_clock) as sim:
        feed = Feed(feed_config(sim.endpoint(venue), venue, SYMS, sinks=(f"duckdb:{db}",)), clock=virtual_clock)
        state = {"injected": False}

        def cond(f: Feed) -> bool:
            assert f.engine is not None
            if not state["injected"]:
                if all_synced(f) and f.pipeline.stats.by_channel["l2"] > 10:
                    touched = getattr(sim.faults, fault)(venue, "BTCUSDT", 2)
                    assert touched >= 1
                    state["injected"] = True
                return False
            bs = f.engine.books["BTCUSDT"]
            if fault == "duplicate":
                return bs.stats.duplicates >= 1 and all_synced(f)
            return bs.stats.resyncs >= 1 and bs.stats.snapshots >= 2 and all_synced(f) and bs.stats.deltas > 12

        summary = await run_until(feed, cond, timeout_s=20)
        assert_books_match_truth(feed, sim)
        eth = feed.engine.books["ETHUSDT"] if feed.engine else None
        assert eth is not None and eth.stats.resyncs == 0  # a break resyncs that symbol only
        for sym in SYMS:
            counts = rebuild_and_check(l2_rows(db, sym), _truth(sim, venue, sym))
            if fault != "duplicate" and sym == "BTCUSDT":
                assert counts["reset"] >= 1 and counts["snapshot"] >= 2
        assert summary.dropped == 0


@virtual_time
async def test_disconnect_resets_and_resyncs(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """A cut connection reconnects with backoff, publishes resets, and every book resyncs exactly."""
    venue = "spot"
    db = tmp_path / "t.duckdb"
    async with _sim(venue, virtual_clock) as sim:
        feed = Feed(feed_config(sim.endpoint(venue), venue, SYMS, sinks=(f"duckdb:{db}",)), clock=virtual_clock)
        state = {"dropped": False}

        def cond(f: Feed) -> bool:
            if not state["dropped"]:
                if all_synced(f):
                    assert sim.faults.drop_connections(venue) >= 1
                    state["dropped"] = True
                return False
            return (
                f.snapshot().connections.reconnects >= 1
                and all_synced(f)
                and all(b.stats.snapshots >= 2 for b in f.engine.books.values())
            )  # type: ignore[union-attr]

        summary = await run_until(feed, cond, timeout_s=20)
        assert_books_match_truth(feed, sim)
        assert summary.reconnects >= 1
        for sym in SYMS:
            counts = rebuild_and_check(l2_rows(db, sym), _truth(sim, venue, sym))
            assert counts["reset"] >= 1


@virtual_time
async def test_stall_is_detected_as_stale_and_recovers(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """A silent connection is closed by the stale watchdog, reconnected, and the book resynced."""
    venue = "futures"
    async with _sim(venue, virtual_clock, symbols=("BTCUSDT",)) as sim:
        feed = Feed(
            feed_config(
                sim.endpoint(venue), venue, ("BTCUSDT",), sinks=(f"duckdb:{tmp_path}/t.db",), stale_after_s=0.6
            ),
            clock=virtual_clock,
        )
        state = {"stalled": False}

        def cond(f: Feed) -> bool:
            if not state["stalled"]:
                if all_synced(f):
                    assert sim.faults.stall(venue, "BTCUSDT", 1.5) >= 1
                    state["stalled"] = True
                return False
            return (
                f.snapshot().connections.stale_closes >= 1
                and all_synced(f)
                and f.engine.books["BTCUSDT"].stats.snapshots >= 2
            )  # type: ignore[union-attr]

        summary = await run_until(feed, cond, timeout_s=20)
        assert_books_match_truth(feed, sim)
        assert summary.stale_closes >= 1


@virtual_time
async def test_rate_limits_and_failed_snapshots_are_retried(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """429 with Retry-After pauses every REST request; HTTP 500 snapshots back off; books still sync."""
    venue = "futures"
    async with _sim(venue, virtual_clock) as sim:
        sim.faults.rate_limit(venue, 1.0)
        sim.faults.fail_snapshots(venue, 2)
        feed = Feed(
            feed_config(sim.endpoint(venue), venue, SYMS, sinks=(f"duckdb:{tmp_path}/t.db",), clock_samples=0),
            clock=virtual_clock,
        )
        summary = await run_until(feed, all_synced, timeout_s=20)
        assert_books_match_truth(feed, sim)
        assert summary.snapshots["rate_limited"] >= 1
        assert summary.snapshots["errors"] >= 1 or summary.snapshots["rate_limited"] >= 2


@virtual_time
async def test_malformed_frames_are_counted_never_fatal(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """Invalid and truncated frames are counted by reason; the feed keeps running and stays exact."""
    venue = "futures"
    async with _sim(venue, virtual_clock) as sim:
        feed = Feed(
            feed_config(sim.endpoint(venue), venue, SYMS, sinks=(f"duckdb:{tmp_path}/t.db",)), clock=virtual_clock
        )
        state = {"done": False}

        def cond(f: Feed) -> bool:
            assert f.engine is not None
            if not state["done"]:
                if all_synced(f):
                    assert sim.faults.malformed(venue, frames=3) >= 1
                    assert sim.faults.truncated(venue, frames=3) >= 1
                    state["done"] = True
                return False
            return f.engine.stats.malformed_total >= 6 and all_synced(f)

        summary = await run_until(feed, cond, timeout_s=20)
        assert summary.malformed >= 6
        assert_books_match_truth(feed, sim)


@virtual_time
async def test_rollover_opens_new_connection_first_and_loses_nothing(
    virtual_clock: VirtualClock, tmp_path: Path
) -> None:
    """With a 2 s connection lifetime the feed rolls over early, overlapping; no gap, no reset, no dup."""
    venue = "futures"
    db = tmp_path / "t.duckdb"
    async with _sim(venue, virtual_clock, max_lifetime_s=2.0) as sim:
        feed = Feed(
            feed_config(
                sim.endpoint(venue), venue, SYMS, sinks=(f"duckdb:{db}",), rollover_after_s=0.9, rollover_overlap_s=0.25
            ),
            clock=virtual_clock,
        )
        summary = await run_until(
            feed, lambda f: f.snapshot().connections.rollovers >= 2 and all_synced(f), timeout_s=20
        )
        assert_books_match_truth(feed, sim)
        assert summary.rollovers >= 2
        assert summary.resyncs == 0 and summary.gaps == 0 and summary.reconnects == 0
        assert summary.duplicates > 0  # the overlap really delivered events twice, and they were dropped
        for sym in SYMS:
            counts = rebuild_and_check(l2_rows(db, sym), _truth(sim, venue, sym))
            assert counts == {"snapshot": 1, "delta": counts["delta"], "reset": 0}
    con = duckdb.connect(str(db), read_only=True)
    dup = con.execute("SELECT count(*) - count(DISTINCT (symbol, trade_id)) FROM trades").fetchone()
    assert dup == (0,)
    con.close()


@virtual_time
async def test_top_n_stream_rebuilds_the_true_top_n(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """In --depth 5 mode a consumer applying the stored rows holds exactly the true top 5 at every step."""
    venue = "spot"
    db = tmp_path / "t.duckdb"
    async with _sim(venue, virtual_clock) as sim:
        feed = Feed(
            feed_config(sim.endpoint(venue), venue, SYMS, sinks=(f"duckdb:{db}",), depth=5, channels=("l2",)),
            clock=virtual_clock,
        )
        await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 16)
        for sym in SYMS:
            rows = l2_rows(db, sym)
            assert all(r["depth"] == 5 for r in rows)
            counts = rebuild_and_check(rows, _truth(sim, venue, sym), depth=5)
            assert counts["delta"] > 3


@virtual_time
async def test_slow_sink_applies_back_pressure_without_loss(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """A sink slower than the market makes the feed wait; every event still arrives, none dropped."""

    class SlowSink(DuckDBSink):
        async def write(self, batch):  # type: ignore[no-untyped-def]
            import asyncio

            await asyncio.sleep(0.05)
            await super().write(batch)

        async def write_tables(self, batch):  # type: ignore[no-untyped-def]  # the columnar path
            import asyncio

            await asyncio.sleep(0.05)
            await super().write_tables(batch)

    venue = "futures"
    async with _sim(venue, virtual_clock, rate=400.0) as sim:
        sink = SlowSink(tmp_path / "t.duckdb")
        feed = Feed(
            feed_config(sim.endpoint(venue), venue, SYMS, batch_size=5, queue_batches=2),
            sinks=[sink],
            clock=virtual_clock,
        )
        summary = await run_until(
            feed, lambda f: f.pipeline.stats.backpressure_waits >= 3 and all_synced(f), timeout_s=20
        )
    assert summary.backpressure_waits >= 3
    assert sink.stats.accepted == sink.stats.written == summary.emitted
    assert sink.stats.dropped == 0


@virtual_time
async def test_sharded_subscribe_connections_answer_pings(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """Streams split over two SUBSCRIBE-mode connections; venue pings are answered, so none is dropped."""
    venue = "futures"
    async with _sim(venue, virtual_clock, ping_interval_s=0.2, pong_timeout_s=0.6) as sim:
        feed = Feed(
            feed_config(
                sim.endpoint(venue),
                venue,
                SYMS,
                sinks=(f"duckdb:{tmp_path}/t.db",),
                subscribe=True,
                streams_per_connection=3,
            ),
            clock=virtual_clock,
        )
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 24, min_s=1.5)
        assert_books_match_truth(feed, sim)
    assert feed.snapshot().connections.planned == 2 and summary.connections == 2
    assert summary.reconnects == 0 and summary.resyncs == 0
    assert summary.events["trades"] > 0 and summary.events["ticker"] > 0
