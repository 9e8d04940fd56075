"""Warnings about a probe's figures that a reader must see before trusting them.

The recorder clamps values outside its range (below 1 ns, above one hour) and counts them; the
summary then shows the clamp bounds, not latencies. These checks turn such counts into plain
sentences for the JSON (``warnings``) and the text output, saying what the clamp most likely means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tickpath.stats.recorder import HIGHEST_NS, LOWEST_NS


def _scale(unit: str) -> float:
    return {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}.get(unit, 1e3)


_WHY = {
    "high": (
        "to one hour: the event times are far in the past (a replayed capture, or a wrong local "
        "clock), so the percentiles, max and mean show the ceiling, not a latency"
    ),
    "low": (
        "to 1 ns: negative one-way delays, i.e. the local clock is behind the exchange's by more "
        "than the latency; use the clock-corrected figures"
    ),
    "both": (
        "some to one hour (event times far in the past: a replayed capture or a clock offset) "
        "and some to 1 ns (negative one-way delays: the local clock is behind the exchange's)"
    ),
}


def clamp_cause(s: Mapping[str, Any]) -> str | None:
    """``high``, ``low`` or ``both`` for a summary with clamped samples; None when nothing was clamped."""
    if not s.get("clamped") or not s.get("count"):
        return None
    scale = _scale(str(s.get("unit", "us")))
    high = isinstance(s.get("max"), (int, float)) and s["max"] * scale >= HIGHEST_NS
    low = isinstance(s.get("min"), (int, float)) and s["min"] * scale <= LOWEST_NS
    return "both" if high and low else "high" if high else "low"


def clamp_warning(name: str, s: Mapping[str, Any]) -> str | None:
    """One sentence for a summary with clamped samples, or None when nothing was clamped."""
    cause = clamp_cause(s)
    if cause is None:
        return None
    return (
        f"{name}: {s['clamped']} of {s['count']} samples were outside the recorder's 1 ns to 1 hour "
        f"range and clamped {_WHY[cause]}"
    )


def _series(body: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(``type.field kind``, summary) of each stream type's raw and corrected series."""
    per_type = body.get("per_type")
    if not isinstance(per_type, Mapping):
        return
    for label, fields in per_type.items():
        if not isinstance(fields, Mapping):
            continue
        for fld, series in fields.items():
            for kind in ("raw", "corrected"):
                s = series.get(kind) if isinstance(series, Mapping) else None
                if isinstance(s, Mapping):
                    yield f"{label}.{fld} {kind}", s


def sample_warnings(methods: Mapping[str, Any]) -> list[str]:
    """The warnings for the ``methods`` part of a ``tickpath.probe/1`` document: one per method and
    cause; stream series clamped for the same cause as the headline are named in its warning."""
    out = []
    for method, body in methods.items():
        if not isinstance(body, Mapping):
            continue
        summary = body.get("summary")
        head = clamp_warning(method, summary) if isinstance(summary, Mapping) else None
        head_cause = clamp_cause(summary) if head and isinstance(summary, Mapping) else None
        by_cause: dict[str, list[str]] = {}
        for name, s in _series(body):
            cause = clamp_cause(s)
            if cause:
                by_cause.setdefault(cause, []).append(name)
        if head:
            same = by_cause.pop(head_cause or "", [])
            out.append(head + (f" (likewise the series {', '.join(same)})" if same else ""))
        for cause, names in by_cause.items():
            out.append(
                f"{method} series {', '.join(names)}: samples were outside the recorder's 1 ns to "
                f"1 hour range and clamped {_WHY[cause]}"
            )
    return out
