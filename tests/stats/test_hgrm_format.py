"""The ``.hgrm`` text: every figure in one unit, and HdrHistogram's standard footer in every file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tickpath.stats import LatencyRecorder

FOOTER = re.compile(
    r"#\[Mean    = +(?P<mean>[\d.]+), StdDeviation   = +(?P<std>[\d.]+)\]\n"
    r"#\[Max     = +(?P<max>[\d.]+), Total count    = +(?P<count>\d+)\]\n"
    r"#\[Buckets = +(?P<buckets>\d+), SubBuckets     = +(?P<sub>\d+)\]\n$"
)


def _footer(text: str) -> dict[str, str]:
    m = FOOTER.search(text)
    assert m is not None, text[-300:]
    return m.groupdict()


def _spread() -> LatencyRecorder:
    rec = LatencyRecorder("spread")
    for v in range(100_000, 10_000_000, 10_000):  # 100 µs .. 10 ms, uniform
        rec.record(v)
    return rec


@pytest.mark.parametrize("unit", ["us", "ms"])
def test_stddev_is_in_the_same_unit_as_mean_and_max(tmp_path: Path, unit: str) -> None:
    """StdDeviation is scaled like Mean and Max (a uniform spread: std ~ range/sqrt(12), below max)."""
    rec = _spread()
    path = tmp_path / "x.hgrm"
    rec.write_hgrm(path, unit)
    f = _footer(path.read_text())
    scale = {"us": 1e3, "ms": 1e6}[unit]
    mean, std, top = float(f["mean"]), float(f["std"]), float(f["max"])
    assert std <= top
    assert std == pytest.approx((10_000_000 - 100_000) / 12**0.5 / scale, rel=0.02)
    assert mean == pytest.approx(rec.mean() / scale, rel=0.01)
    assert top == pytest.approx(rec.summary().max_ns / scale, rel=0.001)


def test_footer_is_the_standard_one_with_an_integer_total_count() -> None:
    """Non-empty and empty files share the header and footer: ``Total count`` as an integer."""
    rec = _spread()
    full, empty = rec.hgrm_text(), LatencyRecorder().hgrm_text()
    assert _footer(full)["count"] == str(rec.count)
    assert _footer(empty)["count"] == "0"
    assert "TotalCount     =" not in full and "TotalCount     =" not in empty
    assert full.splitlines()[0] == empty.splitlines()[0]
    assert _footer(full)["buckets"] == _footer(empty)["buckets"] != "0"


def test_body_rows_parse_and_end_at_percentile_one() -> None:
    """The body keeps HdrHistogram's rows (value, percentile, count, 1/(1-p)), the last at 1.0."""
    rec = _spread()
    text = rec.hgrm_text()
    rows = [line.split() for line in text.splitlines()[2:] if line and not line.startswith("#")]
    assert float(rows[-1][1]) == 1.0 and int(rows[-1][2]) == rec.count
    values = [float(r[0]) for r in rows]
    assert values == sorted(values) and values[-1] <= float(_footer(text)["max"])
