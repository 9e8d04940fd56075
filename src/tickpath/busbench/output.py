"""What a run leaves behind: a text report, JSON, ``.hgrm`` files, raw samples and a PNG.

File names per run: ``<stem>.json``, ``<stem>.intended.hgrm`` (coordinated-omission-free),
``<stem>.actual.hgrm`` (from the actual send time), and with samples ``<stem>.samples.csv``. A
matrix adds ``matrix.json`` and ``spectrum.png``. Stems read ``s256-r1000`` (size, rate).
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tickpath.busbench.results import CLOCK_NOTE, TABLE_PERCENTILES, BenchResult, percentiles_ns
from tickpath.errors import ConfigError
from tickpath.stats import LatencyRecorder

WAIT_NOTES = {
    "busy-poll": "busy-poll (never sleeps: one core at 100% for the run)",
    "sleep": "sleep (select with µs timeouts between sends)",
}


def _servers(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items())


def stem(result: BenchResult) -> str:
    return f"s{result.size}-r{result.rate:g}"


def _us(ns: float | None) -> str:
    return "n/a" if ns is None else f"{ns / 1e3:,.1f}"


def _rate_line(r: BenchResult) -> str:
    line = f"achieved rate: {r.achieved_rate:,.1f} msg/s sent ({100 * r.achieved_rate / r.rate:.2f}% of target)"
    if not r.received:
        return line + "  -- NOTHING RECEIVED: every measured message was lost"
    return line + ("" if r.sustained else "  -- TARGET RATE NOT SUSTAINED")


def report_text(r: BenchResult) -> str:
    """The human report: percentile table, rates, bandwidth, min/median/max, RTTs, losses."""
    lines = [
        f"busbench {r.pub} -> {r.sub}  size {r.size} B  target {r.rate:,.0f} msg/s{'  TLS' if r.tls else ''}",
        f"clock: {CLOCK_NOTE}",
        f"client wait: {WAIT_NOTES.get(r.wait_mode, r.wait_mode)}",
        *([f"servers: {_servers(r.servers)}"] if r.servers else []),
        "",
        f"{'percentile':>12}  {'from intended µs':>17}  {'from actual µs':>15}",
    ]
    pi, pa = _pct(r.intended), _pct(r.actual)
    for p in TABLE_PERCENTILES:
        lines.append(f"{p:>12g}  {_us(pi[p]):>17}  {_us(pa[p]):>15}")
    lines += [
        "",
        f"min/median/max (intended): {_min_med_max(r.intended)}",
        f"min/median/max (actual):   {_min_med_max(r.actual)}",
        _rate_line(r),
        f"bandwidth: {r.bandwidth_bytes_per_s / 1e6:,.3f} MB/s payload sent",
        f"send lag p50/p99/max: {_min_med_max(r.send_lag, (50.0, 99.0, 100.0))}",
        f"RTT pub server: {_rtt(r.rtt_pub_ns)}   RTT sub server: {_rtt(r.rtt_sub_ns)}",
        f"messages: warm-up {r.warmup:,}, measured {r.measured:,}, sent {r.sent:,}, received {r.received:,}, "
        f"lost {r.lost:,}, warm-up lost {r.warmup_lost:,}, unsent {r.unsent:,}, "
        f"duplicated {r.duplicates:,}, reordered {r.reordered:,}",
    ]
    lines += [f"error: {e}" for e in r.errors]
    return "\n".join(lines)


def _pct(rec: LatencyRecorder, ps: Sequence[float] = TABLE_PERCENTILES) -> dict[float, int | None]:
    """Percentiles (ns), or None for each when the recorder holds no sample."""
    if not rec.count:
        return dict.fromkeys(ps)
    return dict(percentiles_ns(rec, ps))


def _min_med_max(rec: LatencyRecorder, ps: Sequence[float] = (0.0, 50.0, 100.0)) -> str:
    if not rec.count:
        return "n/a (no samples)"
    v = percentiles_ns(rec, ps)
    return " / ".join(_us(v[p]) for p in ps) + " µs"


def _rtt(v: Sequence[int]) -> str:
    if not v:
        return "n/a"
    return f"{_us(min(v))}/{_us(statistics.median(v))}/{_us(max(v))} µs (min/median/max)"


def write_run(r: BenchResult, outdir: str | Path, *, samples: bool = False) -> dict[str, Path]:
    """Write JSON, both ``.hgrm`` files and, if asked and kept, the raw samples CSV."""
    d = Path(outdir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory {d}: {exc}") from exc
    s = stem(r)
    paths = {"json": d / f"{s}.json", "intended_hgrm": d / f"{s}.intended.hgrm", "actual_hgrm": d / f"{s}.actual.hgrm"}
    paths["json"].write_text(json.dumps(r.to_dict(), indent=2), encoding="utf-8")
    r.intended.write_hgrm(paths["intended_hgrm"])
    r.actual.write_hgrm(paths["actual_hgrm"])
    if samples and r.samples is not None:
        paths["samples"] = d / f"{s}.samples.csv"
        with paths["samples"].open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["seq", "intended_ns", "sent_ns", "received_ns", "latency_intended_ns", "latency_actual_ns"])
            for seq, want, sent, recv in r.samples:
                w.writerow([seq, want, sent, recv, recv - want, recv - sent])
    return paths


def matrix_summary(results: Sequence[BenchResult]) -> list[dict[str, Any]]:
    """One row per run with the headline figures (µs)."""

    def us(rec: LatencyRecorder, p: float) -> float | None:
        return round(rec.percentile(p) / 1e3, 1) if rec.count else None  # None: nothing received

    rows = []
    for r in results:
        rows.append(
            {
                "size": r.size,
                "rate": r.rate,
                "achieved_rate": round(r.achieved_rate, 1),
                "sustained": r.sustained_end_to_end,
                "lost": r.lost,
                "wait_mode": r.wait_mode,
                "p50_intended_us": us(r.intended, 50),
                "p99_intended_us": us(r.intended, 99),
                "p50_actual_us": us(r.actual, 50),
                "p99_actual_us": us(r.actual, 99),
                "max_intended_us": us(r.intended, 100),
                "errors": list(r.errors),
            }
        )
    return rows


def _cell(v: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if v is None else f"{v:>{width},.1f}"


def matrix_text(results: Sequence[BenchResult]) -> str:
    head = (
        f"{'size':>6} {'rate':>8} {'achieved':>10} {'p50 int':>9} {'p99 int':>10} {'p50 act':>9} "
        f"{'p99 act':>10} {'lost':>6} {'wait':>9}"
    )
    out = [head]
    failed = []
    for row in matrix_summary(results):
        out.append(
            f"{row['size']:>6} {row['rate']:>8g} {row['achieved_rate']:>10,.0f}"
            f"{'' if row['sustained'] else '!'} {_cell(row['p50_intended_us'], 9)} "
            f"{_cell(row['p99_intended_us'], 10)} {_cell(row['p50_actual_us'], 9)} "
            f"{_cell(row['p99_actual_us'], 10)} {row['lost']:>6} {row['wait_mode']:>9}"
        )
        failed += [f"{row['size']} B @ {row['rate']:g}/s: {e}" for e in row["errors"]]
    out.append(
        "µs; 'int' = from intended send time, 'act' = from actual send time; '!' = rate not sustained "
        "end to end; n/a = nothing received"
    )
    out += [f"error: {e}" for e in failed]
    return "\n".join(out)


def spectrum_points(rec: LatencyRecorder, max_nines: int = 5, steps_per_nine: int = 8) -> list[tuple[float, float]]:
    """(1/(1-p), latency µs) pairs from p=0 to ``max_nines`` nines, for a log-x spectrum plot."""
    if not rec.count:
        return []
    xs = [10 ** (k / steps_per_nine) for k in range(max_nines * steps_per_nine + 1)]  # 1/(1-p)
    ps = [100.0 * (1.0 - 1.0 / x) for x in xs]
    values = percentiles_ns(rec, ps)
    return [(x, values[p] / 1e3) for x, p in zip(xs, ps, strict=True)]


def plot_spectrum(results: Sequence[BenchResult], path: str | Path, *, title: str = "") -> Path:
    """Percentile spectrum PNG: x is 1/(1-p) on a log scale, y is latency (µs, log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tickpath.report.plots import note_missing, series_style

    fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
    missing = []
    i = 0
    for r in results:
        label = f"{r.size} B @ {r.rate:,.0f}/s"
        pts = spectrum_points(r.intended)
        if not pts:
            missing.append(label)
            continue
        style = series_style(i)  # a distinct colour per run, however many runs
        i += 1
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, label=label, **style)
        apts = spectrum_points(r.actual)
        if apts:
            axs, ays = zip(*apts, strict=True)
            ax.plot(axs, ays, linewidth=1, **{**style, "linestyle": ":"})
    note_missing(ax, missing)
    ticks = [1, 2, 10, 100, 1_000, 10_000, 100_000]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels(["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (µs)")
    ax.set_title(title or "busbench latency by percentile (solid: from intended send, dotted: from actual)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
