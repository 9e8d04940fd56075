"""Ranking metrics: ``ws.p99``, ``tcp.p50`` or weighted mixes such as ``0.7*ws.p99 + 0.3*tcp.p50``.

A metric is a sum of terms ``[weight *] method.statistic`` over figures a probe reports, in
microseconds; lower is better. :func:`doomed` decides when a candidate can no longer be among the
winners, which is what lets the orchestrator destroy losers while other results are still pending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tickpath.errors import ConfigError

STATISTICS = ("min", "mean", "p50", "p90", "p99", "p999", "p9999", "max")
_TERM_RE = re.compile(r"^\s*(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<m>[a-z]+)\.(?P<s>[a-z0-9]+)\s*$")


@dataclass(frozen=True)
class Term:
    """One weighted figure of a metric, e.g. ``0.7 * ws.p99``."""

    weight: float
    method: str
    statistic: str

    @property
    def key(self) -> str:
        return f"{self.method}.{self.statistic}"


@dataclass(frozen=True)
class Metric:
    """A parsed ranking metric: the weighted sum of its terms (µs, lower is better)."""

    text: str
    terms: tuple[Term, ...]

    def evaluate(self, figures: Mapping[str, float]) -> float:
        """The metric's value for one candidate; raises if a figure is missing."""
        missing = [t.key for t in self.terms if t.key not in figures]
        if missing:
            raise ConfigError(f"metric {self.text!r} needs {missing}, which the probe result lacks")
        return sum(t.weight * figures[t.key] for t in self.terms)

    def explain(self, figures: Mapping[str, float]) -> str:
        """Human-readable breakdown, e.g. ``0.7*ws.p99=812.0 + 0.3*tcp.p50=95.1``."""
        return " + ".join(
            (f"{t.weight:g}*" if t.weight != 1.0 else "") + f"{t.key}={figures.get(t.key, float('nan')):.1f}µs"
            for t in self.terms
        )


def parse_metric(text: str) -> Metric:
    """Parse ``ws.p99``, ``tcp.p50`` or ``0.7*ws.p99 + 0.3*tcp.p50``."""
    if not text.strip():
        raise ConfigError("ranking metric is empty; use e.g. 'ws.p99' or '0.7*ws.p99 + 0.3*tcp.p50'")
    terms = []
    for part in text.split("+"):
        m = _TERM_RE.match(part)
        if not m:
            raise ConfigError(
                f"cannot parse metric term {part.strip()!r} in {text!r}: "
                "write [weight*]method.statistic, e.g. 0.7*ws.p99"
            )
        if m["s"] not in STATISTICS:
            raise ConfigError(f"unknown statistic {m['s']!r} in metric {text!r}; use one of {', '.join(STATISTICS)}")
        weight = float(m["w"]) if m["w"] else 1.0
        if weight <= 0:
            raise ConfigError(f"metric weights must be positive, got {weight} in {text!r}")
        terms.append(Term(weight, m["m"], m["s"]))
    keys = [t.key for t in terms]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"metric {text!r} names the same figure twice")
    return Metric(text.strip(), tuple(terms))


def _summary_figures(summary: Mapping[str, Any]) -> dict[str, float]:
    return {
        s: float(summary[s])
        for s in (*STATISTICS, "loss_ratio")
        if isinstance(summary.get(s), (int, float)) and not isinstance(summary.get(s), bool)
    }


def extract_figures(probe: Mapping[str, Any]) -> dict[str, float]:
    """Flatten a ``tickpath probe --json`` document into ``{"ws.p99": µs, ...}``.

    Per method the probe reports an overall ``summary`` (µs, all addresses together) and one per
    address (``per_ip``). The overall summary is used; a document with only per-address summaries
    uses the address with the lowest p50, taking its figures together (never mixing percentiles of
    different addresses). ``<method>.loss_ratio`` is carried along so losses are never hidden.
    """
    methods = probe.get("methods")
    if not isinstance(methods, Mapping):
        raise ConfigError("probe result has no 'methods' table")
    out: dict[str, float] = {}
    for method, body in methods.items():
        if not isinstance(body, Mapping):
            continue
        candidates: list[dict[str, float]] = []
        for key in ("summary", "overall"):
            if isinstance(body.get(key), Mapping):
                candidates.append(_summary_figures(body[key]))
        per_ip = body.get("per_ip") or body.get("ips")
        if not candidates and isinstance(per_ip, Mapping):
            for entry in per_ip.values():
                if isinstance(entry, Mapping):
                    inner = entry.get("summary", entry)
                    if isinstance(inner, Mapping):
                        candidates.append(_summary_figures(inner))
        if not candidates:
            candidates.append(_summary_figures(body))
        usable = [c for c in candidates if "p50" in c]
        if not usable:
            continue
        best = min(usable, key=lambda c: c["p50"])
        out.update({f"{method}.{k}": v for k, v in best.items()})
    return out


def rank(scores: Mapping[str, float]) -> list[str]:
    """Candidate names best first; ties broken by name so the order is deterministic."""
    return sorted(scores, key=lambda name: (scores[name], name))


def doomed(scores: Mapping[str, float], keep: int) -> set[str]:
    """Reported candidates that cannot be among the ``keep`` winners whatever arrives later.

    A candidate with ``keep`` reported candidates strictly ahead of it can only fall further as
    more results come in, so it is safe to destroy now.
    """
    order = rank(scores)
    return set(order[keep:])
