"""docs/security.md, TLS and credentials, against real servers.

TLS: every client context verifies the chain and the name unless a flag says otherwise; the NATS
clients of the feed's sink and of ingest refuse a server whose CA they were not given (and accept
it through ``SSL_CERT_FILE``). Credentials: a NATS password in a sink or source URL appears nowhere
a user can see it: not on stdout (``--json``), not in the logs at ``-vv``, not in the DuckDB store,
not in the report, not in an error.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from pathlib import Path

import pytest

from tests.ingest.support import nats_cluster
from tickpath.busbench import tls
from tickpath.report import build_report
from tickpath.sim import SimConfig, Simulator
from tickpath.tlsclient import client_context

SECRET = "s3cr3t-Pa55w0rd-do-not-show"


async def _tickpath(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpath.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


def test_client_contexts_verify_chain_and_name_by_default() -> None:
    """client_context() is CERT_REQUIRED with host-name checks; only verify=False (probe --insecure) lowers it."""
    ctx = client_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    loose = client_context(verify_host=False)
    assert loose.verify_mode == ssl.CERT_REQUIRED and not loose.check_hostname
    assert client_context(verify=False).verify_mode == ssl.CERT_NONE


@pytest.mark.integration
async def test_nats_clients_refuse_an_unknown_ca_and_accept_it_when_trusted(tmp_path: Path) -> None:
    """ingest to tls:// with a private CA: handshake refused (exit 4); with SSL_CERT_FILE=ca it gets
    through TLS to JetStream (exit 2: the stream does not exist yet)."""
    material = tls.generate(tmp_path / "tls", ["127.0.0.1", "localhost"])
    async with nats_cluster(tls=material.server) as c:
        url = c.client_urls[0].replace("nats://", "tls://")
        args = ("ingest", "--from", url, "--to", f"duckdb:{tmp_path / 'x.duckdb'}", "--connect-timeout", "2")
        code, _, err = await _tickpath(*args)
        assert code == 4 and "certificate verify failed" in err, err
        code, _, err = await _tickpath(*args, "--wait-stream", "0", env={"SSL_CERT_FILE": str(material.ca)})
        assert code == 2 and "stream TICKPATH does not exist" in err, err


@pytest.mark.integration
async def test_a_nats_password_is_never_shown(tmp_path: Path) -> None:
    """feed -> NATS with user:password, then ingest, both at -vv --json, then a report: no password anywhere;
    a wrong password is refused with an error that does not echo it."""
    sim = Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=100.0, book_levels=20))
    results = tmp_path / "results"
    results.mkdir()
    async with nats_cluster(user="tp", password=SECRET) as c, sim:
        host = c.client_urls[0].removeprefix("nats://")
        ep = sim.endpoint("futures")
        sink = f"nats://tp:{SECRET}@{host}?spool={tmp_path / 'spool'}"
        feed = await _tickpath(
            "-vv",
            "feed",
            "--venue",
            "futures",
            "--symbols",
            "BTCUSDT",
            "--base-url",
            ep.ws_url,
            "--rest-url",
            ep.rest_url,
            "--sink",
            sink,
            "--sink",
            f"duckdb:{results / 'ticks.duckdb'}",
            "--duration",
            "3",
            "--json",
        )
        assert feed[0] == 0, feed[2]
        (results / "feed.summary.json").write_text(feed[1])
        ingest = await _tickpath(
            "-vv",
            "ingest",
            "--from",
            f"nats://tp:{SECRET}@{host}",
            "--to",
            f"duckdb:{results / 'bus.duckdb'}",
            "--idle-exit",
            "1",
            "--json",
        )
        assert ingest[0] == 0 and '"inserted"' in ingest[1], ingest[2]
        wrong = await _tickpath(
            "ingest", "--from", f"nats://tp:{SECRET}x@{host}", "--to", f"duckdb:{tmp_path / 'w.duckdb'}"
        )
        assert wrong[0] != 0 and "refused the credentials" in wrong[2], wrong[2]
    report = build_report(results)
    for name, text in (("feed", feed[1] + feed[2]), ("ingest", ingest[1] + ingest[2]), ("refused", wrong[2])):
        assert SECRET not in text, name
        assert "tp:" not in text.replace("tp://", ""), name  # no user:password pair either
    for path in [*results.rglob("*"), report.html_path]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert "feed_stopped" in feed[2] and "ingest_finished" in ingest[2]  # the logs were on
