"""Malformed inputs are listed and skipped; the rest renders; exit codes are documented ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickpath.cli.main import main
from tickpath.report import build_report
from tickpath.stats import LatencyRecorder


def _good_probe(path: Path) -> None:
    rec = LatencyRecorder()
    rec.record_many(range(50_000, 150_000, 1_000))
    doc = {
        "schema": "tickpath.probe/1",
        "host": {"hostname": "good-host"},
        "target": {"host": "api.test"},
        "methods": {"tcp": {"summary": rec.summary().to_dict("us"), "histogram": rec.encode()}},
        "errors": [],
    }
    path.write_text(json.dumps(doc))


def _empty_bus_run(path: Path) -> None:
    rec = LatencyRecorder()
    rec.record_loss(100)
    lat = {**rec.to_dict("us"), "p50": None, "p99": None, "p100": None}
    doc = {
        "schema": "tickpath.busbench/1",
        "pub": "nats://127.0.0.1:1",
        "sub": "nats://127.0.0.1:2",
        "size": 4096,
        "target_rate": 100000.0,
        "achieved_rate": 99998.5,
        "lost": 100,
        "sustained": False,
        "errors": ["subscriber connection to nats://127.0.0.1:1 closed by the server"],
        "latency_from_intended": lat,
        "latency_from_actual": lat,
    }
    path.write_text(json.dumps(doc))


def test_malformed_probe_is_skipped_and_valid_ones_rendered(tmp_path: Path) -> None:
    """A probe-schema file with a broken body is listed by path; the valid probe still renders."""
    _good_probe(tmp_path / "good.json")
    (tmp_path / "a.json").write_text('{"schema":"tickpath.probe/1","methods":5}')
    res = build_report(tmp_path)
    html = res.html_path.read_text()
    assert "good-host" in html
    assert any(p.startswith(str(tmp_path / "a.json")) and "skipped" in p for p in res.problems), res.problems
    assert 'id="problems"' in html and "a.json" in html


def test_cli_exit_code_with_skipped_files_is_0_or_2_with_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Report written with a corrupt file beside good ones: exit 0 and a warning; --strict exits 2."""
    _good_probe(tmp_path / "good.json")
    (tmp_path / "bad.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 0
    assert "bad.json" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--strict"]) == 2
    assert (tmp_path / "report.html").exists()
    (tmp_path / "bad.json").unlink()
    assert main(["report", str(tmp_path), "--strict"]) == 0


def test_busbench_run_with_nothing_received_shows_na_and_error(tmp_path: Path) -> None:
    """A run that lost everything shows n/a (not 0.000) and its error in the report table."""
    _empty_bus_run(tmp_path / "s4096-r100000.json")
    html = build_report(tmp_path).html_path.read_text()
    assert "closed by the server" in html
    row = html[html.index("<td>4,096</td>") :].split("</tr>")[0]
    assert row.count("n/a") == 6 and "0.000" not in row


def test_probe_warnings_are_shown_in_the_report(tmp_path: Path) -> None:
    """A probe document's ``warnings`` (clamped samples) appear in its report section."""
    _good_probe(tmp_path / "good.json")
    doc = json.loads((tmp_path / "good.json").read_text())
    doc["warnings"] = ["stream: 20 of 20 samples were outside the recorder's range and clamped to one hour"]
    (tmp_path / "good.json").write_text(json.dumps(doc))
    html = build_report(tmp_path).html_path.read_text()
    assert "Warnings" in html and "clamped to one hour" in html
