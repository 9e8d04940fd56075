"""One renderer per kind of result. Each takes the collection and returns zero or more sections.

Renderers read result documents defensively (``.get`` with defaults): a field a newer or older
writer left out shows as blank, it does not break the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tickpath.errors import TickpathError
from tickpath.report import plots
from tickpath.report.collect import Artifact, Collection, Problem
from tickpath.report.html import Image, Raw, Section, esc, table, verdict
from tickpath.stats import LatencyRecorder, spectrum

NA = Raw("n/a")  # a figure that does not exist (no samples), never shown as 0
PCT_KEYS = ("p50", "p90", "p99", "p999", "p9999", "max", "mean")


def _rel(found: Collection, path: Path) -> str:
    """A path relative to the results root, for anchors and PNG names that stay short and stable."""
    try:
        return str(path.relative_to(found.root)) or "root"
    except ValueError:
        return path.name


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _spectrum_us(encoded: str | None) -> list[tuple[float, float]]:
    if not encoded:
        return []
    try:
        rec = LatencyRecorder.decode(encoded)
    except TickpathError:
        return []
    return [(p, v / 1e3) for p, v in spectrum(rec)]


def _summary_row(name: str, s: Mapping[str, Any]) -> list[Any]:
    return [name, s.get("count"), s.get("losses"), *[s.get(k) for k in PCT_KEYS]]


SUMMARY_HEAD = ["", "count", "losses", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"]


def problem_from(where: str, exc: Exception) -> Problem:
    return Problem(Path(where), f"could not render: {type(exc).__name__}: {exc}")


def problems_section(problems: Iterable[Problem]) -> Section:
    s = Section("problems", "Problems")
    s.add('<p class="note">These files could not be used; everything else was rendered.</p>')
    s.add(table(["file", "problem"], [[str(p.path), p.message] for p in problems], left=2))
    return s


# -- probe ----------------------------------------------------------------------------------
def _probe_methods(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    methods = doc.get("methods") or {}
    return {k: v for k, v in methods.items() if isinstance(v, Mapping)}


def _method_summary(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in ("summary", "corrected", "overall"):
        val = body.get(key)
        if isinstance(val, Mapping) and "p50" in val:
            return val
    return None


def render_probe(found: Collection) -> list[Section]:
    out = []
    for art in found.of("probe"):
        doc = art.data
        target = doc.get("target") or {}
        title = f"Probe: {target.get('host') or target.get('base_url') or art.path.parent.name}"
        s = Section(f"probe-{_slug(_rel(found, art.path))}", title)
        host = doc.get("host") or {}
        s.add(
            f'<p class="kv">from <code>{esc(host.get("hostname", "?"))}</code> · '
            f"file <code>{esc(art.path)}</code> · all figures in µs</p>"
        )
        rows, spectra, ip_rows = [], [], []
        for name, body in _probe_methods(doc).items():
            summ = _method_summary(body)
            if summ is not None:
                rows.append(_summary_row(name, summ))
            pts = _spectrum_us(body.get("histogram"))
            if pts:
                spectra.append((name, pts))
            per_ip = body.get("per_ip") or {}
            if isinstance(per_ip, Mapping):
                for ip, ipbody in per_ip.items():
                    isumm = _method_summary(ipbody) if isinstance(ipbody, Mapping) else None
                    if isumm is None and isinstance(ipbody, Mapping) and "p50" in ipbody:
                        isumm = ipbody
                    if isumm is not None:
                        ip_rows.append(_summary_row(f"{name} {ip}", isumm))
        s.add("<h3>Per method</h3>" + table(SUMMARY_HEAD, rows))
        if ip_rows:
            s.add("<h3>Per IP</h3>" + table(SUMMARY_HEAD, ip_rows))
        if spectra:
            s.add_image(
                Image(
                    f"{s.anchor}-spectrum.png",
                    f"{title} percentile spectrum",
                    plots.percentile_spectrum(f"{title}: latency by percentile", spectra),
                )
            )
        _probe_clock(doc, s)
        _probe_path(doc, s)
        warnings = doc.get("warnings") or []
        if isinstance(warnings, list) and warnings:  # e.g. clamped samples: figures that are not latencies
            s.add("<h3>Warnings</h3>" + table(["warning"], [[str(w)] for w in warnings]))
        errors = doc.get("errors") or []
        if errors:
            s.add("<h3>Errors</h3>" + table(["error"], [[str(e)] for e in errors]))
        out.append(s)
    return out


def _probe_clock(doc: Mapping[str, Any], s: Section) -> None:
    clock = doc.get("clock")
    if isinstance(clock, Mapping) and clock:
        rows = [[k, str(v)] for k, v in clock.items() if not isinstance(v, (dict, list))]
        if rows:
            s.add("<h3>Clocks</h3>" + table(["", "value"], rows, left=2))


def _probe_path(doc: Mapping[str, Any], s: Section) -> None:
    path = _probe_methods(doc).get("path") or {}
    for tool in ("mtr", "traceroute"):
        sub = path.get(tool)
        if not isinstance(sub, Mapping):
            continue
        if not sub.get("available", True):
            s.add(f'<p class="note">{esc(tool)}: {esc(sub.get("note") or sub.get("error") or "not installed")}</p>')
            continue
        hops = [h for h in sub.get("hops") or [] if isinstance(h, Mapping)]
        if not hops:
            continue
        rows = []
        for h in hops:
            addrs = h.get("addresses") or ([h["host"]] if h.get("host") else [])
            rtts = h.get("rtts_ms") or []
            best = min(rtts) if rtts else h.get("best_ms")
            avg = sum(rtts) / len(rtts) if rtts else h.get("avg_ms")
            worst = max(rtts) if rtts else h.get("worst_ms")
            loss = h.get("loss_pct", h.get("lost"))
            rows.append([h.get("hop"), ", ".join(map(str, addrs)) or "*", loss, best, avg, worst])
        s.add(
            f"<h3>Path ({esc(tool)} to {esc(path.get('destination', ''))})</h3>"
            + table(["hop", "address", "loss", "best ms", "avg ms", "worst ms"], rows, left=2)
        )


# -- sweep ----------------------------------------------------------------------------------
def render_sweep(found: Collection) -> list[Section]:
    out = []
    summaries = {a.path.parent: a for a in found.of("sweep")}
    for art in found.of("sweep_csv"):
        rows: list[dict[str, str]] = art.data
        summary = summaries.get(art.path.parent)
        winner = (summary.data.get("winner") if summary else None) or next(
            (r.get("candidate") for r in rows if r.get("rank") == "1"), None
        )
        s = Section(f"sweep-{_slug(_rel(found, art.path.parent))}", "Sweep: candidates ranked")
        if summary is not None:
            why = summary.data.get("why") or summary.data.get("explanation") or ""
            s.add(
                f'<p class="kv">winner <b>{esc(winner)}</b> · metric <code>'
                f"{esc(summary.data.get('metric', ''))}</code></p><p>{esc(why)}</p>"
            )
        # columns empty for every candidate (methods this sweep did not measure) only add width
        head = [h for h in rows[0] if any((r.get(h) or "").strip() for r in rows)]
        win_idx = {i for i, r in enumerate(rows) if winner and r.get("candidate") == winner}
        s.add(table(head, [[r.get(h, "") for h in head] for r in rows], left=min(2, len(head)), highlight_rows=win_idx))
        if summary is not None:
            s.add(_instance_spread(summary.data))
        metric = str(summary.data.get("metric", "")) if summary else ""
        m = re.search(r"([a-z_]+)\.p", metric)
        spectra = _candidate_spectra(art.path.parent, m.group(1) if m else "ws", found)
        if spectra:
            s.add_image(
                Image(
                    f"{s.anchor}-spectrum.png",
                    "sweep latency distribution per candidate",
                    plots.percentile_spectrum("Latency distribution per candidate", spectra, highlight=winner),
                )
            )
        out.append(s)
    return out


def _instance_spread(doc: Mapping[str, Any]) -> str:
    """Per-instance figures of candidates with several instances (placement luck), or nothing."""
    rows = []
    keys: list[str] = []
    for entry in doc.get("ranking") or []:
        instances = entry.get("instances") if isinstance(entry, Mapping) else None
        if not isinstance(instances, list):
            continue
        for inst in instances:
            if not isinstance(inst, Mapping):
                continue
            raw = inst.get("figures_us")
            figures: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            keys = keys or [str(k) for k in figures]
            best = " (best, kept)" if inst.get("index") == entry.get("best_instance") and entry.get("rank") == 1 else ""
            rows.append(
                [entry.get("name"), f"{inst.get('index')}{best}", inst.get("score_us")]
                + [figures.get(k) for k in keys]
                + [Raw(esc(inst.get("status", "")))]
            )
        raw_spread = entry.get("spread_us")
        spread: Mapping[str, Any] = raw_spread if isinstance(raw_spread, Mapping) else {}
        rows.append(
            [entry.get("name"), "spread (max - min)", spread.get("score")] + [spread.get(k) for k in keys] + [""]
        )
    if not rows:
        return ""
    return "<h3>Instances per candidate (placement luck; ranked on their merged histograms)</h3>" + table(
        ["candidate", "instance", "score µs", *[f"{k} µs" for k in keys], "status"], rows, left=2
    )


def _candidate_spectra(sweep_dir: Path, method: str, found: Collection) -> list[tuple[str, list[tuple[float, float]]]]:
    """Latency spectra of the ranked method, from each candidate's probe result in ``candidates/*.json``
    (the merged histograms, when the candidate had several instances)."""
    import json

    out = []
    for path in sorted((sweep_dir / "candidates").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            found.problems.append(Problem(path, f"unreadable candidate result: {exc}"))
            continue
        probe = (doc.get("merged") or (doc.get("result") or {}).get("probe")) if isinstance(doc, Mapping) else None
        if not isinstance(probe, Mapping):
            continue
        body = _probe_methods(probe).get(method) or {}
        pts = _spectrum_us(body.get("histogram"))
        name = (doc.get("state") or {}).get("name") or path.stem
        if pts:
            out.append((str(name), pts))
    return out


# -- dq -------------------------------------------------------------------------------------
def _kv_text(values: Any, limit: int = 400) -> str:
    if isinstance(values, Mapping):
        return ", ".join(f"{k}={v}" for k, v in values.items())[:limit]
    return "" if values is None else str(values)[:limit]


def render_dq(found: Collection) -> list[Section]:
    out = []
    for art in found.of("dq"):
        doc = art.data
        s = Section(f"dq-{_slug(_rel(found, art.path))}", f"Data quality: {_rel(found, art.path)}")
        ok = doc.get("ok")
        window = doc.get("window") or {}
        wtext = window.get("text", "") if isinstance(window, Mapping) else str(window)
        s.add(
            f'<p class="kv">overall {verdict(ok if isinstance(ok, bool) else None)} · window {esc(wtext)}'
            f" · rows {esc(doc.get('rows_in_window', ''))}</p>"
        )
        rows = []
        for c in doc.get("checks") or []:
            if not isinstance(c, Mapping):
                continue
            passed = c.get("ok") if isinstance(c.get("ok"), bool) else None
            findings = [f for f in c.get("findings") or [] if isinstance(f, Mapping)]
            shown = "; ".join(_kv_text(f, 160) for f in findings[:3])
            if len(findings) > 3:
                shown += f"; … {len(findings) - 3} more"
            rows.append(
                [
                    Raw(esc(c.get("title") or c.get("name", "?"))),
                    verdict(passed),
                    Raw(esc(c.get("summary", ""))),
                    Raw(esc(_kv_text(c.get("metrics")))),
                    Raw(esc(shown)),
                ]
            )
        s.add(table(["check", "verdict", "summary", "figures", "findings"], rows, left=5))
        out.append(s)
    return out


# -- busbench -------------------------------------------------------------------------------
def _bus_runs(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    runs = doc.get("runs")
    if isinstance(runs, list):
        return [r for r in runs if isinstance(r, Mapping)]
    return [doc] if "latency_from_intended" in doc else []


_BUS_HEAD = [
    "size (B)",
    "rate (/s)",
    "achieved (/s)",
    "lost",
    "from",
    "p50",
    "p90",
    "p99",
    "p99.9",
    "p99.99",
    "max",
    "error",
]


def render_busbench(found: Collection) -> list[Section]:
    """One section per directory of busbench runs: the table of both latencies and one spectrum."""
    by_dir: dict[Path, list[Mapping[str, Any]]] = {}
    for art in found.of("busbench"):
        by_dir.setdefault(art.path.parent, []).extend(_bus_runs(art.data))
    out = []
    for directory, runs in sorted(by_dir.items()):
        if not runs:
            continue
        runs.sort(key=lambda r: (r.get("size") or 0, r.get("target_rate") or 0))
        s = Section(f"busbench-{_slug(_rel(found, directory))}", "Bus latency (NATS)")
        first = runs[0]
        s.add(
            f'<p class="kv">publish on <code>{esc(first.get("pub"))}</code>, receive on '
            f"<code>{esc(first.get('sub'))}</code> · clock: {esc(first.get('clock', ''))} · µs. "
            "“intended” counts from the scheduled send time (no coordinated omission), "
            "“actual” from when the message was really sent.</p>"
        )
        rows: list[list[Any]] = []
        spectra: list[plots.Series] = []
        missing: list[str] = []
        for r in runs:
            for key, label in (("latency_from_intended", "intended"), ("latency_from_actual", "actual")):
                _bus_row(r, key, label, rows, spectra, missing)
        s.add(table(_BUS_HEAD, rows, left=0))
        if spectra or missing:
            s.add_image(
                Image(
                    f"{s.anchor}-spectrum.png",
                    "busbench percentile spectrum",
                    plots.percentile_spectrum("NATS end-to-end latency by percentile", spectra, missing=missing),
                )
            )
        out.append(s)
    return out


def _bus_row(
    r: Mapping[str, Any],
    key: str,
    label: str,
    rows: list[list[Any]],
    spectra: list[plots.Series],
    missing: list[str],
) -> None:
    """One run's row for one of its two latencies, and its spectrum (or its name, when empty)."""
    errors = "; ".join(str(e) for e in r.get("errors") or [])
    lat = r.get(key) or {}
    name = f"{r.get('size')} B @ {r.get('target_rate') or 0:g}/s, {label}"
    # Nothing received: no latency figures (older files wrote 0.0 for them, never real).
    empty = not lat.get("count")
    figures = [NA if empty or lat.get(k) is None else lat.get(k) for k in ("p50", "p90", "p99", "p99.9", "p99.99")]
    top = lat.get("p100", lat.get("max"))
    rows.append(
        [
            r.get("size"),
            r.get("target_rate"),
            r.get("achieved_rate"),
            r.get("lost"),
            Raw(esc(label)),
            *figures,
            NA if empty or top is None else top,
            Raw(f'<span class="fail">{esc(errors)}</span>' if errors else ""),
        ]
    )
    pts = _spectrum_us(lat.get("histogram")) if not empty else []
    if pts:
        spectra.append((name, pts))
    else:
        missing.append(name)


# -- feed -----------------------------------------------------------------------------------
def render_feed_runs(found: Collection) -> list[Section]:
    """Feed exit summaries (``tickpath.feed/1``): what each run took in, resynced and delivered."""
    runs = [a for a in found.of("feed")]
    if not runs:
        return []
    s = Section("feed-runs", "Feed runs")
    rows = []
    for art in runs:
        d = art.data
        events = d.get("events") or {}
        off = d.get("clock_offset") or {}
        offset = (
            f"{off.get('offset_us', 0) / 1e3:+.1f} ± {off.get('bound_us', 0) / 1e3:.1f} ms"
            if isinstance(off, Mapping) and off.get("offset_us") is not None
            else "not measured"
        )
        sinks = d.get("sinks") or {}
        sink_text = "; ".join(
            f"{n}: {v.get('written', 0)} written, {v.get('dropped', 0)} dropped"
            for n, v in sinks.items()
            if isinstance(v, Mapping)
        )
        rows.append(
            [
                Raw(esc(d.get("venue", "?"))),
                Raw(esc(d.get("session", ""))),
                ", ".join(f"{k} {v}" for k, v in events.items()) if isinstance(events, Mapping) else "",
                d.get("resyncs"),
                d.get("gaps"),
                d.get("reconnects"),
                d.get("malformed"),
                Raw(esc(offset)),
                Raw(esc(sink_text)),
            ]
        )
    s.add(
        table(
            [
                "venue",
                "session",
                "events",
                "resyncs",
                "gaps",
                "reconnects",
                "malformed",
                "exchange clock offset",
                "sinks",
            ],
            rows,
            left=3,
        )
    )
    return [s]


def render_feed(found: Collection) -> list[Section]:
    from tickpath.report.feedplots import feed_section

    return [feed_section(a, _slug(_rel(found, a.path)), _rel(found, a.path)) for a in found.of("feed_db")]


RENDERERS: tuple[Callable[[Collection], list[Section]], ...] = (
    render_sweep,
    render_probe,
    render_feed_runs,
    render_feed,
    render_dq,
    render_busbench,
)
_ = Artifact  # re-exported type used by renderer signatures in feedplots
