"""The JetStream sink against a NATS server without JetStream: one clear error, a connection-style
exit code, and no spool left behind. Runs a real ``nats-server`` (skipped when it is not installed).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.ingest.support import require_nats_server
from tickpath.errors import ConnectionFailedError
from tickpath.natsserver import NatsCluster
from tickpath.sinks.nats import NatsSink

pytestmark = pytest.mark.integration


async def test_start_without_jetstream_says_so_with_exit_4(tmp_path: Path) -> None:
    """start() on a server without -js raises ConnectionFailedError naming JetStream and -js."""
    require_nats_server()
    spool = tmp_path / "spool"
    async with NatsCluster(1, jetstream=False) as c:
        sink = NatsSink.from_url(c.client_urls[0], spool=str(spool), connect_timeout_s=2.0)
        with pytest.raises(ConnectionFailedError) as info:
            await sink.start()
    assert info.value.exit_code == 4
    assert "JetStream is not enabled on " + c.client_urls[0] in str(info.value)
    assert "-js" in str(info.value) and "code=None" not in str(info.value)


async def test_feed_cli_against_a_server_without_jetstream_exits_4(tmp_path: Path) -> None:
    """'tickpath feed --sink nats://...' without JetStream ends with exit 4 and the one-line reason
    (the venue URLs point nowhere: the sink is started, and refused, first)."""
    require_nats_server()
    async with NatsCluster(1, jetstream=False) as c:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.cli.main",
            "feed",
            "--venue",
            "spot",
            "--symbols",
            "BTCUSDT",
            "--sink",
            f"{c.client_urls[0]}?spool={tmp_path / 'spool'}",
            "--base-url",
            "ws://127.0.0.1:1",
            "--rest-url",
            "http://127.0.0.1:1",
            "--no-symbol-check",
            "--duration",
            "5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
        )
        _, err_b = await asyncio.wait_for(proc.communicate(), 60)
    err = err_b.decode()
    assert proc.returncode == 4, err
    assert "JetStream is not enabled" in err and "Traceback" not in err
