"""Clamped samples: the mean stays within the recorded range and the result carries a warning."""

from __future__ import annotations

from tickpath.probe.caveats import clamp_warning, sample_warnings
from tickpath.probe.schedule import MethodStats, summarize
from tickpath.probe.stream import StreamResult
from tickpath.stats import LatencyRecorder

YEARS_NS = 5 * 365 * 86_400 * 10**9  # a replayed capture's event times: years in the past


def _replayed_stream() -> StreamResult:
    s = StreamResult("127.0.0.1", {"sushiusdt@depth": "depth"})
    now_ns = 1_800_000_000_000_000_000
    for i in range(20):
        event_ms = (now_ns - YEARS_NS) // 1_000_000 + i
        s.on_message(b'{"stream":"sushiusdt@depth","data":{"e":"depthUpdate","E":%d}}' % event_ms, now_ns)
    return s


def test_mean_never_exceeds_max_when_samples_were_clamped() -> None:
    """Years-old event times clamp to the 1-hour ceiling; the mean is over the recorded values."""
    _, summary = _replayed_stream().headline_summary(None)
    assert summary["clamped"] == 20
    assert summary["mean"] <= summary["max"]
    assert summary["min"] <= summary["mean"]


def test_summarize_keeps_the_exact_mean_when_nothing_was_clamped() -> None:
    """Without clamping the running sum still gives the exact arithmetic mean."""
    st = MethodStats.new("tcp", ["a"])
    for v in (1_000, 2_000, 6_000):
        st.record("a", v, v)
    assert summarize(st.overall.latency, st.overall.total_ns).mean_ns == 3_000


def test_replayed_stream_gets_a_warning_naming_the_cause() -> None:
    """Every sample above the ceiling: the warning says event times are far in the past (replay/clock)."""
    s = _replayed_stream()
    _, summary = s.headline_summary(None)
    methods = {"stream": {"summary": summary, **s.to_dict(None)}}
    warnings = sample_warnings(methods)
    assert warnings and warnings[0].startswith("stream: 20 of 20 samples")
    assert "far in the past" in warnings[0] and "replay" in warnings[0]


def test_negative_delays_get_their_own_warning_and_clean_runs_none() -> None:
    """Values below 1 ns are called negative one-way delays; an unclamped summary gives no warning."""
    rec = LatencyRecorder()
    rec.record_many([-5_000, 10_000, 20_000])
    w = clamp_warning("stream depth.E raw", rec.summary().to_dict())
    assert w is not None and "negative one-way delays" in w and "1 of 3" in w
    clean = LatencyRecorder()
    clean.record_many([10_000, 20_000])
    assert sample_warnings({"tcp": {"summary": clean.summary().to_dict()}}) == []


def test_probe_json_and_text_carry_the_warning() -> None:
    """ProbeResult's JSON has a ``warnings`` list and the text output prints each as 'warning'."""
    import io
    import time

    from rich.console import Console

    from tickpath.probe.config import ProbeConfig
    from tickpath.probe.report import print_warnings, render_table
    from tickpath.probe.runner import ProbeResult

    r = ProbeResult(ProbeConfig(host="127.0.0.1", methods=("stream",)), started=time.time())
    r.stream = _replayed_stream()
    r.finished = time.time()
    data = r.to_dict()
    assert len(data["warnings"]) == 1 and "likewise the series depth.E raw" in data["warnings"][0]
    assert data["methods"]["stream"]["summary"]["mean"] <= data["methods"]["stream"]["summary"]["max"]
    for show in (print_warnings, render_table):
        buf = io.StringIO()
        show(r, Console(file=buf, width=400))
        assert "warning stream: 20 of 20 samples" in buf.getvalue()


def test_series_clamped_for_another_cause_get_their_own_warning() -> None:
    """A raw series clamped low beside an unclamped headline: one warning naming the series."""
    low = LatencyRecorder()
    low.record_many([-5_000, 10_000])
    clean = LatencyRecorder()
    clean.record_many([10_000, 20_000])
    methods = {
        "stream": {
            "summary": clean.summary().to_dict(),
            "per_type": {"depth": {"E": {"raw": low.summary().to_dict(), "corrected": clean.summary().to_dict()}}},
        }
    }
    assert sample_warnings(methods) == [
        "stream series depth.E raw: samples were outside the recorder's 1 ns to 1 hour range and clamped to "
        "1 ns: negative one-way delays, i.e. the local clock is behind the exchange's by more than the "
        "latency; use the clock-corrected figures"
    ]
