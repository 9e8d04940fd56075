"""A run that received nothing: no latency figures anywhere, not sustained, error shown, plot notes it."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import pytest

from tickpath.busbench import output
from tickpath.busbench.results import BenchResult, analyse, intended_ns
from tickpath.report.plots import PALETTE, series_style


def _result(*, receive: bool, size: int = 4096, rate: float = 1000.0) -> BenchResult:
    n, t0, interval = 200, 1_000_000, 1e9 / rate
    sent, recv = array("q", bytes(8 * n)), array("q", bytes(8 * n))
    for i in range(n):
        sent[i] = intended_ns(t0, i, interval) + 2_000
        if receive:
            recv[i] = sent[i] + 100_000 + (i % 50) * 1_000
    f = analyse(t0=t0, interval_ns=interval, warmup=0, sent_ns=sent, recv_ns=recv)
    errors = [] if receive else ["subscriber connection to nats://127.0.0.1:1 closed by the server"]
    return BenchResult(
        size=size,
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
        rtt_pub_ns=[],
        rtt_sub_ns=[],
        errors=errors,
    )


def test_json_has_null_latencies_and_not_sustained(tmp_path: Path) -> None:
    """Everything lost: every latency figure is null (not 0.0) and the run is not sustained."""
    r = _result(receive=False)
    doc = json.loads(output.write_run(r, tmp_path)["json"].read_text())
    assert doc["received"] == 0 and doc["lost"] == 200
    for key in ("latency_from_intended", "latency_from_actual"):
        lat = doc[key]
        assert lat["count"] == 0
        assert all(lat[k] is None for k in ("p50", "p99", "p100", "min", "max", "mean")), lat
    assert doc["sustained"] is False and doc["publisher_kept_rate"] is True
    ok = json.loads(output.write_run(_result(receive=True), tmp_path / "ok")["json"].read_text())
    assert ok["sustained"] is True and ok["latency_from_intended"]["p50"] > 0


def test_text_and_matrix_say_na_and_show_the_error() -> None:
    """The report and the matrix table print n/a instead of 0.0, flag the loss and name the error."""
    r = _result(receive=False)
    text = output.report_text(r)
    assert "min/median/max (intended): n/a" in text and "NOTHING RECEIVED" in text
    assert " 0.0 " not in text.split("min/median/max")[0]
    assert "error: subscriber connection" in text
    table = output.matrix_text([_result(receive=True, size=256), r])
    row = table.splitlines()[2]
    assert row.split()[3:7] == ["n/a"] * 4 and "!" in row
    assert "error: 4096 B @ 1000/s: subscriber connection" in table


def test_series_styles_stay_distinct_past_ten() -> None:
    """Up to 2x the palette every series differs from every other in colour or marker."""
    styles = [(s["color"], s.get("marker")) for s in map(series_style, range(2 * len(PALETTE)))]
    assert len(set(styles)) == len(styles)
    assert len({c for c, _ in styles[: len(PALETTE)]}) == len(PALETTE) >= 11


def test_spectrum_names_the_run_with_no_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """plot_spectrum gives 11 runs 11 colours and a legend entry for the run that received nothing."""
    import matplotlib.axes

    seen: list[tuple[str, str]] = []
    real_legend = matplotlib.axes.Axes.legend

    def spy(self: matplotlib.axes.Axes, *a: object, **k: object) -> object:
        for line in self.get_lines():
            if not str(line.get_label()).startswith("_"):
                seen.append((str(line.get_label()), str(line.get_color())))
        return real_legend(self, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", spy)
    runs = [_result(receive=True, size=64 * (i + 1)) for i in range(11)] + [_result(receive=False)]
    output.plot_spectrum(runs, tmp_path / "s.png")
    drawn = [c for label, c in seen if "no samples" not in label]
    assert len(drawn) == 11 and len(set(drawn)) == 11
    assert "4096 B @ 1,000/s: no samples (nothing received)" in [label for label, _ in seen]
