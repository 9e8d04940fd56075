"""``tickpath ingest`` on the command line: JSON summary, errors as exit codes, never tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ingest.support import ingest_cli, make_events, nats_cluster
from tickpath.cli.main import main
from tickpath.sinks.nats import NatsSink


def test_bad_source_url_exits_2_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A non-NATS source is a configuration error (exit 2) with one clear line."""
    assert main(["ingest", "--from", "http://x", "--to", f"duckdb:{tmp_path / 'x.duckdb'}"]) == 2
    assert "nats://" in capsys.readouterr().err


def test_unknown_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --to scheme names the accepted forms."""
    assert main(["ingest", "--from", "nats://127.0.0.1:1", "--to", "bigquery:x"]) == 2
    assert "duckdb:PATH" in capsys.readouterr().err


@pytest.mark.integration
async def test_json_summary_reports_counts_and_latency(tmp_path: Path) -> None:
    """--json prints one object with messages, inserted rows and latency percentiles."""
    async with nats_cluster() as c:
        sink = NatsSink.from_url(c.client_urls[0], spool=str(tmp_path / "spool"))
        await sink.start()
        await sink.write(make_events(120))
        await sink.close()
        rc, out, err = await ingest_cli(
            "--from",
            c.client_urls[0],
            "--to",
            f"duckdb:{tmp_path / 'b.duckdb'}",
            "--idle-exit",
            "0.3",
            "--fetch-timeout",
            "0.2",
            "--json",
        )
    assert rc == 0, err
    d = json.loads(out)
    assert d["messages"] == 120 and d["inserted"] == 120 and d["duplicates"] == 0
    assert d["latency"]["publish_to_ingest"]["count"] > 0


def test_unreachable_server_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    """No NATS at the address: exit code 4 (connection failed) and a one-line error, no traceback."""
    rc = main(["ingest", "--from", "nats://127.0.0.1:1?stream=X", "--to", "duckdb::memory:", "--connect-timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 4
    assert "cannot connect to NATS" in err and "Traceback" not in err
