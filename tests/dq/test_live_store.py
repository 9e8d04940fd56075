"""``tickpath dq`` on a store another process is writing (a running feed holds DuckDB's file lock): it
checks a copy of the store's last checkpoint, ends the window at its newest row, and cleans up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dq.market import T0_MS, build_events
from tickpath.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CUT_NS = T0_MS * 1_000_000 + 60 * 10**9  # rows received before this are checkpointed, later ones only in the WAL
SINCE = str(T0_MS / 1000 - 10)

pytestmark = pytest.mark.integration  # a second process holds the store's file lock

WRITER = """
import sys
import duckdb
from tests.dq.market import build_events, session_row, write_store
from tickpath import tables
path, mode, cut = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect(path)
if mode == "empty":
    for t in tables.SCHEMAS:
        con.execute(tables.duckdb_ddl(t))
else:
    events = build_events(70.0)
    write_store(con, [e for e in events if e.receipt_ns < cut], session_row()["rows"])
con.execute("CHECKPOINT")
if mode != "empty":
    write_store(con, [e for e in events if e.receipt_ns >= cut], [])  # in the WAL only
print("ready", flush=True)
sys.stdin.read()  # hold the store (and its lock) until the test closes stdin
"""


def _writer(db: Path, mode: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), mode, str(CUT_NS)],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "ticks.duckdb"
    yield from (db for _ in _writer(db, "rows"))


def test_a_live_store_is_checked_as_of_its_last_checkpoint(live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every checkpointed row is checked, none of the WAL's; the window ends at the newest checkpointed
    row (so the streams do not look silent up to the wall clock); the copy is deleted afterwards."""
    assert main(["dq", "--db", str(live), "--since", SINCE, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    early = [e for e in build_events(70.0) if e.receipt_ns < CUT_NS]
    assert sum(report["rows_in_window"].values()) == len(early)
    assert report["window"]["until_ns"] == max(e.receipt_ns for e in early) + 1
    assert "snapshot" in report["engine"] and "being written by" in captured.err
    assert [p.name for p in live.parent.iterdir() if p.name.startswith(".tickpath-dq-")] == []


def test_a_live_store_keeps_an_explicit_until(live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--until is the user's: a window past the checkpoint is taken as given (its tail is then silent)."""
    until = str(T0_MS / 1000 + 80)
    main(["dq", "--db", str(live), "--since", SINCE, "--until", until, "--json"])
    assert json.loads(capsys.readouterr().out)["window"]["until_ns"] == int(float(until) * 1e9)


def test_a_live_store_with_no_checkpointed_rows_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A feed that has only created its tables: exit 2 and a line saying to try again, no traceback."""
    db = tmp_path / "ticks.duckdb"
    for _ in _writer(db, "empty"):
        assert main(["dq", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "no rows yet" in err and "Traceback" not in err


def test_a_store_checkpointed_during_every_copy_is_refused(
    live: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Headers that differ before and after each copy mean a checkpoint completed meanwhile: after five
    tries dq gives up with a clear message rather than read a mix of two checkpoints."""
    from tickpath.dq import duckdb_runner

    calls = iter(range(1000))
    monkeypatch.setattr(duckdb_runner, "_headers", lambda p: str(next(calls)).encode())
    assert main(["dq", "--db", str(live), "--since", SINCE]) == 2
    assert "checkpointed faster than it can be copied" in capsys.readouterr().err
    assert [p.name for p in live.parent.iterdir() if p.name.startswith(".tickpath-dq-")] == []
