"""The three faces of a dq report: a terminal table (rich), JSON for machines, JUnit XML for CI."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.etree import ElementTree as ET

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from tickpath.dq.checks import CheckResult
from tickpath.dq.run import DqReport

MAX_FINDINGS_SHOWN = 10


def _ts(ns: Any) -> str:
    if ns is None:
        return "-"
    return dt.datetime.fromtimestamp(int(ns) / 1e9, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def to_json(report: DqReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)


def _finding_text(f: dict[str, Any]) -> str:
    where = "/".join(str(f[k]) for k in ("venue", "symbol", "channel") if f.get(k))
    start = f.get("from_ns") or f.get("at_ns") or f.get("minute_ns")
    span = _ts(start) + (f" .. {_ts(f['to_ns'])}" if f.get("to_ns") else "")
    return f"{f['issue']} {where} {span} {f.get('detail', '')}".strip()


def _print_table(console: Console, table: Table) -> None:
    """Print ``table`` whole: to a terminal at its width (numbers fold, never cut); elsewhere (CI logs,
    files, pipes) as wide as its content needs, as nobody resizes a log to see the cut-off digits."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(1_000_000), table).maximum
    if natural > console.width:
        table.width = natural
    console.print(table, crop=False)


def print_report(report: DqReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"[bold]tickpath dq[/] on {report.engine}, window {report.window.describe()} "
        f"(local receipt time, UTC); rows: " + ", ".join(f"{k} {v}" for k, v in sorted(report.rows_in_window.items()))
    )
    table = Table(show_lines=False)
    for col in ("check", "result", "summary"):
        table.add_column(col, no_wrap=col != "summary")
    for r in report.results:
        table.add_row(r.name, "[green]PASS[/]" if r.ok else "[red]FAIL[/]", r.summary)
    _print_table(console, table)
    for r in report.results:
        if r.name == "latency" and r.metrics:
            # no vertical rules: 11 columns of figures fit 80 columns better without them
            lat = Table(title="latency per message (ms)", box=box.SIMPLE_HEAD)
            cols = (
                "venue",
                "symbol",
                "channel",
                "clock",
                "count",
                "mean_ms",
                "p50_ms",
                "p99_ms",
                "p999_ms",
                "max_ms",
                "negative",
            )
            for c in cols:
                numeric = c.endswith(("ms", "count")) or c == "negative"
                # a number folds onto a second line rather than lose digits to an ellipsis
                lat.add_column(
                    c.removesuffix("_ms"),
                    justify="right" if numeric else "left",
                    overflow="fold" if numeric else "ellipsis",
                )
            for m in r.metrics:
                lat.add_row(*("-" if m[c] is None else str(m[c]) for c in cols))
            _print_table(console, lat)
        if not r.ok or (r.findings and r.name == "sequence"):
            for f in r.findings[:MAX_FINDINGS_SHOWN]:
                console.print(f"  {r.name}: {_finding_text(f)}", soft_wrap=not console.is_terminal)
            if len(r.findings) > MAX_FINDINGS_SHOWN:
                console.print(f"  {r.name}: ... {len(r.findings) - MAX_FINDINGS_SHOWN} more (see --json)")
        for n in r.notes[:MAX_FINDINGS_SHOWN]:  # not defects, but what the figures depend on
            console.print(f"  {r.name}: note: {n['detail']}", soft_wrap=not console.is_terminal, highlight=False)
    verdict = "[green]all checks passed[/]" if report.ok else "[red]some checks failed their thresholds[/]"
    console.print(f"{verdict} in {report.elapsed_s:.2f} s")


def _testcase(suite: ET.Element, r: CheckResult, seconds: float) -> None:
    case = ET.SubElement(suite, "testcase", classname="tickpath.dq", name=r.name, time=f"{seconds:.3f}")
    if not r.ok:
        fail = ET.SubElement(case, "failure", message=r.summary, type="CheckFailed")
        fail.text = "\n".join(_finding_text(f) for f in r.findings)
    out = ET.SubElement(case, "system-out")
    out.text = json.dumps({"counts": r.counts, "metrics": r.metrics, "notes": r.notes}, default=str)


def to_junit(report: DqReport) -> str:
    """JUnit XML: one test case per check, a failure element carrying its findings."""
    suite = ET.Element(
        "testsuite",
        name="tickpath dq",
        tests=str(len(report.results)),
        failures=str(sum(not r.ok for r in report.results)),
        errors="0",
        time=f"{report.elapsed_s:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="engine", value=report.engine)
    ET.SubElement(props, "property", name="window", value=report.window.describe())
    per = report.elapsed_s / max(len(report.results), 1)
    for r in report.results:
        _testcase(suite, r, per)
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
