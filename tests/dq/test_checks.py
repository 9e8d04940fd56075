"""Each seeded defect makes exactly its check fail; a clean market passes every check."""

from __future__ import annotations

import duckdb
import pytest

from tests.dq.market import WINDOW, Defects, shared_report, shared_store
from tickpath.dq.checks import CHECKS, Thresholds
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, DqReport, run_dq
from tickpath.errors import ConfigError


def run(defects: Defects | None = None, **kw: object) -> DqReport:
    if not kw:
        return shared_report(defects)  # the same store judged the same way: once per process
    con = shared_store(defects)
    return run_dq(DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1], **kw), DuckDBEngine(connection=con))  # type: ignore[arg-type]


def failing(report: DqReport) -> set[str]:
    return {r.name for r in report.results if not r.ok}


def test_clean_market_passes_every_check() -> None:
    """A market with no defect passes all five checks, and every check actually saw data."""
    report = run()
    assert report.ok, [r.summary for r in report.results if not r.ok]
    assert {r.name for r in report.results} == set(CHECKS)
    assert report.rows_in_window["l2"] > 500 and report.rows_in_window["trades"] > 500
    lat = next(r for r in report.results if r.name == "latency")
    assert {m["channel"] for m in lat.metrics} == {"trades", "ticker", "l2"}


@pytest.mark.parametrize(
    ("defects", "check"),
    [
        (Defects(gap_at_s=30), "sequence"),
        (Defects(reset_at_s=30), "sequence"),
        (Defects(lost_trade_row_at_s=30), "sequence"),
        (Defects(stall_at_s=30), "freshness"),
        (Defects(session_stall_at_s=30), "freshness"),
        (Defects(clock_offset_ms=1500), "latency"),
        (Defects(clock_offset_ms=-800), "latency"),
        (Defects(crossed_at_s=30), "integrity"),
        (Defects(duplicate_trade_at_s=30), "integrity"),
        (Defects(depth_every_ms=1000), "completeness"),
    ],
    ids=[
        "gap",
        "reset",
        "lost-row",
        "l2-stall",
        "session-stall",
        "clock-behind",
        "clock-ahead",
        "crossed",
        "duplicate",
        "slow-depth",
    ],
)
def test_seeded_defect_fails_exactly_its_check(defects: Defects, check: str) -> None:
    """One seeded defect fails its own check and no other."""
    assert failing(run(defects)) == {check}


def test_gap_is_reported_with_its_ids_and_time_range() -> None:
    """A dropped delta is a 'gap' per symbol, with the update ids and the receipt times around it."""
    seq = next(r for r in run(Defects(gap_at_s=30)).results if r.name == "sequence")
    gaps = [f for f in seq.findings if f["issue"] == "gap"]
    assert {f["venue"] for f in gaps} == {"futures", "spot"}
    for f in gaps:
        assert f["from_ns"] < f["to_ns"]
        assert "previous u=" in f["detail"]
    assert seq.counts["gaps"] == 2


def test_reset_reports_resync_time_range() -> None:
    """A feed reset is counted and reported from the last good delta to the snapshot that resynced it."""
    seq = next(r for r in run(Defects(reset_at_s=30)).results if r.name == "sequence")
    resets = [f for f in seq.findings if f["issue"] == "reset"]
    assert resets and all(f["to_ns"] - f["from_ns"] >= 300_000_000 for f in resets)
    assert seq.counts["resync"] == seq.counts["reset"]


def test_top_n_filtering_is_not_a_gap() -> None:
    """Top-N deltas with invisible updates folded into their U/u range pass; fewer deltas, no gaps."""
    full, top = run(), run(Defects(top_n=10))
    assert top.ok, [r.summary for r in top.results if not r.ok]
    assert top.rows_in_window["l2"] < full.rows_in_window["l2"] * 0.8


def test_top_n_upstream_gap_is_still_a_gap() -> None:
    """A real upstream hole in top-N mode still fails the sequence check."""
    assert failing(run(Defects(top_n=10, gap_at_s=30))) == {"sequence"}


def test_recorded_clock_offset_corrects_latency() -> None:
    """With the feed's offset estimate recorded, the same skewed receipts pass and read as corrected."""
    report = run(Defects(clock_offset_ms=1500, recorded_offset=True))
    lat = next(r for r in report.results if r.name == "latency")
    assert lat.ok
    for m in lat.metrics:
        assert m["clock"] == "corrected"
        assert 20 <= m["p50_ms"] <= 26 and m["raw_mean_ms"] > 1500


def test_latency_counts_messages_not_levels() -> None:
    """Latency counts one value per message: the count equals the rows with an event time."""
    con = shared_store()
    report = run_dq(DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1], checks=("latency",)), DuckDBEngine(connection=con))
    expected = sum(
        con.execute(q).fetchone()[0]
        for q in (  # type: ignore[index]
            "SELECT count(*) FROM trades WHERE event_time_ms IS NOT NULL",
            "SELECT count(*) FROM tickers WHERE event_time_ms IS NOT NULL",
            "SELECT count(*) FROM l2 WHERE kind = 'delta' AND event_time_ms IS NOT NULL",
        )
    )
    assert sum(m["count"] for m in report.results[0].metrics) == expected


def test_latency_threshold_is_configurable() -> None:
    """The p99 limit decides: the clean market fails a 10 ms limit (true latency is ~20-25 ms)."""
    report = run(checks=("latency",), thresholds=Thresholds(latency_p99_ms=10))
    assert failing(report) == {"latency"}


def test_quiet_market_is_not_a_stall() -> None:
    """20 s without trades or book changes (a quiet market) fails nothing, though the silence is reported."""
    report = run(Defects(quiet_at_s=40, quiet_s=20))
    assert report.ok
    fresh = next(r for r in report.results if r.name == "freshness")
    assert fresh.ok
    silence = [m for m in fresh.metrics if m["kind"] == "stream" and m["symbol"] == "ETHBTC"]
    assert max(m["longest_s"] for m in silence) >= 19


def test_empty_window_is_an_error_not_a_pass() -> None:
    """A window without rows raises ConfigError naming the window, rather than passing vacuously."""
    con = shared_store()
    with pytest.raises(ConfigError, match="no trades, tickers or l2 rows"):
        run_dq(DqConfig(since_ns=1, until_ns=2), DuckDBEngine(connection=con))


def test_not_a_tickpath_store_is_a_config_error(tmp_path: object) -> None:
    """A DuckDB file without tickpath's tables is rejected with a clear message."""
    con = duckdb.connect(":memory:")
    with pytest.raises(ConfigError, match="not a tickpath store"):
        DuckDBEngine(connection=con)


def test_unknown_check_name_is_rejected() -> None:
    """Asking for a check that does not exist names the real ones."""
    with pytest.raises(ConfigError, match="checks are latency"):
        run(checks=("nope",))
