"""Output of a probe run: a terminal table, JSON, CSV, ``.hgrm`` files and encoded histograms.

The JSON schema (``tickpath.probe/1``) is documented in ``docs/probe.md``; the CSV has one row per
method and target with the same summary fields, for spreadsheets; ``.hgrm`` files are
HdrHistogram's percentile text, one per histogram, for plotting; the encoded histograms inside
the JSON merge losslessly across machines with :func:`tickpath.stats.merge_encoded`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tickpath.errors import SinkError
from tickpath.probe.runner import ProbeResult

CSV_FIELDS = (
    "method",
    "target",
    "count",
    "losses",
    "loss_ratio",
    "min",
    "p50",
    "p90",
    "p99",
    "p999",
    "p9999",
    "max",
    "mean",
    "unit",
)


def csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(method: str, target: str, summary: dict[str, Any]) -> None:
        rows.append({"method": method, "target": target, **{k: summary.get(k) for k in CSV_FIELDS[2:]}})

    for method, body in data["methods"].items():
        if "summary" in body:
            add(method, "all", body["summary"])
        for target, per in body.get("per_ip", {}).items():
            add(method, target, per["summary"])
        if method == "stream":
            for label, fields in body.get("per_type", {}).items():
                for fld, series in fields.items():
                    add(method, f"{label}.{fld}.raw", series["raw"])
                    if "corrected" in series:
                        add(method, f"{label}.{fld}.corrected", series["corrected"])
    return rows


def to_csv(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(data))
    return buf.getvalue()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def write_outputs(
    result: ProbeResult,
    *,
    json_path: str | None = None,
    csv_path: str | None = None,
    hgrm_dir: str | None = None,
) -> list[str]:
    """Write the requested files; returns their paths. Each file is written whole or not at all."""
    written: list[str] = []
    data = result.to_dict()
    try:
        if json_path:
            _atomic_write(Path(json_path), result.to_json() + "\n")
            written.append(json_path)
        if csv_path:
            _atomic_write(Path(csv_path), to_csv(data))
            written.append(csv_path)
        if hgrm_dir:
            d = Path(hgrm_dir)
            d.mkdir(parents=True, exist_ok=True)
            for name, rec in result.recorders().items():
                if rec.count:
                    p = d / f"{_safe(name)}.hgrm"
                    rec.write_hgrm(p, "us")
                    written.append(str(p))
    except OSError as exc:
        raise SinkError(f"cannot write probe results: {exc}") from exc
    return written


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


def render_table(result: ProbeResult, console: Console) -> None:
    """The human summary: one row per method (and per IP), then stream types, clock and errors."""
    data = result.to_dict()
    t = data["target"]
    console.print(f"[bold]tickpath probe[/] {t.get('venue')} rest={t.get('rest_url')} ws={t.get('ws_url')}")
    for host, edge in t.get("edge", {}).items():
        if edge:
            console.print(f"[yellow]note[/] {host}: {edge['note']} (via {edge['via']})")
    console.print(_methods_table(data["methods"]))
    off = data["clock"].get("offset")
    if off:
        console.print(
            f"clock offset (exchange − local): {off['offset_us']:,.1f} µs ± {off['bound_us']:,.1f} µs "
            f"(min RTT {off['min_rtt_us']:,.1f} µs, {off['used_samples']}/{off['samples']} samples)"
        )
    stream = data["methods"].get("stream")
    if stream and stream.get("per_type"):
        console.print(_stream_table(stream["per_type"]))
        console.print(f"[dim]{stream['note']}[/]")
    _print_local_clock(data["clock"], console)
    path = data["methods"].get("path")
    if path:
        _print_path(path, console)
    for method, body in data["methods"].items():
        if isinstance(body, dict) and body.get("note") and method != "stream":
            console.print(f"[dim]{method}: {body['note']}[/]")
    print_warnings(result, console)
    for err in data["errors"]:
        where = f" {err['target']}" if err.get("target") else ""
        console.print(f"[red]error[/] {err['method']}{where}: {err['message']}")


def _methods_table(methods: dict[str, Any]) -> Table:
    """Round trips and connects: a row per method, and per IP when it reached several."""
    table = Table(title="round trips and connects (µs, from each sample's intended time)")
    for col in ("method", "target", "p50", "p90", "p99", "p99.9", "max", "count", "losses"):
        table.add_column(col, justify="left" if col in ("method", "target") else "right")
    for method, body in methods.items():
        if "summary" not in body or method == "stream":
            continue
        rows = [("all", body["summary"])] + [(k, v["summary"]) for k, v in body.get("per_ip", {}).items()]
        if len(rows) == 2:
            rows = rows[1:]  # one target: the per-IP row says it all
        for target, s in rows:
            if not s["count"]:
                table.add_row(method, target, "-", "-", "-", "-", "-", "0", str(s["losses"]))
                continue
            cells = [_fmt(s[k]) for k in ("p50", "p90", "p99", "p999", "max")]
            table.add_row(method, target, *cells, str(s["count"]), str(s["losses"]))
    return table


def _stream_table(per_type: dict[str, Any]) -> Table:
    st = Table(title="one-way stream latency (µs, receipt − exchange event time)")
    for col in ("type", "field", "raw p50", "corrected p50", "corrected p99", "± bound", "count"):
        st.add_column(col, justify="left" if col in ("type", "field") else "right")
    for label, fields in per_type.items():
        for fld, s in fields.items():
            corr = s.get("corrected", {})
            st.add_row(
                label,
                fld,
                _fmt(s.get("raw_median_signed")),
                _fmt(s.get("corrected_median_signed")),
                _fmt(corr.get("p99")),
                _fmt(s.get("bound_us")),
                str(s["count"]),
            )
    return st


def _print_local_clock(clock: dict[str, Any], console: Console) -> None:
    chrony = clock.get("chrony", {})
    if chrony.get("available"):
        console.print(
            f"local clock: chrony source {chrony.get('source')} stratum {chrony.get('stratum')} "
            f"offset {chrony.get('system_offset_s', 0) * 1e6:,.1f} µs"
        )
    else:
        console.print(f"local clock: {chrony.get('note', 'unknown')}")
    console.print(f"PTP hardware clock: {'present' if clock.get('ptp_hardware_clock') else 'absent'}")


def _path_line(ip: str, entry: dict[str, Any]) -> str:
    """One address's path: hops per tool, its network, where it enters a CDN, whether it is favoured."""
    parts = [f"path to {ip} ({'/'.join(entry.get('roles', [])) or '?'}):"]
    for tool in ("traceroute", "mtr"):
        info = entry.get(tool) or {}
        if "hops" in info:
            parts.append(f"{tool} {len(info['hops'])} hop(s)")
        elif info.get("error"):
            parts.append(f"{tool} failed ({info['error']})")
    net = entry.get("network")
    if net:
        parts.append(f"network {net['provider']}" + (f" (AS{net['asn']})" if net.get("asn") else ""))
    edge = entry.get("edge_hop")
    if edge:
        parts.append(f"enters {edge['provider']} at hop {edge['hop']} ({edge['address']})")
    figures = entry.get("figures_us") or {}
    if figures:
        parts.append(", ".join(f"{k} {v:,.1f} µs" for k, v in figures.items()))
    if entry.get("favoured"):
        parts.append("[green]favoured[/]")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:])


def _print_path(path: dict[str, Any], console: Console) -> None:
    top = {t: (path.get(t) or {}) for t in ("traceroute", "mtr")}
    for tool, info in top.items():
        if not info.get("available", True):
            console.print(f"[yellow]{tool}[/]: {info.get('note')}")
    per_ip = path.get("addresses") or {}
    for ip, entry in per_ip.items():
        console.print(_path_line(ip, entry), highlight=False)
    fav = path.get("favoured") or {}
    if fav.get("ip") and len(per_ip) > 1:
        others = {m: c["ip"] for m in ("ws", "tcp", "rest") if isinstance(c := fav.get(m), dict)}
        split = (
            "" if fav.get("agree") else " (methods disagree: " + ", ".join(f"{m} {i}" for m, i in others.items()) + ")"
        )
        console.print(f"favoured address: {fav['ip']} by {fav['by']}{split}", highlight=False)
    if not per_ip:  # a document from before per-address paths
        for tool, info in top.items():
            if "hops" in info:
                console.print(f"{tool}: {len(info['hops'])} hop(s) to {path.get('destination')}")


def print_warnings(result: ProbeResult, console: Console) -> None:
    """The result's warnings (clamped samples and what they mean), one line each.

    Also for ``--quiet`` runs: a warning says the figures are not latencies, so it is not progress.
    """
    for w in result.to_dict().get("warnings", []):
        console.print(f"[yellow]warning[/] {w}", highlight=False)
