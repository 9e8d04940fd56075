"""Latencies far beyond the recorder's default hour (a replayed capture, a clock years off) are reported
as they are, judged against the thresholds as they are, and printed whole in CI logs."""

from __future__ import annotations

import functools
import io
import math

import duckdb
import pytest
from rich.console import Console

from tests.dq.market import WINDOW, make_store
from tickpath.dq.checks import CheckResult, Thresholds
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.report import print_report
from tickpath.dq.run import DqConfig, DqReport, run_dq
from tickpath.errors import ConfigError

YEARS_MS = 170_000_000_000  # about 5.4 years: what replaying an old capture looks like
HOUR_MS = 3_600_000


def _aged_store(every: int) -> duckdb.DuckDBPyConnection:
    """The synthetic market with the event time of every ``every``-th trade pushed years back."""
    con = make_store(":memory:")
    con.execute(f"UPDATE trades SET event_time_ms = event_time_ms - {YEARS_MS} WHERE trade_id % {every} = 0")
    return con


@functools.cache
def _aged(every: int, p99_ms: float = 1000.0) -> tuple[DqReport, list[float]]:
    """The latency check on an aged store, and the exact trade latencies (ms) of futures/BTCUSDT."""
    con = _aged_store(every)
    exact = [
        r[0] / 1e6
        for r in con.execute(
            "SELECT receipt_ns - event_time_ms * 1000000 FROM trades WHERE venue = 'futures' ORDER BY 1"
        ).fetchall()
    ]
    report = run_dq(
        DqConfig(
            since_ns=WINDOW[0], until_ns=WINDOW[1], checks=("latency",), thresholds=Thresholds(latency_p99_ms=p99_ms)
        ),
        DuckDBEngine(connection=con),
    )
    return report, exact


def _latency(report: DqReport) -> CheckResult:
    return next(r for r in report.results if r.name == "latency")


def _trades_row(report: DqReport) -> dict[str, object]:
    return next(m for m in _latency(report).metrics if m["venue"] == "futures" and m["channel"] == "trades")


def _rank(exact: list[float], p: float) -> float:
    """The exact value at percentile ``p`` (HdrHistogram's rank rule)."""
    return exact[max(int(p * len(exact) / 100 + 0.5), 1) - 1]


def test_percentiles_of_years_of_latency_are_not_capped_at_an_hour() -> None:
    """Every trade years late: p50/p99/p99.9 match the true latency (3 digits), not the old 1 h cap."""
    report, exact = _aged(1)
    row = _trades_row(report)
    for key, p in (("p50_ms", 50.0), ("p99_ms", 99.0), ("p999_ms", 99.9)):
        value = row[key]
        assert isinstance(value, float) and isinstance(row["max_ms"], float)
        assert value > 1000 * HOUR_MS
        assert math.isclose(value, _rank(exact, p), rel_tol=1e-2), (key, value, _rank(exact, p))
        assert value <= row["max_ms"]  # no percentile above the maximum
    assert row["max_ms"] == pytest.approx(exact[-1], abs=0.001)


def test_finding_quotes_the_true_p99() -> None:
    """The latency finding names the p99 actually reported (years, also in words), not 3601330.078."""
    report, _ = _aged(1)
    row = _trades_row(report)
    detail = next(
        f["detail"] for f in _latency(report).findings if f["venue"] == "futures" and f["channel"] == "trades"
    )
    assert f"p99 {row['p99_ms']} ms (5.4 years) > 1000.0 ms" in detail
    assert "3601330" not in detail


def test_tail_beyond_an_hour_shows_in_p99_not_p50() -> None:
    """One trade in 20 years late: p50 stays at the real ~20 ms while p99 carries the years."""
    report, exact = _aged(20)
    row = _trades_row(report)
    assert isinstance(row["p50_ms"], float) and row["p50_ms"] < 100
    assert isinstance(row["p99_ms"], float) and math.isclose(row["p99_ms"], _rank(exact, 99.0), rel_tol=1e-2)


@pytest.mark.parametrize(("p99_ms", "ok"), [(10 * HOUR_MS, False), (1.5e11, False), (2e11, True)])
def test_threshold_above_an_hour_is_judged_on_the_true_value(p99_ms: float, ok: bool) -> None:
    """A p99 limit above the old 1 h cap fails when the true p99 (~1.7e11 ms) is above it, passes when below."""
    report, _ = _aged(1, p99_ms)
    assert _latency(report).ok is ok


@pytest.mark.parametrize(
    "field", ["latency_p99_ms", "latency_p999_ms", "min_completeness_ratio", "max_session_silence_s", "l2_lag_cadences"]
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_thresholds_refuse_limits_that_switch_a_check_off(field: str, value: float) -> None:
    """A library caller cannot build Thresholds with nan, inf or a negative limit either."""
    with pytest.raises(ConfigError, match=field):
        Thresholds(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_threshold_counts_are_whole_non_negative_numbers(value: object) -> None:
    """max_gaps takes a whole number >= 0 only."""
    with pytest.raises(ConfigError, match="max_gaps"):
        Thresholds(max_gaps=value)  # type: ignore[arg-type]


def _render(report: DqReport, **console: object) -> str:
    buf = io.StringIO()
    print_report(report, Console(file=buf, color_system=None, **console))  # type: ignore[arg-type]
    return buf.getvalue()


def test_report_in_a_ci_log_keeps_every_number_whole() -> None:
    """Not a terminal (80 columns): the latency table prints every figure in full, nothing cut with '…'."""
    report, _ = _aged(20)
    out = _render(report, width=80)
    assert "…" not in out
    for m in _latency(report).metrics:
        line = next(
            ln
            for ln in out.splitlines()
            if f" {m['venue']} " in ln and f" {m['channel']} " in ln and f" {m['symbol']} " in ln
        )
        for key in ("count", "mean_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms", "negative"):
            assert f" {m[key]} " in f"{line} ", (key, m[key], line)


def test_report_in_a_terminal_fits_its_width_and_shows_numbers_when_wide() -> None:
    """In a terminal the table stays within the width; at 200 columns the years-long figures fit whole."""
    report, _ = _aged(20)
    narrow = _render(report, width=80, force_terminal=True)
    assert max(len(ln) for ln in narrow.splitlines()) <= 80
    wide = _render(report, width=200, force_terminal=True)
    row = _trades_row(report)
    assert f" {row['p99_ms']} " in wide and f" {row['mean_ms']} " in wide
