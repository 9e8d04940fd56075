"""HdrHistogram-backed latency recorder.

Why HdrHistogram: fixed memory, bounded relative error (3 significant digits here) across
nanoseconds to an hour, exact merging, and a standard text/encoded form that other tools read.
Losses (timeouts, failures) are counted next to the histogram, never recorded as values, so a
percentile never silently excludes them: the summary carries both.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from hdrh.histogram import HdrHistogram

from tickpath.errors import ConfigError

LOWEST_NS = 1
HIGHEST_NS = 3_600 * 1_000_000_000  # one hour
SIGNIFICANT_DIGITS = 3
SUMMARY_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9, 99.99)


@dataclass(frozen=True)
class LatencySummary:
    """Percentile summary of one recorder, all values in nanoseconds."""

    count: int
    losses: int
    min_ns: int
    mean_ns: float
    p50_ns: int
    p90_ns: int
    p99_ns: int
    p999_ns: int
    p9999_ns: int
    max_ns: int
    clamped: int = 0

    @property
    def loss_ratio(self) -> float:
        total = self.count + self.losses
        return self.losses / total if total else 0.0

    def to_dict(self, unit: str = "us") -> dict[str, Any]:
        """A JSON-ready dict with latency fields converted to ``unit`` (ns, us or ms)."""
        scale = _unit_scale(unit)
        out: dict[str, Any] = {"unit": unit}
        for key, value in asdict(self).items():
            if key.endswith("_ns"):
                out[key[:-3]] = round(value / scale, 3)
            else:
                out[key] = value
        out["loss_ratio"] = round(self.loss_ratio, 6)
        return out


def _unit_scale(unit: str) -> float:
    try:
        return {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
    except KeyError:
        raise ConfigError(f"unknown time unit {unit!r}: use ns, us, ms or s") from None


class LatencyRecorder:
    """Records latencies (ns) and losses; summarises, writes ``.hgrm``, encodes and merges."""

    def __init__(self, name: str = "", *, highest_ns: int = HIGHEST_NS) -> None:
        self.name = name
        self._hist = HdrHistogram(LOWEST_NS, highest_ns, SIGNIFICANT_DIGITS)
        self._highest = highest_ns
        self.losses = 0
        # Values below 1 ns (e.g. a negative clock-corrected one-way delay) cannot go into the
        # histogram; they are recorded as 1 ns and counted here so a report can say so.
        self.clamped = 0

    # -- recording -------------------------------------------------------------------------
    def record(self, value_ns: int | float) -> None:
        v = int(value_ns)
        if v < LOWEST_NS:
            self.clamped += 1
            v = LOWEST_NS
        elif v > self._highest:
            self.clamped += 1
            v = self._highest
        self._hist.record_value(v)

    def record_many(self, values_ns: Iterable[int | float]) -> None:
        for v in values_ns:
            self.record(v)

    def record_loss(self, n: int = 1) -> None:
        self.losses += n

    # -- reading ---------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self._hist.get_total_count())

    def percentile(self, p: float) -> int:
        return int(self._hist.get_value_at_percentile(p)) if self.count else 0

    def summary(self) -> LatencySummary:
        if not self.count:
            return LatencySummary(0, self.losses, 0, 0.0, 0, 0, 0, 0, 0, 0, self.clamped)
        p = [self.percentile(x) for x in SUMMARY_PERCENTILES]
        return LatencySummary(
            count=self.count,
            losses=self.losses,
            min_ns=int(self._hist.get_min_value()),
            mean_ns=float(self._hist.get_mean_value()),
            p50_ns=p[0],
            p90_ns=p[1],
            p99_ns=p[2],
            p999_ns=p[3],
            p9999_ns=p[4],
            max_ns=int(self._hist.get_max_value()),
            clamped=self.clamped,
        )

    def percentiles(self, ps: Iterable[float]) -> dict[float, int]:
        return {p: self.percentile(p) for p in ps}

    # -- .hgrm -----------------------------------------------------------------------------
    def write_hgrm(self, out: str | Path | IO[str], unit: str = "us") -> None:
        """Write the percentile distribution in HdrHistogram's ``.hgrm`` text format.

        Values are scaled to ``unit`` (microseconds by default), which is what HdrHistogram
        plotters expect to be told on their axis.
        """
        text = self.hgrm_text(unit)
        if isinstance(out, (str, Path)):
            Path(out).write_text(text, encoding="utf-8")
        else:
            out.write(text)

    def hgrm_text(self, unit: str = "us") -> str:
        buf = io.BytesIO()
        if self.count:
            self._hist.output_percentile_distribution(buf, _unit_scale(unit), 5)
        else:
            buf.write(b"       Value     Percentile TotalCount 1/(1-Percentile)\n\n")
            buf.write(b"#[Mean    =        0.000, StdDeviation   =        0.000]\n")
            buf.write(b"#[Max     =        0.000, Total count    =            0]\n")
            buf.write(b"#[Buckets =            0, SubBuckets     =            0]\n")
        return buf.getvalue().decode("ascii")

    # -- encode / merge --------------------------------------------------------------------
    def encode(self) -> str:
        """Lossless compressed base64 form (HdrHistogram V2 encoding), mergeable elsewhere."""
        encoded: bytes = self._hist.encode()
        return encoded.decode("ascii")

    @classmethod
    def decode(cls, encoded: str, name: str = "", *, losses: int = 0) -> LatencyRecorder:
        rec = cls(name)
        try:
            rec._hist = HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as exc:  # the decoder raises bare exceptions on corrupt input
            raise ConfigError(f"not a valid encoded HdrHistogram: {exc}") from exc
        rec._highest = int(rec._hist.highest_trackable_value)
        rec.losses = losses
        return rec

    def merge(self, other: LatencyRecorder) -> None:
        self._hist.add(other._hist)
        self.losses += other.losses
        self.clamped += other.clamped

    def to_dict(self, unit: str = "us") -> dict[str, Any]:
        """Summary plus the encoded histogram, the form stored in result JSON files."""
        d = self.summary().to_dict(unit)
        d["histogram"] = self.encode()
        return d


def merge_encoded(encoded: Iterable[str], name: str = "merged") -> LatencyRecorder:
    """Merge encoded histograms from several machines into one recorder."""
    total = LatencyRecorder(name)
    for e in encoded:
        total.merge(LatencyRecorder.decode(e))
    return total


def spectrum_percentiles(max_nines: int = 5) -> list[float]:
    """Percentiles for a percentile-spectrum plot: dense near 0, then 90, 99, ... up to ``max_nines``."""
    ps: list[float] = [0.0, 10.0, 25.0, 50.0, 75.0]
    for n in range(1, max_nines + 1):
        base = 100.0 - 10.0 ** (2 - n)  # 90, 99, 99.9, ...
        step = 10.0 ** (2 - n) / 5
        ps.extend(round(base + i * step, 6) for i in range(5))
    ps.append(100.0)
    return sorted(set(ps))


def spectrum(recorder: LatencyRecorder, max_nines: int = 5) -> list[tuple[float, int]]:
    """``(percentile, value_ns)`` pairs of a recorder for a percentile-spectrum plot."""
    if not recorder.count:
        return []
    return [(p, recorder.percentile(p)) for p in spectrum_percentiles(max_nines)]
