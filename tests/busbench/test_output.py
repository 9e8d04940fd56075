"""Output formats from a synthetic run (no server): text report, JSON, .hgrm, CSV, spectrum PNG."""

from __future__ import annotations

import itertools
import json
from array import array
from pathlib import Path

import pytest

from tickpath.busbench import output
from tickpath.busbench.local import LocalConfig
from tickpath.busbench.results import BenchResult, analyse, intended_ns
from tickpath.errors import ConfigError


def _result(lost_every: int = 0, rate: float = 1000.0) -> BenchResult:
    n, t0, interval = 500, 1_000_000, 1e9 / rate
    sent, recv = array("q", bytes(8 * n)), array("q", bytes(8 * n))
    for i in range(n):
        sent[i] = intended_ns(t0, i, interval) + 2_000
        if not (lost_every and i % lost_every == 0):
            recv[i] = sent[i] + 100_000 + (i % 100) * 1_000  # 100..199 µs after sending
    f = analyse(t0=t0, interval_ns=interval, warmup=0, sent_ns=sent, recv_ns=recv, keep_samples=True)
    return BenchResult(
        size=256,
        rate=rate,
        pub="nats://a:1",
        sub="nats://b:2",
        subject="s",
        warmup=0,
        measured=f["measured"],
        sent=f["sent"],
        received=f["received"],
        lost=f["lost"],
        warmup_lost=0,
        unsent=0,
        duplicates=0,
        reordered=0,
        achieved_rate=f["achieved_rate"],
        sustained=True,
        duration_s=f["duration_s"],
        intended=f["intended"],
        actual=f["actual"],
        send_lag=f["send_lag"],
        rtt_pub_ns=[40_000, 50_000],
        rtt_sub_ns=[45_000],
        samples=f["samples"],
    )


def test_report_and_json_carry_every_required_figure(tmp_path: Path) -> None:
    """The table has all nine percentiles; JSON has rates, bandwidth, RTTs, losses; files parse."""
    r = _result(lost_every=50)
    text = output.report_text(r)
    for p in ("10", "50", "75", "90", "99", "99.9", "99.99", "99.999", "100"):
        assert any(line.split()[:1] == [p] for line in text.splitlines()), p
    assert "lost 10" in text
    paths = output.write_run(r, tmp_path, samples=True)
    doc = json.loads(paths["json"].read_text())
    assert doc["lost"] == 10 and doc["ok"] is False
    assert doc["bandwidth_bytes_per_s"] == pytest.approx(doc["achieved_rate"] * 256, rel=1e-3)
    assert doc["rtt_pub"] == {"min": 40.0, "median": 45.0, "max": 50.0}
    assert 100 <= doc["latency_from_actual"]["p50"] <= 200
    assert doc["latency_from_intended"]["p100"] > doc["latency_from_actual"]["p100"]
    assert len(paths["samples"].read_text().splitlines()) == 1 + 490
    assert "Percentile" in paths["actual_hgrm"].read_text().splitlines()[0]


def test_spectrum_points_and_png(tmp_path: Path) -> None:
    """Spectrum x runs from 1 to 10^5 (0 to 99.999%), y never decreases; the PNG is written."""
    r = _result()
    pts = output.spectrum_points(r.intended)
    assert pts[0][0] == 1 and pts[-1][0] == pytest.approx(1e5)
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(pts))
    png = output.plot_spectrum([r, _result(rate=2000)], tmp_path / "s.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "p50 int" in output.matrix_text([r])


def test_local_config_needs_two_servers() -> None:
    """busbench local refuses one server (nothing to route) and netns with more than two."""
    with pytest.raises(ConfigError):
        LocalConfig(servers=1)
    with pytest.raises(ConfigError):
        LocalConfig(servers=3, netns=True)


def test_one_pass_percentiles_equal_single_queries() -> None:
    """The one-pass percentile query used for spectra returns what percentile() returns."""
    r = _result(lost_every=7)
    ps = [0.0, 10.0, 50.0, 75.0, 99.0, 99.9, 99.999, 100.0]
    assert output.percentiles_ns(r.intended, ps) == {p: r.intended.percentile(p) for p in ps}
