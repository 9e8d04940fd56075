"""Plots as PNG bytes (matplotlib, Agg backend: no display, no network, deterministic output)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display here
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

Series = tuple[str, Sequence[tuple[float, float]]]  # label, (x, y) points

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
# Series styles that stay distinct however many series a plot has: 20 colours (matplotlib's tab10
# and the lighter half of tab20), then the same colours again with a marker, never a repeat.
PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
    "#aec7e8",
    "#ff9896",
    "#98df8a",
    "#ffbb78",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#9edae5",
    "#c7c7c7",
    "#dbdb8d",
]
_MARKERS = [None, "o", "s", "^", "D", "v", "x", "+"]


def series_style(i: int) -> dict[str, Any]:
    """Keyword arguments for ``ax.plot`` giving series ``i`` a look no other series in the plot has."""
    marker = _MARKERS[(i // len(PALETTE)) % len(_MARKERS)]
    style: dict[str, Any] = {"color": PALETTE[i % len(PALETTE)]}
    if marker is not None:
        style.update(marker=marker, markersize=3, markevery=0.1)
    return style


def note_missing(ax: Any, missing: Sequence[str]) -> None:
    """Legend-only entries for series with no samples, so a failed run is named, not silently absent."""
    for label in missing:
        ax.plot([], [], linestyle="none", label=f"{label}: no samples (nothing received)")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def percentile_spectrum(
    title: str, series: Sequence[Series], *, highlight: str | None = None, unit: str = "µs", missing: Sequence[str] = ()
) -> bytes:
    """Latency by percentile on the usual log ``1/(1-p)`` axis; ``series`` points are (percentile, value).

    ``missing`` names series that had no samples: they get a legend entry saying so.
    """
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ticks = [0.0, 90.0, 99.0, 99.9, 99.99, 99.999]
    for i, (label, pts) in enumerate(series):
        xs = [1.0 / (1.0 - min(p, 99.9999) / 100.0) for p, _ in pts]
        ys = [v for _, v in pts]
        lw = 3.0 if label == highlight else 1.5
        ax.plot(xs, ys, label=label + (" (winner)" if label == highlight else ""), linewidth=lw, **series_style(i))
    note_missing(ax, missing)
    ax.set_xscale("log")
    ax.set_xticks([1.0 / (1.0 - t / 100.0) for t in ticks])
    ax.set_xticklabels([f"{t:g}%" for t in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel(f"latency ({unit})")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if series or missing:
        ax.legend(fontsize=8)
    return _png(fig)


def time_series(
    title: str, series: Sequence[Series], *, ylabel: str, marks: Sequence[tuple[float, str]] = (), log_y: bool = False
) -> bytes:
    """Lines over time (x in seconds from start), with vertical marks (e.g. resyncs, gaps)."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, (label, pts) in enumerate(series):
        ax.plot([x for x, _ in pts], [y for _, y in pts], label=label, color=_COLORS[i % len(_COLORS)], linewidth=1.3)
    seen: set[str] = set()
    for x, label in marks:
        ax.axvline(
            x,
            color="#d62728" if label == "gap" else "#7f7f7f",
            linestyle="--",
            linewidth=1,
            label=label if label not in seen else None,
        )
        seen.add(label)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if series or marks:
        ax.legend(fontsize=8)
    return _png(fig)


def bars(
    title: str, labels: Sequence[str], values: Sequence[float], *, ylabel: str, highlight: str | None = None
) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    colors = ["#2ca02c" if lab == highlight else "#1f77b4" for lab in labels]
    ax.bar(range(len(labels)), values, color=colors)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)
