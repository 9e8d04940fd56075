"""Writing ``results/<timestamp>/``: the CSV, per-candidate probe JSON and histograms, and a summary.

``latency_results.csv`` has one row per candidate; failed candidates are marked, have no rank and are
never named best. ``summary.json``/``summary.md`` name the winner and say why: its metric value, the
figures that make it up, and the margin to the runner-up. Histograms are the probe's own encoded
HdrHistograms (``.hdr``, every method and address of every candidate) and, for the winners, the
percentile distributions (``.hgrm``) of the methods the metric ranks on, via :mod:`tickpath.stats`.

With several instances per candidate the candidate's figures are the merged ones, and the spread
between its instances (placement luck) is shown: per instance score and p50/p99 of the ranked
methods in ``summary.json``, ``summary.md`` and the CSV (``*_spread_us`` columns), each instance's
probe result in ``candidates/<name>.json`` and its histograms as ``<name>.instance-N.*.hdr``, the
merged ones as ``<name>.*.hdr``.
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
from tickpath.sweep.orchestrator import CandidateState, SweepOutcome

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


def _ranked(rank: int, st: CandidateState) -> dict[str, Any]:
    entry: dict[str, Any] = {"rank": rank, "name": st.name, "score_us": st.score, "explain": st.explain}
    if len(st.instances) > 1:
        entry.update(
            best_instance=st.best_instance,
            spread_us=st.spread,
            instances=[i.to_dict(st.spread_keys) for i in st.instances],
        )
    return entry


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
        "ranking": [_ranked(i + 1, s) for i, s in enumerate(ranked)],
        "clock": "scores from each probe machine's monotonic clock; timings from this machine's monotonic clock",
    }
    if ranked:
        best = ranked[0]
        why = f"{best.name} has the lowest {cfg.metric.text} = {best.score:.1f} µs ({best.explain})"
        if len(ranked) > 1 and best.score is not None and ranked[1].score is not None:
            margin = ranked[1].score - best.score
            pct = 100.0 * margin / ranked[1].score if ranked[1].score else 0.0
            why += f", {margin:.1f} µs ({pct:.1f}%) ahead of {ranked[1].name}"
        if len(best.instances) > 1 and best.best_instance is not None:
            why += f"; its best instance ({best.best_instance}) is the one kept"
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
    order = sorted(outcome.states.items(), key=lambda kv: (rank_of.get(kv[0], 10**9), kv[0]))
    _write_csv(out / "latency_results.csv", cfg, outcome, rank_of, order)
    for name, st in outcome.states.items():
        _write_candidate(out / "candidates", cfg, st, winner=name in outcome.winners)
    doc = summary(cfg, outcome)
    doc["candidates"] = {n: s.to_dict() for n, s in outcome.states.items()}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str))
    (out / "summary.md").write_text(_markdown(cfg, outcome, doc, rank_of, order), encoding="utf-8")
    return out


def _write_csv(
    path: Path,
    cfg: SweepConfig,
    outcome: SweepOutcome,
    rank_of: Mapping[str, int],
    order: list[tuple[str, CandidateState]],
) -> None:
    figure_keys = sorted({k for s in outcome.states.values() for k in s.figures} | set(CSV_FIGURES))
    many = cfg.instances_per_candidate > 1
    spread_keys = ["score", *next(iter(outcome.states.values())).spread_keys] if many and outcome.states else []
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        head = ["rank", "candidate", "az_id", "instance_type", "status", "failed", "kept", "score_us"]
        head += [figure_column(k) for k in figure_keys]
        if many:
            head += ["instances", "instances_reported", "best_instance", *[f"{k}_spread_us" for k in spread_keys]]
        w.writerow([*head, "error"])
        for name, st in order:
            row = [
                rank_of.get(name, ""),
                name,
                st.candidate.az_id,
                st.candidate.instance_type,
                st.status,
                "yes" if st.failed else "no",
                "yes" if name in outcome.winners else "no",
                "" if st.score is None else f"{st.score:.3f}",
                *[_cell(k, st.figures) for k in figure_keys],
            ]
            if many:
                row += [
                    len(st.instances),
                    sum(i.status == "reported" for i in st.instances),
                    "" if st.best_instance is None else st.best_instance,
                    *[_cell(k, st.spread) for k in spread_keys],
                ]
            w.writerow([*row, st.error or ""])


def _write_histograms(base: Path, probe: Any, *, hgrm_for: set[str]) -> None:
    """Every histogram of a probe document in its lossless encoded form (one line; HdrHistogram
    tools and tickpath.stats.merge_encoded read it). Percentile text (.hgrm) is rendered only for
    the paths in ``hgrm_for``: rendering costs seconds of CPU each."""
    for where, encoded in _histograms(probe):
        path = base.with_name(f"{base.name}.{_safe(where)}")
        path.with_name(path.name + ".hdr").write_text(encoded + "\n", encoding="ascii")
        if where in hgrm_for:
            try:
                rec = LatencyRecorder.decode(encoded, f"{base.name}:{where}")
            except TickpathError:
                continue  # a corrupt histogram must not lose the rest of the results
            rec.write_hgrm(path.with_name(path.name + ".hgrm"))


def _write_candidate(cdir: Path, cfg: SweepConfig, st: CandidateState, *, winner: bool) -> None:
    ranked = {f"methods.{t.method}" for t in cfg.metric.terms} if winner else set()
    doc: dict[str, Any] = {"state": st.to_dict(), "result": st.result}
    base = cdir / _safe(st.name)
    if len(st.instances) == 1:
        _write_histograms(base, (st.result or {}).get("probe"), hgrm_for=ranked)
    else:
        doc["instances"] = [{"index": i.index, "status": i.status, "result": i.result} for i in st.instances]
        for inst in st.instances:
            probe = (inst.result or {}).get("probe")
            _write_histograms(base.with_name(f"{base.name}.instance-{inst.index}"), probe, hgrm_for=set())
        merged = {"methods": {m: {"histogram": h} for m, h in st.merged_histograms.items()}}
        doc["merged"] = merged  # what the candidate was ranked on (the report plots it)
        _write_histograms(base, merged, hgrm_for=ranked)
    (cdir / f"{_safe(st.name)}.json").write_text(json.dumps(doc, indent=2, default=str))


def _markdown(
    cfg: SweepConfig,
    outcome: SweepOutcome,
    doc: Mapping[str, Any],
    rank_of: Mapping[str, int],
    order: list[tuple[str, CandidateState]],
) -> str:
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
    for name, st in order:
        score = f"{st.score:.1f}" if st.score is not None else "-"
        detail = st.explain if not st.failed else f"FAILED: {st.error}"
        lines.append(f"| {rank_of.get(name, '-')} | {name} | {score} | {detail} | {st.status} |")
    if cfg.instances_per_candidate > 1:
        lines += ["", *_spread_table(order)]
    return "\n".join(lines) + "\n"


def _spread_table(order: list[tuple[str, CandidateState]]) -> list[str]:
    """Per-instance figures of every candidate: how much placement within one candidate matters."""
    keys = order[0][1].spread_keys if order else []
    lines = [
        "## Instances (placement luck)",
        "",
        "Each candidate is ranked on the merged histograms of its instances; the winner keeps its best instance.",
        "",
        "| candidate | instance | score (µs) | " + " | ".join(f"{k} (µs)" for k in keys) + " | status |",
        "| --- | --- | --- | " + " | ".join("---" for _ in keys) + " | --- |",
    ]
    for name, st in order:
        for inst in st.instances:
            mark = " (best)" if inst.index == st.best_instance else ""
            score = f"{inst.score:.1f}" if inst.score is not None else "-"
            cells = [f"{inst.figures[k]:.1f}" if k in inst.figures else "-" for k in keys]
            status = inst.status if inst.error is None else f"{inst.status}: {inst.error}"
            lines.append(f"| {name} | {inst.index}{mark} | {score} | " + " | ".join(cells) + f" | {status} |")
        if st.spread:
            cells = [f"{st.spread[k]:.1f}" if k in st.spread else "-" for k in keys]
            score = f"{st.spread['score']:.1f}" if "score" in st.spread else "-"
            lines.append(f"| {name} | spread | {score} | " + " | ".join(cells) + " | max - min |")
    return lines
