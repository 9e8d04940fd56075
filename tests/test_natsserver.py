"""Integration tests of the nats-server manager: clusters start routed, nodes die and come back,
TLS and auth are enforced, JetStream works, and nothing is left behind."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import nats
import pytest

from tickpath.busbench import tls
from tickpath.busbench.wire import NatsConn
from tickpath.errors import ConfigError, ConnectionFailedError, HandshakeError, ToolMissingError
from tickpath.nats.url import Credentials
from tickpath.natsserver import NatsCluster
from tickpath.tlsclient import client_context

pytestmark = pytest.mark.integration
NATS = shutil.which("nats-server") or shutil.which("/usr/sbin/nats-server")
needs_nats = pytest.mark.skipif(NATS is None, reason="nats-server not installed (make test installs it)")


async def _roundtrip(pub_url: str, sub_url: str, **kw: object) -> bytes:
    sub = await nats.connect(sub_url, **kw)
    pub = await nats.connect(pub_url, **kw)
    try:
        s = await sub.subscribe("t.x")
        await sub.flush()
        for _ in range(100):  # interest propagates over the route asynchronously
            await pub.publish("t.x", b"hello")
            try:
                msg = await s.next_msg(timeout=0.05)
                return bytes(msg.data)
            except nats.errors.TimeoutError:
                continue
        raise AssertionError("no message crossed the route")
    finally:
        await pub.close()
        await sub.close()


@needs_nats
async def test_cluster_routes_kill_and_restart() -> None:
    """A 3-node cluster routes messages; a killed node refuses clients; a restarted one routes again."""
    async with NatsCluster(n=3) as c:
        urls = c.client_urls
        assert len(set(urls)) == 3
        assert await _roundtrip(urls[0], urls[2]) == b"hello"
        await c.kill(2)
        assert not c.nodes[2].running
        with pytest.raises(ConnectionFailedError):
            NatsConn(urls[2], timeout=1.0).connect()
        await c.restart(2)
        assert c.client_urls == urls  # same ports after a restart
        assert await _roundtrip(urls[0], urls[2]) == b"hello"
        workdir, procs = c.workdir, [nd.process for nd in c.nodes]
    assert not workdir.exists()
    assert all(p is not None and p.returncode is not None for p in procs)


@needs_nats
async def test_tls_and_auth_are_enforced(tmp_path: Path) -> None:
    """With TLS material and a password, wrong credentials are refused and right ones work."""
    m = tls.generate(tmp_path)
    async with NatsCluster(n=2, tls=m.server, verify_clients=True, user="u", password="pw") as c:
        assert all(u.startswith("tls://") for u in c.client_urls)
        ctx = client_context(m.ca, m.client.cert, m.client.key)
        with pytest.raises(HandshakeError):
            NatsConn(c.client_urls[0], ssl_context=ctx, credentials=Credentials("u", "wrong")).connect()
        ok = NatsConn(c.client_urls[0], ssl_context=ctx, credentials=Credentials("u", "pw"))
        ok.connect()
        assert ok.rtt_ns(2)[0] > 0
        ok.close()
        assert "pw" not in " ".join(c.client_urls)


@needs_nats
async def test_token_auth() -> None:
    """A token-protected node refuses a wrong token and accepts the right one."""
    async with NatsCluster(n=1, token="t0ken") as c:
        with pytest.raises(HandshakeError):
            NatsConn(c.client_urls[0], credentials=Credentials(token="nope")).connect()
        ok = NatsConn(c.client_urls[0], credentials=Credentials(token="t0ken"))
        ok.connect()
        ok.close()


@needs_nats
async def test_jetstream_stream_accepts_messages() -> None:
    """jetstream=True gives each node a store dir; a stream can be created and written."""
    async with NatsCluster(n=1, jetstream=True) as c:
        nc = await nats.connect(c.client_urls[0])
        try:
            js = nc.jetstream()
            await js.add_stream(name="T", subjects=["t.>"])
            ack = await js.publish("t.a", b"1")
            assert ack.seq == 1
        finally:
            await nc.close()
        assert (c.workdir / "js0").exists()


async def test_missing_binary_is_a_tool_error() -> None:
    """A nats-server path that does not exist raises ToolMissingError, not a traceback."""
    with pytest.raises(ToolMissingError):
        await NatsCluster(binary="/nonexistent/nats-server").start()


def test_bad_cluster_settings_are_refused() -> None:
    """Zero nodes, token plus user, or a user without password are ConfigErrors."""
    for kw in ({"n": 0}, {"token": "t", "user": "u", "password": "p"}, {"user": "u"}):
        with pytest.raises(ConfigError):
            NatsCluster(**kw)  # type: ignore[arg-type]


@needs_nats
async def test_cancellation_tears_down() -> None:
    """Cancelling the task that holds the cluster (Ctrl-C) still stops every server."""
    started: asyncio.Future[NatsCluster] = asyncio.get_running_loop().create_future()

    async def hold() -> None:
        async with NatsCluster(n=2) as c:
            started.set_result(c)
            await asyncio.sleep(60)

    task = asyncio.create_task(hold())
    c = await started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(not nd.running for nd in c.nodes)


@needs_nats
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
async def test_servers_die_with_a_killed_owner(tmp_path: Path) -> None:
    """When the owning process is SIGKILLed (no cleanup runs), its servers still go away."""
    script = (
        "import asyncio\nfrom tickpath.natsserver import NatsCluster\n"
        "async def main():\n    async with NatsCluster(2) as c:\n"
        "        print(' '.join(str(nd.process.pid) for nd in c.nodes), flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    owner = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    assert owner.stdout is not None
    line = await asyncio.wait_for(owner.stdout.readline(), timeout=30)
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2
    owner.kill()
    await owner.wait()
    for _ in range(100):
        if not any(_alive(p) for p in pids):
            break
        await asyncio.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
