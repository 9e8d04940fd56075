"""dq on data the real feed wrote from the simulator: clean runs pass, seeded faults fail their check.

Feed and simulator run in virtual time (tests/virtual_time.py): the faults' seconds are exact, so the
freshness findings are too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pytest

from tests.feed.helpers import all_synced, feed_config, run_until
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.dq.checks import Thresholds
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, DqReport, run_dq
from tickpath.feed import Feed
from tickpath.sim import SimConfig, Simulator

FAULT_AT_NS: dict[Path, int] = {}  # when each run's fault was seeded (wall ns, virtual)
VENUE = "futures"
SYMS = ("BTCUSDT", "ETHUSDT")


async def _feed_run(
    clock: VirtualClock, db: Path, fault: str | None = None, clock_offset_ms: float = 0.0
) -> tuple[int, int]:
    """Feed from the simulator into DuckDB for a few seconds, seeding ``fault`` once books are synced."""
    since = clock.wall_ns() - 10**9
    loop = asyncio.get_running_loop()
    cfg = SimConfig(venues=(VENUE,), symbols=SYMS, seed=11, rate=150.0, book_levels=60, clock_offset_ms=clock_offset_ms)
    async with Simulator(cfg, clock=clock) as sim:
        feed = Feed(feed_config(sim.endpoint(VENUE), VENUE, SYMS, sinks=(f"duckdb:{db}",)), clock=clock)
        state = {"at": 0.0, "wall_ns": 0}

        def cond(f: Feed) -> bool:
            if not state["at"]:
                if all_synced(f) and f.pipeline.stats.by_channel["l2"] > 20:
                    state["at"], state["wall_ns"] = loop.time(), clock.wall_ns()
                    if fault == "gap":
                        assert sim.faults.gap(VENUE, "BTCUSDT", 2) >= 1
                    elif fault == "stall":
                        assert sim.faults.stall(VENUE, "BTCUSDT", 3.5) >= 1
                    elif fault == "mute":
                        assert sim.faults.mute(VENUE, "BTCUSDT", "aggTrade", 4.0) == 1
                    elif fault == "freeze":
                        assert sim.faults.freeze(VENUE, "BTCUSDT", 4.0) == 1
                return False
            settle = {"stall": 4.5, "mute": 5.0, "freeze": 5.0}.get(fault or "", 1.0)
            return loop.time() - state["at"] > settle and all_synced(f)

        await run_until(feed, cond, timeout_s=30)
    FAULT_AT_NS[db] = int(state["wall_ns"])
    return since, clock.wall_ns() + 10**9


_CLEAN: list[tuple[Path, tuple[int, int]]] = []


async def _clean_run(clock: VirtualClock, tmp: pytest.TempPathFactory) -> tuple[Path, tuple[int, int]]:
    """The fault-free run (seeded, in virtual time) that both clean-run tests judge, made once."""
    if not _CLEAN:
        db = tmp.mktemp("clean") / "t.duckdb"
        _CLEAN.append((db, await _feed_run(clock, db)))
    return _CLEAN[0]


def _dq(db: Path, window: tuple[int, int], **limits: object) -> DqReport:
    con = duckdb.connect(str(db), read_only=True)
    # Short runs: judge completeness on any minute with a little activity.
    th = Thresholds(min_active_slots=5, **limits)  # type: ignore[arg-type]
    return run_dq(DqConfig(since_ns=window[0], until_ns=window[1], thresholds=th), DuckDBEngine(connection=con))


# Seconds-long faults against second-scale limits (the defaults are a minute, for real markets).
SHORT = {
    "dead_after_s": {"trades": 2.0, "ticker": 2.0},
    "dead_after_cadences": 20.0,
    "frozen_after_s": {"ticker": 2.0},
    "frozen_min_frames": 5,
}


def _failing(report: DqReport) -> set[str]:
    return {r.name for r in report.results if not r.ok}


@virtual_time
async def test_clean_simulator_run_passes_every_check(
    virtual_clock: VirtualClock, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fault-free feed run from the simulator passes all five checks with corrected latency."""
    db, window = await _clean_run(virtual_clock, tmp_path_factory)
    report = _dq(db, window)
    assert _failing(report) == set(), [r.findings[:3] for r in report.results if not r.ok]
    lat = next(r for r in report.results if r.name == "latency")
    assert {m["clock"] for m in lat.metrics} == {"corrected"}


@virtual_time
async def test_simulator_gap_fails_only_sequence(virtual_clock: VirtualClock, tmp_path: Path) -> None:
    """Depth events withheld by the simulator make the feed reset: only the sequence check fails."""
    window = await _feed_run(virtual_clock, tmp_path / "t.duckdb", fault="gap")
    report = _dq(tmp_path / "t.duckdb", window)
    assert _failing(report) == {"sequence"}
    seq = next(r for r in report.results if r.name == "sequence")
    assert seq.counts["reset"] >= 1 and {f["symbol"] for f in seq.findings} == {"BTCUSDT"}


@virtual_time
async def test_simulator_clock_offset_fails_latency_unless_corrected(
    virtual_clock: VirtualClock, tmp_path: Path
) -> None:
    """An exchange clock 1.5 s ahead: corrected by the feed's estimate it passes; without it, latency fails."""
    db = tmp_path / "t.duckdb"
    window = await _feed_run(virtual_clock, db, clock_offset_ms=1500.0)
    report = _dq(db, window)
    assert _failing(report) == set()
    lat = next(r for r in report.results if r.name == "latency")
    assert all(m["raw_mean_ms"] < -1000 for m in lat.metrics)  # received "before" the exchange sent it
    con = duckdb.connect(str(db))
    con.execute("UPDATE feed_sessions SET clock_offset_ns = NULL, clock_offset_bound_ns = NULL")
    con.close()
    assert _failing(_dq(db, window)) == {"latency"}


@pytest.mark.parametrize("fault", ["stall"])
@virtual_time
async def test_simulator_stall_fails_freshness(virtual_clock: VirtualClock, tmp_path: Path, fault: str) -> None:
    """A symbol's frames held back for 3.5 s: freshness reports the stall; sequence and integrity stay clean."""
    window = await _feed_run(virtual_clock, tmp_path / "t.duckdb", fault=fault)
    report = _dq(tmp_path / "t.duckdb", window)
    failing = _failing(report)
    assert "freshness" in failing and not failing & {"sequence", "integrity", "completeness"}, failing
    fresh = next(r for r in report.results if r.name == "freshness")
    assert {f["symbol"] for f in fresh.findings} == {"BTCUSDT"}, fresh.findings


@virtual_time
async def test_simulator_short_limits_pass_a_clean_run(
    virtual_clock: VirtualClock, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The second-scale limits the fault tests use find nothing dead or frozen in a clean run."""
    db, window = await _clean_run(virtual_clock, tmp_path_factory)
    report = _dq(db, window, **SHORT)
    assert _failing(report) == set(), [r.findings[:3] for r in report.results if not r.ok]


@pytest.mark.parametrize(
    ("fault", "issue", "channel"), [("mute", "dead_stream", "trades"), ("freeze", "frozen_stream", "ticker")]
)
@virtual_time
async def test_simulator_dead_or_frozen_stream_fails_freshness(
    virtual_clock: VirtualClock, tmp_path: Path, fault: str, issue: str, channel: str
) -> None:
    """BTCUSDT's aggTrade stream muted for 4 s, or its bookTicker frozen for 4 s, while the rest of its
    market moves: freshness finds exactly that stream, and no other check fails."""
    window = await _feed_run(virtual_clock, tmp_path / "t.duckdb", fault=fault)
    report = _dq(tmp_path / "t.duckdb", window, **SHORT)
    assert _failing(report) == {"freshness"}, [r.findings[:3] for r in report.results if not r.ok]
    fresh = next(r for r in report.results if r.name == "freshness")
    assert {(f["issue"], f["symbol"], f["channel"]) for f in fresh.findings} == {(issue, "BTCUSDT", channel)}
    (found,) = fresh.findings
    at = FAULT_AT_NS[tmp_path / "t.duckdb"]
    if fault == "mute":  # the silence spans the whole 4 s mute, to the first trade after it
        assert found["from_ns"] <= at and found["to_ns"] >= at + 4 * 10**9, (found, at)
        assert 4.0 <= found["longest_s"] < 4.5, found
    else:  # repeated values only while frozen: above the 2 s limit, never longer than the 4 s freeze
        assert at <= found["from_ns"] and found["to_ns"] <= at + 4 * 10**9, (found, at)
        assert 2.0 < found["longest_s"] <= 4.0, found
