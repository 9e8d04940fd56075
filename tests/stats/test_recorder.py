"""Statistics core: percentiles, losses, .hgrm output, lossless encode and merge."""

from __future__ import annotations

import pytest

from tickpath.errors import ConfigError
from tickpath.stats import LatencyRecorder, merge_encoded


def test_percentiles_within_three_significant_digits() -> None:
    """Percentiles of 1..100000 µs come back within HdrHistogram's 0.1% relative error."""
    rec = LatencyRecorder("x")
    rec.record_many(v * 1000 for v in range(1, 100_001))
    s = rec.summary()
    assert s.count == 100_000
    assert s.p50_ns == pytest.approx(50_000_000, rel=1e-3)
    assert s.p99_ns == pytest.approx(99_000_000, rel=1e-3)
    assert s.p999_ns == pytest.approx(99_900_000, rel=1e-3)
    assert s.max_ns == pytest.approx(100_000_000, rel=1e-3)
    assert s.mean_ns == pytest.approx(50_000_500, rel=1e-3)


def test_losses_are_counted_beside_values_not_hidden() -> None:
    """Losses never enter the histogram but are reported with their ratio."""
    rec = LatencyRecorder()
    rec.record_many([1000] * 98)
    rec.record_loss(2)
    d = rec.summary().to_dict("us")
    assert d["count"] == 98 and d["losses"] == 2
    assert d["loss_ratio"] == pytest.approx(0.02)
    assert d["p50"] == pytest.approx(1.0, rel=1e-3)


def test_negative_values_are_clamped_and_counted() -> None:
    """A negative corrected delay is recorded at the floor and counted as clamped."""
    rec = LatencyRecorder()
    rec.record(-5)
    rec.record(10)
    assert rec.count == 2 and rec.clamped == 1


def test_encode_merge_is_lossless() -> None:
    """Histograms encoded on two machines merge into exactly the combined distribution."""
    a, b, both = LatencyRecorder(), LatencyRecorder(), LatencyRecorder()
    for i in range(1, 5000):
        a.record(i * 997)
        both.record(i * 997)
    for i in range(1, 3000):
        b.record(i * 13_001)
        both.record(i * 13_001)
    merged = merge_encoded([a.encode(), b.encode()])
    assert merged.count == both.count
    for p in (50, 90, 99, 99.9, 100):
        assert merged.percentile(p) == both.percentile(p)


def test_hgrm_is_readable_percentile_distribution() -> None:
    """The .hgrm text has the plotters' header, rows of 4 columns, and the summary footer."""
    rec = LatencyRecorder()
    rec.record_many(range(1000, 2_000_000, 1000))
    text = rec.hgrm_text("us")
    lines = text.splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    rows = [ln.split() for ln in lines[2:] if ln.strip() and not ln.startswith("#")]
    assert all(len(r) in (3, 4) for r in rows)
    values = [float(r[0]) for r in rows]
    assert values == sorted(values)
    assert float(rows[-1][1]) == pytest.approx(1.0)
    assert any(ln.startswith("#[Max") for ln in lines)


def test_decode_rejects_garbage() -> None:
    """A corrupt encoded histogram is a clear ConfigError."""
    with pytest.raises(ConfigError):
        LatencyRecorder.decode("not-a-histogram")


def test_empty_summary_and_unit_errors() -> None:
    """An empty recorder summarises to zeros; an unknown unit is a ConfigError."""
    rec = LatencyRecorder()
    rec.record_loss()
    assert rec.summary().count == 0 and rec.summary().losses == 1
    assert "Value" in rec.hgrm_text()
    with pytest.raises(ConfigError):
        rec.summary().to_dict("fortnights")


def test_spectrum_is_monotonic_and_reaches_max() -> None:
    """The percentile spectrum is non-decreasing and ends at the recorded maximum."""
    from tickpath.stats import spectrum

    rec = LatencyRecorder()
    rec.record_many(range(1_000, 10_000_000, 997))
    pts = spectrum(rec, max_nines=4)
    values = [v for _, v in pts]
    assert values == sorted(values)
    assert pts[-1][0] == 100.0 and values[-1] == rec.summary().max_ns
    assert spectrum(LatencyRecorder()) == []


def test_vectorised_percentiles_match_hdrhistogram() -> None:
    """The one-pass percentiles equal hdrh's own per-percentile walk, and decoded means stay close."""
    import random

    rng = random.Random(7)
    rec = LatencyRecorder()
    rec.record_many(int(rng.lognormvariate(11, 1.5)) + 1 for _ in range(20_000))
    for p in (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0):
        assert rec.percentile(p) == rec._hist.get_value_at_percentile(p)
    decoded = LatencyRecorder.decode(rec.encode())
    assert decoded.mean() == pytest.approx(rec._hist.get_mean_value(), rel=1e-9)
    assert decoded.mean() == pytest.approx(rec.mean(), rel=1e-3)
