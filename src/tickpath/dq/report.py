"""The three faces of a dq report: a terminal table (rich), JSON for machines, JUnit XML for CI."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
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


def print_report(report: DqReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]tickpath dq[/] on {report.engine}, window {report.window.describe()} "
                  f"(local receipt time, UTC); rows: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(report.rows_in_window.items())))
    table = Table(show_lines=False)
    for col in ("check", "result", "summary"):
        table.add_column(col)
    for r in report.results:
        table.add_row(r.name, "[green]PASS[/]" if r.ok else "[red]FAIL[/]", r.summary)
    console.print(table)
    for r in report.results:
        if r.name == "latency" and r.metrics:
            lat = Table(title="latency per message (ms)")
            cols = ("venue", "symbol", "channel", "clock", "count", "mean_ms", "p50_ms", "p99_ms", "p999_ms",
                    "max_ms", "negative")
            for c in cols:
                lat.add_column(c.removesuffix("_ms"), justify="right" if c.endswith(("ms", "count")) else "left")
            for m in r.metrics:
                lat.add_row(*(str(m[c]) for c in cols))
            console.print(lat)
        if not r.ok or (r.findings and r.name == "sequence"):
            for f in r.findings[:MAX_FINDINGS_SHOWN]:
                console.print(f"  {r.name}: {_finding_text(f)}")
            if len(r.findings) > MAX_FINDINGS_SHOWN:
                console.print(f"  {r.name}: ... {len(r.findings) - MAX_FINDINGS_SHOWN} more (see --json)")
    verdict = "[green]all checks passed[/]" if report.ok else "[red]some checks failed their thresholds[/]"
    console.print(f"{verdict} in {report.elapsed_s:.2f} s")


def _testcase(suite: ET.Element, r: CheckResult, seconds: float) -> None:
    case = ET.SubElement(suite, "testcase", classname="tickpath.dq", name=r.name, time=f"{seconds:.3f}")
    if not r.ok:
        fail = ET.SubElement(case, "failure", message=r.summary, type="CheckFailed")
        fail.text = "\n".join(_finding_text(f) for f in r.findings)
    out = ET.SubElement(case, "system-out")
    out.text = json.dumps({"counts": r.counts, "metrics": r.metrics}, default=str)


def to_junit(report: DqReport) -> str:
    """JUnit XML: one test case per check, a failure element carrying its findings."""
    suite = ET.Element("testsuite", name="tickpath dq", tests=str(len(report.results)),
                       failures=str(sum(not r.ok for r in report.results)), errors="0",
                       time=f"{report.elapsed_s:.3f}")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="engine", value=report.engine)
    ET.SubElement(props, "property", name="window", value=report.window.describe())
    per = report.elapsed_s / max(len(report.results), 1)
    for r in report.results:
        _testcase(suite, r, per)
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
