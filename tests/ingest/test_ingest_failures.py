"""``ingest`` when things go wrong: no JetStream, refused logins, bad options, a server that goes
away, and failed runs that must leave no empty target behind; plus progress that follows commits.

Tests marked integration run real ``nats-server`` processes (skipped when it is not installed).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import duckdb
import pytest

from tests.ingest.support import ingest_cli, make_events, nats_cluster
from tests.ingest.test_ingest import _publish
from tickpath.cli.main import main
from tickpath.errors import ConfigError, ConnectionFailedError, HandshakeError
from tickpath.ingest import IngestConfig, IngestResult, run_ingest

# -- option checks (no server needed: refused before connecting) ---------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--ack-wait", "-5"),
        ("--ack-wait", "0"),
        ("--connect-timeout", "0"),
        ("--connect-timeout", "-1"),
        ("--fetch-timeout", "inf"),
    ],
)
def test_non_positive_durations_exit_2_naming_the_option(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A zero, negative or infinite duration is a config error (exit 2) naming the option."""
    db = tmp_path / "x.duckdb"
    rc = main(["ingest", "--from", "nats://127.0.0.1:1", "--to", f"duckdb:{db}", option, value])
    assert rc == 2
    assert option in capsys.readouterr().err
    assert not db.exists()


def test_credentials_are_passed_as_options_not_in_server_urls() -> None:
    """user:password@ and token@ become connect options; the server URLs (used in messages) carry none."""
    cfg = IngestConfig("nats://u:s3cret@h1:4222,h2?stream=S", "duckdb:x.duckdb")
    servers, _ = cfg.nats()
    assert servers == ["nats://h1:4222", "nats://h2:4222"]
    assert cfg.credentials() == {"user": "u", "password": "s3cret"}
    assert IngestConfig("nats://tok@h1", "duckdb:x.duckdb").credentials() == {"token": "tok"}


# -- the source is checked before the target is created ------------------------------------------


def test_unreachable_server_leaves_no_target_and_no_directory(tmp_path: Path) -> None:
    """Connection refused (exit 4) creates neither the DuckDB file nor its missing parent directory."""
    db = tmp_path / "new" / "dir" / "x.duckdb"
    rc = main(["ingest", "--from", "nats://127.0.0.1:1", "--to", f"duckdb:{db}", "--connect-timeout", "1"])
    assert rc == 4
    assert not (tmp_path / "new").exists()


@pytest.mark.integration
async def test_missing_stream_exits_2_and_leaves_no_file(tmp_path: Path) -> None:
    """A stream that does not exist, waited for 0.5 s: exit 2, and no empty .duckdb (or parquet dir) is left."""
    async with nats_cluster(jetstream=True) as c:
        for target in (f"duckdb:{tmp_path / 'x3.duckdb'}", f"parquet:{tmp_path / 'lake'}"):
            args = ("--from", f"{c.client_urls[0]}?stream=NOPE", "--to", target, "--wait-stream", "0.5")
            rc, _, err = await ingest_cli(*args)
            assert rc == 2, err
            assert "does not exist" in err
    assert list(tmp_path.iterdir()) == []


async def _cancel_once_opened(cfg: IngestConfig, path: Path) -> None:
    """Start ``cfg``'s run, cancel it once ``path`` exists (its first fetch waiting, nothing committed)."""
    existed = path.exists()
    task = asyncio.create_task(run_ingest(cfg))
    while not existed and not path.exists():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.integration
async def test_a_run_ending_before_its_first_commit_removes_only_what_it_created(tmp_path: Path) -> None:
    """A run stopped before its first commit removes the file and directory it created, but an
    existing DuckDB file stays."""
    import nats

    async with nats_cluster(jetstream=True) as c:
        nc = await nats.connect(c.client_urls[0])
        await nc.jetstream().add_stream(name="EMPTY", subjects=["empty.>"])
        await nc.close()
        await _publish(c.client_urls[0], make_events(30), tmp_path / "spool")
        kept = tmp_path / "kept.duckdb"
        await run_ingest(IngestConfig(c.client_urls[0], f"duckdb:{kept}", idle_exit_s=0.3, fetch_timeout_s=0.2))
        empty = f"{c.client_urls[0]}?stream=EMPTY&prefix=empty"
        new = tmp_path / "sub" / "new.duckdb"
        await _cancel_once_opened(IngestConfig(empty, f"duckdb:{new}", fetch_timeout_s=5.0), new)
        await _cancel_once_opened(IngestConfig(empty, f"duckdb:{kept}", fetch_timeout_s=5.0), kept)
    assert kept.exists()
    assert not (tmp_path / "sub").exists()


# -- no JetStream, refused credentials ----------------------------------------------------------


@pytest.mark.integration
async def test_server_without_jetstream_is_one_line_exit_4(tmp_path: Path) -> None:
    """No JetStream on the server: one line saying so (exit 4), no traceback, no file left."""
    async with nats_cluster(jetstream=False) as c:
        rc, _, err = await ingest_cli(
            "--from", c.client_urls[0], "--to", f"duckdb:{tmp_path / 'x.duckdb'}", "--idle-exit", "1"
        )
    assert rc == 4, err
    assert "JetStream is not enabled" in err and "-js" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.integration
async def test_refused_login_says_so_and_good_login_reaches_jetstream_check(tmp_path: Path) -> None:
    """No credentials for an auth server: 'refused the credentials' (exit 4); with them (no -js): the
    JetStream line; the password is in neither message."""
    async with nats_cluster(jetstream=False, user="alice", password="pw-s3cret") as c:
        host = c.client_urls[0].removeprefix("nats://")
        db = f"duckdb:{tmp_path / 'x.duckdb'}"
        with pytest.raises(HandshakeError, match="refused the credentials: Authorization Violation"):
            await run_ingest(IngestConfig(c.client_urls[0], db, connect_timeout_s=1.0))
        with pytest.raises(HandshakeError, match="refused the credentials") as bad:
            await run_ingest(IngestConfig(f"nats://alice:wrong-pw@{host}", db, connect_timeout_s=1.0))
        assert "wrong-pw" not in str(bad.value)
        with pytest.raises(ConnectionFailedError, match="JetStream is not enabled") as nojs:
            await run_ingest(IngestConfig(f"nats://alice:pw-s3cret@{host}", db, connect_timeout_s=1.0))
        assert "pw-s3cret" not in str(nojs.value)
    assert not (tmp_path / "x.duckdb").exists()


# -- a server that goes away ---------------------------------------------------------------------


@pytest.mark.integration
async def test_idle_exit_gives_up_on_a_lost_server_and_keeps_committed_rows(tmp_path: Path) -> None:
    """With --idle-exit and --wait-stream 1, a killed server ends the run with ConnectionFailedError
    (not a hang); the rows committed before are in the file."""
    events = make_events(90)
    db = tmp_path / "b.duckdb"
    async with nats_cluster(jetstream=True) as c:
        await _publish(c.client_urls[0], events, tmp_path / "spool")
        committed = asyncio.Event()

        def on_commit(r: IngestResult) -> None:
            if r.inserted == len(events):
                committed.set()

        run = asyncio.create_task(
            run_ingest(
                IngestConfig(
                    c.client_urls[0],
                    f"duckdb:{db}",
                    idle_exit_s=1.0,
                    connect_timeout_s=1.0,
                    fetch_timeout_s=0.2,
                    wait_stream_s=1.0,
                ),
                progress=on_commit,
            )
        )
        # Kill while the run is still inside its idle wait (1 s), so only the lost server can end it.
        await asyncio.wait_for(committed.wait(), 30)
        await c.kill(0)
        # The guard timeout only stops a hang from blocking the suite; the bound under test is ~1-2 s.
        with pytest.raises(ConnectionFailedError, match="has not answered"):
            await asyncio.wait_for(run, 30)
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(
            "SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM tickers) + (SELECT count(*) FROM l2)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == len(events)


# -- progress follows commits --------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("batch", [5000, 200])
async def test_progress_reports_every_commit_including_the_last(batch: int, tmp_path: Path) -> None:
    """The progress callback sees the counts after each commit, so its last call shows every message."""
    events = make_events(450)
    seen: list[int] = []
    async with nats_cluster(jetstream=True) as c:
        await _publish(c.client_urls[0], events, tmp_path / "spool")
        await run_ingest(
            IngestConfig(
                c.client_urls[0], f"duckdb:{tmp_path / 'p.duckdb'}", batch=batch, idle_exit_s=0.3, fetch_timeout_s=0.2
            ),
            progress=lambda r: seen.append(r.messages),
        )
    assert seen and seen[-1] == len(events)
    assert seen == sorted(seen) and seen[0] > 0


@pytest.mark.integration
async def test_explicit_progress_without_a_terminal_prints_plain_lines(tmp_path: Path) -> None:
    """--progress with stderr not a terminal prints plain progress lines, ending at the final count."""
    async with nats_cluster(jetstream=True) as c:
        await _publish(c.client_urls[0], make_events(120), tmp_path / "spool")
        rc, _, err = await ingest_cli(
            "--from",
            c.client_urls[0],
            "--to",
            f"duckdb:{tmp_path / 'p.duckdb'}",
            "--idle-exit",
            "0.3",
            "--fetch-timeout",
            "0.2",
            "--progress",
        )
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("ingest: ")]
    assert lines and lines[-1].startswith("ingest: 120 messages, 120 inserted")


@pytest.mark.integration
async def test_a_consumer_the_server_refuses_is_a_config_error(tmp_path: Path) -> None:
    """A prefix the stream does not take: the server's refusal of the consumer is a ConfigError
    (exit 2) naming it, not a traceback, and no file is left."""
    async with nats_cluster(jetstream=True) as c:
        await _publish(c.client_urls[0], make_events(3), tmp_path / "spool")
        with pytest.raises(ConfigError, match="refused JetStream consumer"):
            await run_ingest(IngestConfig(f"{c.client_urls[0]}?prefix=elsewhere", f"duckdb:{tmp_path / 'x.duckdb'}"))
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.integration
async def test_json_run_interrupted_before_any_batch_still_prints_its_summary(tmp_path: Path) -> None:
    """`ingest --json` stopped by SIGINT before its first batch prints one JSON object (0 messages,
    "interrupted": true) and exits 130; stdout used to be empty."""
    import json
    import signal
    import sys

    import nats

    async with nats_cluster(jetstream=True) as c:
        nc = await nats.connect(c.client_urls[0])
        await nc.jetstream().add_stream(name="EMPTY", subjects=["empty.>"])
        await nc.close()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.cli.main",
            "ingest",
            "--from",
            f"{c.client_urls[0]}?stream=EMPTY&prefix=empty",
            "--to",
            f"duckdb:{tmp_path / 'i.duckdb'}",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        await asyncio.sleep(3.0)  # connected and pulling (an empty stream: no batch will come)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, err.decode()
    doc = json.loads(out.decode())
    assert doc["messages"] == 0 and doc["interrupted"] is True
