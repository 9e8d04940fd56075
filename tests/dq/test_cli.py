"""``tickpath dq`` end to end through the CLI: exit codes, JSON, JUnit XML, --print-sql, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import sqlglot

from tests.dq.market import WINDOW, Defects, make_store
from tickpath.cli.dq import parse_time
from tickpath.cli.main import main
from tickpath.errors import ConfigError

SINCE, UNTIL = str(WINDOW[0] / 1e9), str(WINDOW[1] / 1e9)


def _store(tmp_path: Path, defects: Defects | None = None) -> Path:
    db = tmp_path / "ticks.duckdb"
    make_store(str(db), defects=defects).close()
    return db


def test_clean_store_exits_zero_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A clean store: exit 0 and a JSON report with all five checks passing."""
    db = _store(tmp_path)
    assert main(["dq", "--db", str(db), "--since", SINCE, "--until", UNTIL, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [c["name"] for c in report["checks"]] == [
        "latency",
        "sequence",
        "freshness",
        "integrity",
        "completeness",
    ]


def test_failed_check_exits_nine_and_writes_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A gap: exit 9, the terminal table says FAIL, and JUnit XML has one failure for 'sequence'."""
    db = _store(tmp_path, Defects(gap_at_s=30))
    junit = tmp_path / "dq.xml"
    assert main(["dq", "--db", str(db), "--since", SINCE, "--until", UNTIL, "--junit", str(junit)]) == 9
    out = capsys.readouterr().out
    assert "FAIL" in out and "gap" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "5" and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["sequence"]


def test_print_sql_for_bigquery_is_valid_and_partition_filtered(capsys: pytest.CaptureFixture[str]) -> None:
    """--print-sql --bigquery prints parseable BigQuery SQL per check, each with event_date filters."""
    assert (
        main(
            [
                "dq",
                "--bigquery",
                "tick-proj.market",
                "--print-sql",
                "--check",
                "sequence",
                "--since",
                SINCE,
                "--until",
                UNTIL,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("-- check: sequence")
    sql = out.split("\n", 1)[1].rstrip().rstrip(";")
    sqlglot.parse_one(sql, read="bigquery")
    assert "`tick-proj`.`market`.`l2`" in sql and "event_date BETWEEN" in sql


def test_missing_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing DuckDB file exits 2 with one line naming the path, no traceback."""
    assert main(["dq", "--db", str(tmp_path / "nope.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "no DuckDB store at" in err and "Traceback" not in err


def test_empty_window_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A window without data exits 2 and says to widen --since/--until."""
    db = _store(tmp_path)
    assert main(["dq", "--db", str(db), "--since", "2001-01-01", "--until", "2001-01-02"]) == 2
    assert "widen --since/--until" in capsys.readouterr().err


def test_time_arguments() -> None:
    """Times parse as ISO 8601 (Z or naive = UTC), Unix seconds, or an age before now."""
    now = 1_700_000_000 * 10**9
    assert parse_time("2023-11-14T22:13:20Z", now) == now
    assert parse_time("2023-11-14T22:13:20", now) == now
    assert parse_time("1700000000", now) == now
    assert parse_time("30m", now) == now - 1800 * 10**9
    with pytest.raises(ConfigError, match="cannot read time"):
        parse_time("yesterday", now)


def test_until_before_since_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--until before --since is a usage error, not an empty pass."""
    db = _store(tmp_path)
    assert main(["dq", "--db", str(db), "--since", UNTIL, "--until", SINCE]) == 2
    assert "empty window" in capsys.readouterr().err
