"""Several instances per candidate: one figure from all of them, and the spread between them.

Instances of one (zone, instance type) land on different hosts and racks; how far apart their
figures are is the placement luck a sweep is hunting. A candidate is ranked on the **merged**
HdrHistograms of its instances (every sample of every instance in one distribution, exactly as if
one machine had taken them all), while each instance keeps its own figures and score, so the
spread is visible and the best instance is the one kept.

Merging needs each method's encoded ``histogram`` from every instance (``tickpath probe --json``
always writes it). A method without one in some instance falls back to the worst instance's
figures, and says so: a candidate must never look better for missing data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tickpath.errors import TickpathError
from tickpath.stats import LatencyRecorder
from tickpath.sweep.ranking import Metric, extract_figures

# Figures shown per instance and whose spread is reported, for each method the metric ranks on.
SPREAD_STATISTICS = ("p50", "p99")


@dataclass
class InstanceState:
    """One machine of a candidate: its result, figures and score (or why it has none)."""

    index: int
    status: str = "waiting"  # waiting -> reported | failed
    error: str | None = None
    figures: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    result: dict[str, Any] | None = None
    reported_unix: float | None = None

    def to_dict(self, keys: Sequence[str]) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "score_us": self.score,
            "figures_us": {k: self.figures[k] for k in keys if k in self.figures},
            "error": self.error,
        }


@dataclass(frozen=True)
class Merged:
    """A candidate's figures over all its usable instances, with the encoded merged histograms."""

    figures: dict[str, float]
    histograms: dict[str, str]  # method -> encoded merged HdrHistogram (ns)
    notes: tuple[str, ...] = ()


def spread_keys(metric: Metric) -> list[str]:
    """The figures whose per-instance values and spread are reported: p50/p99 of each ranked
    method, plus any other statistic the metric itself names."""
    keys = [f"{m}.{s}" for m in dict.fromkeys(t.method for t in metric.terms) for s in SPREAD_STATISTICS]
    return keys + [t.key for t in metric.terms if t.key not in keys]


def _method_bodies(probe: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    methods = probe.get("methods")
    if not isinstance(methods, Mapping):
        return {}
    return {str(m): b for m, b in methods.items() if isinstance(b, Mapping)}


def _merge_method(bodies: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], str] | None:
    """Figures (µs) and the encoded histogram of one method merged over instances, or None when an
    instance lacks a decodable histogram or a summary."""
    total = LatencyRecorder("merged")
    losses = 0
    weighted_mean = 0.0
    for body in bodies:
        encoded, summary = body.get("histogram"), body.get("summary")
        if not isinstance(encoded, str) or not encoded or not isinstance(summary, Mapping):
            return None
        try:
            total.merge(LatencyRecorder.decode(encoded))
        except TickpathError:
            return None
        count = summary.get("count")
        lost = summary.get("losses", 0)
        mean = summary.get("mean")
        losses += int(lost) if isinstance(lost, (int, float)) else 0
        if isinstance(count, (int, float)) and isinstance(mean, (int, float)):
            weighted_mean += float(mean) * float(count)
    total.losses = losses
    if not total.count:
        return None
    s = total.summary().to_dict("us")
    figures = {k: float(s[k]) for k in ("min", "p50", "p90", "p99", "p999", "p9999", "max")}
    # The instances' exact means, weighted by their counts (a decoded histogram only knows buckets).
    figures["mean"] = round(weighted_mean / total.count, 3) if weighted_mean else float(s["mean"])
    figures["loss_ratio"] = float(s["loss_ratio"])
    return figures, total.encode()


def merge_instances(probes: Sequence[Mapping[str, Any]]) -> Merged:
    """Merge the probe documents of a candidate's usable instances into one set of figures.

    With one document the figures are exactly :func:`extract_figures` of it (what a single-instance
    sweep ranks on). Methods not in every document are left out: an instance that did not measure
    a method cannot be averaged into it.
    """
    if len(probes) == 1:
        only = probes[0]
        own = {m: b["histogram"] for m, b in _method_bodies(only).items() if isinstance(b.get("histogram"), str)}
        return Merged(extract_figures(only), own)
    per_doc = [_method_bodies(p) for p in probes]
    common = [m for m in per_doc[0] if all(m in d for d in per_doc[1:])]
    figures: dict[str, float] = {}
    hists: dict[str, str] = {}
    notes: list[str] = []
    for method in common:
        merged = _merge_method([d[method] for d in per_doc])
        if merged is not None:
            figs, hists[method] = merged
            figures.update({f"{method}.{k}": v for k, v in figs.items()})
            continue
        # No histogram to merge: the worst instance's figure for each statistic, never the best.
        worst: dict[str, float] = {}
        for doc in probes:
            for key, value in extract_figures({"methods": {method: _method_bodies(doc)[method]}}).items():
                worst[key] = max(worst.get(key, value), value)
        if worst:
            figures.update(worst)
            notes.append(f"{method}: not every instance has a histogram; worst instance's figures used")
    return Merged(figures, hists, tuple(notes))


def spread(instances: Sequence[InstanceState], keys: Sequence[str]) -> dict[str, float]:
    """Max minus min across the reported instances of each figure and of the score (µs)."""
    usable = [i for i in instances if i.status == "reported"]
    out: dict[str, float] = {}
    scores = [i.score for i in usable if i.score is not None]
    if scores:
        out["score"] = round(max(scores) - min(scores), 3)
    for key in keys:
        values = [i.figures[key] for i in usable if key in i.figures]
        if values:
            out[key] = round(max(values) - min(values), 3)
    return out


def best_instance(instances: Sequence[InstanceState]) -> int | None:
    """Index of the reported instance with the lowest score (ties: the lower index)."""
    scored = [(i.score, i.index) for i in instances if i.status == "reported" and i.score is not None]
    return min(scored)[1] if scored else None


def describe_spread(instances: Sequence[InstanceState], keys: Sequence[str], best: int | None) -> str:
    """One line for the text output, e.g. ``3 instances merged; per instance ws.p50 2100.1/2150.0/
    2300.4 µs (spread 200.3 µs); best instance 1 kept``."""
    n = len(instances)
    usable = [i for i in instances if i.status == "reported"]
    parts = [f"{len(usable)} of {n} instances merged" if len(usable) < n else f"{n} instances merged"]
    for key in keys[:2]:
        values = [i.figures.get(key) for i in instances]
        shown = "/".join("-" if v is None else f"{v:.1f}" for v in values)
        known = [v for v in values if v is not None]
        if known:
            parts.append(f"per instance {key} {shown} µs (spread {max(known) - min(known):.1f} µs)")
    failed = [str(i.index) for i in instances if i.status == "failed"]
    if failed:
        parts.append(f"instance(s) {', '.join(failed)} failed")
    if best is not None:
        parts.append(f"best instance {best}")
    return "; ".join(parts)
