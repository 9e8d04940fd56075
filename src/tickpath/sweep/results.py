"""Writing ``results/<timestamp>/``: the CSV, per-candidate probe JSON and histograms, and a summary.

``latency_results.csv`` has one row per candidate; failed candidates are marked, have no rank and are
never named best. ``summary.json``/``summary.md`` name the winner and say why: its metric value, the
figures that make it up, and the margin to the runner-up. Histograms are the probe's own encoded
HdrHistograms (``.hdr``, every method and address of every candidate) and, for the winners, the
percentile distributions (``.hgrm``) of the methods the metric ranks on, via :mod:`tickpath.stats`.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tickpath.errors import TickpathError
from tickpath.stats import LatencyRecorder
from tickpath.sweep.config import SweepConfig
from tickpath.sweep.orchestrator import SweepOutcome

CSV_FIGURES = ("tcp.p50", "tcp.p99", "ws.p50", "ws.p99", "rest.p50", "rest.p99", "stream.p50", "stream.p99")


def _histograms(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(dotted path, encoded histogram) for every ``histogram`` string in a probe document."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if str(key).endswith("histogram") and isinstance(value, str) and value:
                yield ".".join((*path, str(key)) if key != "histogram" else path), value
            else:
                yield from _histograms(value, (*path, str(key)))


def figure_column(key: str) -> str:
    """The CSV header of a probe figure: latencies carry their unit (``ws.p50_us``); ratios
    (``ws.loss_ratio``) are unitless and keep their name."""
    return key if key.endswith("_ratio") else f"{key}_us"


def _cell(key: str, figures: Mapping[str, float]) -> str:
    if key not in figures:
        return ""
    return f"{figures[key]:.6g}" if key.endswith("_ratio") else f"{figures[key]:.3f}"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name) or "histogram"


def summary(cfg: SweepConfig, outcome: SweepOutcome) -> dict[str, Any]:
    """Who won and why, as a JSON-ready dict."""
    states = outcome.states
    ranked = [states[n] for n in outcome.ranking]
    failed = sorted(n for n, s in states.items() if s.failed)
    doc: dict[str, Any] = {
        "schema": "tickpath.sweep/1",
        "sweep_id": outcome.sweep_id,
        "provider": cfg.provider,
        "region": cfg.region,
        "metric": cfg.metric.text,
        "lower_is_better": True,
        "unit": "us",
        "elapsed_s": round(outcome.elapsed_s, 3),
        "kept": outcome.winners,
        "failed": failed,
        "ranking": [
            {"rank": i + 1, "name": s.name, "score_us": s.score, "explain": s.explain} for i, s in enumerate(ranked)
        ],
        "clock": "scores from each probe machine's monotonic clock; timings from this machine's monotonic clock",
    }
    if ranked:
        best = ranked[0]
        why = f"{best.name} has the lowest {cfg.metric.text} = {best.score:.1f} µs ({best.explain})"
        if len(ranked) > 1 and best.score is not None and ranked[1].score is not None:
            margin = ranked[1].score - best.score
            pct = 100.0 * margin / ranked[1].score if ranked[1].score else 0.0
            why += f", {margin:.1f} µs ({pct:.1f}%) ahead of {ranked[1].name}"
        if failed:
            why += f"; {len(failed)} candidate(s) failed and were not ranked: {', '.join(failed)}"
        doc.update(winner=best.name, why=why)
    else:
        doc.update(winner=None, why="no candidate produced a usable result; see the failed list")
    return doc


def write_results(cfg: SweepConfig, outcome: SweepOutcome, out_root: Path | None = None) -> Path:
    """Write everything under ``<results_dir>/<UTC timestamp>/`` and return that directory."""
    root = Path(out_root or cfg.results_dir)
    out = root / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 1
    while out.exists():  # two sweeps in one second must not overwrite each other
        out = root / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}"
        n += 1
    (out / "candidates").mkdir(parents=True)
    rank_of = {name: i + 1 for i, name in enumerate(outcome.ranking)}
    ranked_methods = {f"methods.{t.method}" for t in cfg.metric.terms}
    figure_keys = sorted({k for s in outcome.states.values() for k in s.figures} | set(CSV_FIGURES))
    with (out / "latency_results.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "rank",
                "candidate",
                "az_id",
                "instance_type",
                "status",
                "failed",
                "kept",
                "score_us",
                *[figure_column(k) for k in figure_keys],
                "error",
            ]
        )
        for name, st in sorted(outcome.states.items(), key=lambda kv: (rank_of.get(kv[0], 10**9), kv[0])):
            w.writerow(
                [
                    rank_of.get(name, ""),
                    name,
                    st.candidate.az_id,
                    st.candidate.instance_type,
                    st.status,
                    "yes" if st.failed else "no",
                    "yes" if name in outcome.winners else "no",
                    "" if st.score is None else f"{st.score:.3f}",
                    *[_cell(k, st.figures) for k in figure_keys],
                    st.error or "",
                ]
            )
    for name, st in outcome.states.items():
        cdir = out / "candidates"
        (cdir / f"{_safe(name)}.json").write_text(
            json.dumps({"state": st.to_dict(), "result": st.result}, indent=2, default=str)
        )
        probe = (st.result or {}).get("probe")
        for where, encoded in _histograms(probe):
            # Every histogram in its lossless encoded form (one line; HdrHistogram tools and
            # tickpath.stats.merge_encoded read it). Percentile text (.hgrm) is rendered only for
            # the winners' histograms of the ranked methods: rendering costs seconds of CPU each.
            base = cdir / f"{_safe(name)}.{_safe(where)}"
            base.with_name(base.name + ".hdr").write_text(encoded + "\n", encoding="ascii")
            if name in outcome.winners and where in ranked_methods:
                try:
                    rec = LatencyRecorder.decode(encoded, f"{name}:{where}")
                except TickpathError:
                    continue  # a corrupt histogram must not lose the rest of the results
                rec.write_hgrm(base.with_name(base.name + ".hgrm"))
    doc = summary(cfg, outcome)
    doc["candidates"] = {n: s.to_dict() for n, s in outcome.states.items()}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str))
    lines = [
        f"# Sweep {outcome.sweep_id}",
        "",
        f"**Winner: {doc['winner']}**",
        "",
        doc["why"],
        "",
        f"Metric: `{cfg.metric.text}` (µs, lower is better). Kept: {', '.join(outcome.winners) or 'none'}.",
        "",
        "| rank | candidate | score (µs) | figures | status |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, st in sorted(outcome.states.items(), key=lambda kv: (rank_of.get(kv[0], 10**9), kv[0])):
        score = f"{st.score:.1f}" if st.score is not None else "-"
        detail = st.explain if not st.failed else f"FAILED: {st.error}"
        lines.append(f"| {rank_of.get(name, '-')} | {name} | {score} | {detail} | {st.status} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
