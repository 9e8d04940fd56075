"""Every stream judged: a dead trades or ticker stream and a frozen ticker fail freshness in a busy
market (and not in a quiet one), with limits per channel and venue and the stream's own cadence; a
session without its close record is said to be one, and judged up to its last row once it is over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dq.market import (
    KILLED_AT_S,
    T0_MS,
    WINDOW,
    Defects,
    build_events,
    killed_store,
    shared_report,
    shared_store,
)
from tickpath.dq.checks import CheckResult, Thresholds
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, DqReport, run_dq
from tickpath.errors import ConfigError


def _run(defects: Defects, th: Thresholds | None = None, engine: DuckDBEngine | None = None) -> DqReport:
    """Every check (what ``_failing`` and ``report.ok`` need)."""
    if th is None and engine is None:
        return shared_report(defects)
    engine = engine or DuckDBEngine(connection=shared_store(defects))
    return run_dq(DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1], thresholds=th or Thresholds()), engine)


def _fresh(defects: Defects, th: Thresholds | None = None, engine: DuckDBEngine | None = None) -> CheckResult:
    """The freshness check alone, for assertions on it only (each check's rows are its own query)."""
    engine = engine or DuckDBEngine(connection=shared_store(defects))
    config = DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1], thresholds=th or Thresholds(), checks=("freshness",))
    return _check(run_dq(config, engine))


def _check(report: DqReport, name: str = "freshness") -> CheckResult:
    return next(r for r in report.results if r.name == name)


def _failing(report: DqReport) -> set[str]:
    return {r.name for r in report.results if not r.ok}


@pytest.mark.parametrize("channel", ["trades", "ticker"])
def test_a_dead_stream_in_a_busy_market_fails_freshness_only(channel: str) -> None:
    """From 5 s on one channel sends nothing while the others go on: a 'dead_stream' per symbol, with
    its silence to the session's end and the busy seconds of the other channels; nothing else fails."""
    report = _run(Defects(dead_channel=channel, dead_at_s=5))
    assert _failing(report) == {"freshness"}, [r.summary for r in report.results if not r.ok]
    fresh = _check(report)
    dead = [f for f in fresh.findings if f["issue"] == "dead_stream"]
    assert {(f["symbol"], f["channel"]) for f in dead} == {("BTCUSDT", channel), ("ETHBTC", channel)}
    for f in dead:
        assert f["longest_s"] > 60 and f["from_ns"] < (T0_MS + 5_500) * 1_000_000
        assert f["busy_s"] >= 0.9 * f["longest_s"]  # the symbol was busy nearly every second
    assert fresh.counts["dead_stream"] == 2 and fresh.counts["stalls"] == 0


def test_a_quiet_market_is_no_dead_stream() -> None:
    """With strict limits, a 20 s lull with no trade or book change fails nothing: every channel went
    quiet together, which is a market, not a dead stream."""
    th = Thresholds(dead_after_s={"trades": 5, "ticker": 5}, frozen_after_s={"ticker": 5})
    report = _run(Defects(quiet_at_s=30, quiet_s=20), th)
    assert report.ok, [r.findings[:2] for r in report.results if not r.ok]
    dead = [m for m in _check(report).metrics if m["kind"] == "dead"]
    assert dead and max(m["longest_s"] for m in dead) >= 19  # the lull is the silence it judged


def test_dead_stream_limits_per_channel_venue_and_cadence() -> None:
    """A venue's own limit overrides the channel's; a limit of many own cadences lets a stream whose
    messages are that sparse be silent that long."""
    defects = Defects(dead_channel="trades", dead_at_s=5)
    by_venue = _fresh(defects, Thresholds(dead_after_s={"trades": 60, "futures/trades": 100}))
    assert {f["venue"] for f in by_venue.findings} == {"spot"}
    assert {m["venue"]: m["limit_s"] for m in by_venue.metrics if m["kind"] == "dead" and m["channel"] == "trades"} == {
        "futures": 100,
        "spot": 60,
    }
    # trades came every ~0.2 s before they died: 1000 such intervals exceed the 65 s silence
    assert _fresh(defects, Thresholds(dead_after_cadences=1000)).ok
    assert not _fresh(defects, Thresholds(dead_after_cadences=100)).ok


def test_a_dead_stream_is_judged_against_the_busy_share() -> None:
    """Busy seconds are evidence: asking for more than the symbol had turns the finding off."""
    defects = Defects(dead_channel="ticker", dead_at_s=5)
    assert not _fresh(defects).ok
    assert _fresh(defects, Thresholds(min_busy_share=1.0)).ok  # not *every* second had messages


def test_a_frozen_ticker_fails_freshness_only() -> None:
    """Tickers that keep coming with the same bid/ask and sizes for 65 s while trades and depth move:
    one 'frozen_stream' per symbol, counted in frames; nothing else fails."""
    report = _run(Defects(frozen_at_s=3, frozen_s=70))
    assert _failing(report) == {"freshness"}, [r.summary for r in report.results if not r.ok]
    frozen = [f for f in _check(report).findings if f["issue"] == "frozen_stream"]
    assert {f["symbol"] for f in frozen} == {"BTCUSDT", "ETHBTC"}
    for f in frozen:
        assert f["channel"] == "ticker" and f["longest_s"] > 60 and f["messages"] > 100
        assert "unchanged bid/ask" in f["detail"]


def test_a_short_freeze_passes_the_default_and_fails_a_stricter_limit() -> None:
    """20 s of unchanged tickers is within the default minute, and over a 10 s limit."""
    defects = Defects(frozen_at_s=20, frozen_s=20)
    assert _fresh(defects).ok
    strict = _fresh(defects, Thresholds(frozen_after_s={"ticker": 10}))
    assert {f["issue"] for f in strict.findings} == {"frozen_stream"}
    assert all(18 <= f["longest_s"] <= 21 for f in strict.findings)
    assert _fresh(defects, Thresholds(frozen_after_s={"ticker": 10}, frozen_min_frames=10**6)).ok


@pytest.mark.parametrize(
    "bad",
    [
        {"dead_after_s": {"l2": 5}},
        {"dead_after_s": {"futures/quotes": 5}},
        {"dead_after_s": {"trades": float("nan")}},
        {"frozen_after_s": {"trades": 5}},
        {"min_busy_share": 1.5},
        {"frozen_min_frames": 2.5},
    ],
)
def test_bad_liveness_thresholds_are_refused(bad: dict[str, Any]) -> None:
    """A limit for a channel that has none, a nan, a share above 1, a fractional count: ConfigError."""
    with pytest.raises(ConfigError, match="threshold"):
        Thresholds(**bad)


# --- sessions without their close record ----------------------------------------------------------


def test_an_open_session_whose_writer_is_gone_is_judged_to_its_last_row(tmp_path: Path) -> None:
    """A store nobody writes, holding a session without its close record: a note says it ended
    without one, and freshness passes (judged up to its last row, not up to the window's end)."""
    db = tmp_path / "t.duckdb"
    killed_store(str(db))
    engine = DuckDBEngine(db)
    assert engine.writer_gone
    report = _run(Defects(), engine=engine)
    fresh = _check(report)
    assert report.ok, fresh.findings[:3]
    assert [(n["issue"], n["session"]) for n in fresh.notes] == [("unclosed_session", "s1")] * 2
    assert all("no process is writing the store" in n["detail"] for n in fresh.notes)
    last = max(e.receipt_ns for e in build_events(70.0) if e.receipt_ns < (T0_MS + KILLED_AT_S * 1000) * 1_000_000)
    assert max(n["at_ns"] for n in fresh.notes) == last
    assert fresh.counts["unclosed_sessions"] == 2


def test_an_open_session_that_may_still_run_is_judged_to_the_window_end(tmp_path: Path) -> None:
    """The same rows through a connection (a writer may hold it): the session may be running, so its
    silence up to the window's end fails, and the note says it may have died."""
    db = tmp_path / "t.duckdb"
    killed_store(str(db))
    engine = DuckDBEngine(connection=duckdb.connect(str(db), read_only=True))
    assert not engine.writer_gone
    fresh = _fresh(Defects(), engine=engine)
    assert not fresh.ok and "session_silence" in {f["issue"] for f in fresh.findings}
    assert fresh.notes and all("still running, or it died" in n["detail"] for n in fresh.notes)


def test_a_later_session_closes_a_killed_one(tmp_path: Path) -> None:
    """Even where a writer may be alive, a session of the same venue that began after the open
    session's last row proves the old one over: judged to its last row, the note says why."""
    db = tmp_path / "t.duckdb"
    killed_store(str(db), restarted=True)
    engine = DuckDBEngine(connection=duckdb.connect(str(db), read_only=True))
    report = _run(Defects(), engine=engine)
    fresh = _check(report)
    assert report.ok, [r.findings[:3] for r in report.results if not r.ok]
    assert {(n["session"], n["venue"]) for n in fresh.notes} == {("s1", "futures"), ("s1", "spot")}
    assert all("a later session began" in n["detail"] for n in fresh.notes)
