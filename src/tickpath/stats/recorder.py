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

import numpy as np
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
        # Exact running sum for the mean (None once merged with a decoded histogram of unknown sum).
        self._sum: int | None = 0

    # -- recording -------------------------------------------------------------------------
    def record(self, value_ns: int | float, count: int = 1) -> None:
        """Record ``value_ns`` (``count`` times); out-of-range values are clamped and counted."""
        v = int(value_ns)
        if v < LOWEST_NS:
            self.clamped += count
            v = LOWEST_NS
        elif v > self._highest:
            self.clamped += count
            v = self._highest
        self._hist.record_value(v, count)
        if self._sum is not None:
            self._sum += v * count

    def record_many(self, values_ns: Iterable[int | float]) -> None:
        for v in values_ns:
            self.record(v)

    def record_array(self, values_ns: Any) -> None:
        """Record every value of an array (ns) at once: the same result as :meth:`record` on each.

        hdrh's ``record_value`` is Python (~1-3 µs per value); hot paths that collect samples (the
        feed records two per frame) add them to the counters here with one numpy pass, doing the
        bucket arithmetic of hdrh's ``_counts_index_for`` vectorised.
        """
        a = np.asarray(values_ns)
        if a.size == 0:
            return
        if self._highest >= 1 << 53:  # beyond float64's exact integers: the per-value path
            self.record_many(a.tolist())
            return
        a = a.astype(np.int64, copy=False) if a.dtype.kind in "iu" else np.trunc(a).astype(np.int64)
        low = int(np.count_nonzero(a < LOWEST_NS))
        high = int(np.count_nonzero(a > self._highest))
        if low or high:
            self.clamped += low + high
            a = np.clip(a, LOWEST_NS, self._highest)
        h = self._hist
        # bit length of (v | sub_bucket_mask): exact through float64, values are at most 2**53 here
        pow2ceiling = np.frexp((a | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
        bucket = pow2ceiling - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
        sub = a >> (bucket + h.unit_magnitude)
        index = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + (sub - h.sub_bucket_half_count)
        added = np.bincount(index)
        counters = np.ctypeslib.as_array(h.counts)
        counters[: added.size] += added.astype(counters.dtype)
        h.total_count += int(a.size)
        h.min_value = min(h.min_value, int(a.min()))
        h.max_value = max(h.max_value, int(a.max()))
        if self._sum is not None:
            # int64 sums stay exact for chunks of a million values below HIGHEST_NS (about 2**42)
            self._sum += sum(int(a[i : i + 1_000_000].sum()) for i in range(0, a.size, 1_000_000))

    def record_loss(self, n: int = 1) -> None:
        self.losses += n

    # -- reading ---------------------------------------------------------------------------
    # hdrh walks its ~11k counters in pure Python for every percentile and for the mean; these
    # read the same counters with numpy in one vectorised pass, with identical results.
    @property
    def count(self) -> int:
        return int(self._hist.get_total_count())

    def _counts(self) -> np.ndarray:
        h = self._hist
        n = min(h.counts_len, h.encoder.payload.counts_len)
        return np.ctypeslib.as_array(h.counts)[:n].astype(np.int64)

    def _index_values(self, n: int) -> np.ndarray:
        """Lowest value of each counter index (hdrh's ``get_value_from_index``, vectorised)."""
        h = self._hist
        idx = np.arange(n, dtype=np.int64)
        bucket = (idx >> h.sub_bucket_half_count_magnitude) - 1
        sub = (idx & (h.sub_bucket_half_count - 1)) + h.sub_bucket_half_count
        low = bucket < 0
        sub = np.where(low, sub - h.sub_bucket_half_count, sub)
        bucket = np.where(low, 0, bucket)
        values: np.ndarray = sub << (bucket + h.unit_magnitude)
        return values

    def percentiles(self, ps: Iterable[float]) -> dict[float, int]:
        """Values at several percentiles in one pass (HdrHistogram semantics: highest equivalent value)."""
        wanted = list(ps)
        total = self.count
        if not total:
            return {p: 0 for p in wanted}
        counts = self._counts()
        cum = np.cumsum(counts)
        out: dict[float, int] = {}
        for p in wanted:
            target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
            i = int(np.searchsorted(cum, target, side="left"))
            value = int(self._hist.get_value_from_index(i))
            out[p] = (
                int(self._hist.get_highest_equivalent_value(value))
                if p
                else int(self._hist.get_lowest_equivalent_value(value))
            )
        return out

    def percentile(self, p: float) -> int:
        return self.percentiles([p])[p]

    def mean(self) -> float:
        """Exact mean of recorded values when recorded here; bucket-median mean after decode."""
        if not self.count:
            return 0.0
        if self._sum is not None:
            return self._sum / self.count
        counts = self._counts()
        nz = np.nonzero(counts)[0]
        h = self._hist
        medians = [h._hdr_median_equiv_value(int(v)) for v in self._index_values(len(counts))[nz]]
        return float(np.dot(counts[nz].astype(np.float64), np.array(medians, dtype=np.float64)) / self.count)

    def summary(self) -> LatencySummary:
        if not self.count:
            return LatencySummary(0, self.losses, 0, 0.0, 0, 0, 0, 0, 0, 0, self.clamped)
        pv = self.percentiles(SUMMARY_PERCENTILES)
        p = [pv[x] for x in SUMMARY_PERCENTILES]
        return LatencySummary(
            count=self.count,
            losses=self.losses,
            min_ns=int(self._hist.get_min_value()),
            mean_ns=self.mean(),
            p50_ns=p[0],
            p90_ns=p[1],
            p99_ns=p[2],
            p999_ns=p[3],
            p9999_ns=p[4],
            max_ns=int(self._hist.get_max_value()),
            clamped=self.clamped,
        )

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
        """The ``.hgrm`` text, every figure (values, mean, standard deviation, max) in ``unit``.

        The body comes from hdrh; the footer is written here in HdrHistogram's own form (the Java
        and C libraries': ``Total count`` as an integer), because hdrh's footer prints the standard
        deviation unscaled (in ns while the rest is in ``unit``) and the count as a float. Empty
        and non-empty histograms get the same header and footer.
        """
        scale = _unit_scale(unit)
        h = self._hist
        digits = h.significant_figures
        buf = io.BytesIO()
        if self.count:
            h.output_percentile_distribution(buf, scale, 5)
            body = buf.getvalue().decode("ascii")
            body = body[: body.index("#[Mean")]  # hdrh's footer is replaced below
            mean = h.get_mean_value() / scale
            stddev = h.get_stddev() / scale
            max_value = h.get_max_value() / scale
        else:
            body = f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}\n\n"
            mean = stddev = max_value = 0.0
        footer = (
            f"#[Mean    = {mean:12.{digits}f}, StdDeviation   = {stddev:12.{digits}f}]\n"
            f"#[Max     = {max_value:12.{digits}f}, Total count    = {self.count:12d}]\n"
            f"#[Buckets = {h.bucket_count:12d}, SubBuckets     = {h.sub_bucket_count:12d}]\n"
        )
        return body + footer

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
        rec._sum = None
        return rec

    def merge(self, other: LatencyRecorder) -> None:
        self._hist.add(other._hist)
        self._sum = None if (self._sum is None or other._sum is None) else self._sum + other._sum
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
