"""A probe stopped by SIGINT/SIGTERM writes what it measured to every output, marked, then exits 130."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tickpath.probe import ProbeConfig
from tickpath.probe.runner import ProbeRun
from tickpath.sim import SimConfig, Simulator

_CLI = "import sys; from tickpath.cli.main import main; sys.exit(main())"
# The tcp method is interrupted once this many connects reached the counting port: it is mid-run
# whatever the machine's speed (--samples is far larger).
_CONNECTS_BEFORE_SIGNAL = 20


class CountingPort:
    """A TCP listener that counts accepted connections: shows the probe's tcp method is under way."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@pytest.fixture
async def counting_port() -> AsyncIterator[CountingPort]:
    cp = CountingPort()
    server = await asyncio.start_server(cp._on_connect, "127.0.0.1", 0)
    cp.port = server.sockets[0].getsockname()[1]
    try:
        yield cp
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=20.0)) as s:
        yield s


async def _wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.integration  # signals a real `tickpath probe` process
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_mid_run_writes_partial_results(
    sig: signal.Signals, sim: Simulator, counting_port: CountingPort, tmp_path: Path
) -> None:
    """Signalled during tcp, the probe prints JSON with dns complete and tcp partial (marked), writes
    the same figures to the CSV and .hgrm files, names ws and stream as not run, and exits 130."""
    csv_path, hgrm = tmp_path / "p.csv", tmp_path / "hgrm"
    ep = sim.endpoint("futures")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLI,
        "probe",
        "-m",
        "dns,tcp,ws,stream",
        "--rest-url",
        ep.rest_url,
        "--ws-url",
        ep.ws_url,
        "--port",
        str(counting_port.port),
        "--warmup",
        "0",
        "--rate",
        "200",
        "--samples",
        "100000",
        "--no-imds",
        "-q",
        "--json",
        "--csv",
        str(csv_path),
        "--hgrm-dir",
        str(hgrm),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _wait_for(lambda: counting_port.accepted >= _CONNECTS_BEFORE_SIGNAL, 60, "the tcp method to run")
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode() and f"stopped by {sig.name}" in err.decode()
    doc = json.loads(out)
    first = doc["errors"][0]
    assert (first["error"], first["method"], first["exit_code"]) == ("InterruptedRunError", "tcp", 130)
    assert "not run: ws, stream" in first["message"]
    assert doc["exit_code"] == 130
    dns, tcp = doc["methods"]["dns"], doc["methods"]["tcp"]
    assert dns["summary"]["count"] > 0 and "interrupted" not in dns.get("note", "")
    assert 0 < tcp["summary"]["count"] < 100_000 and "interrupted" in tcp["note"]
    assert "ws" not in doc["methods"] and "stream" not in doc["methods"]
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    tcp_row = next(r for r in rows if r["method"] == "tcp" and r["target"] == "all")
    assert int(tcp_row["count"]) == tcp["summary"]["count"]
    assert {"dns.hgrm", "tcp.hgrm"} <= {p.name for p in hgrm.iterdir()}


async def test_cancel_keeps_finished_methods_in_library_result(sim: Simulator, counting_port: CountingPort) -> None:
    """Cancelling a ProbeRun leaves run.result with the finished dns figures, the tcp samples taken so far
    and an interrupted entry first in errors (exit code 130)."""
    ep = sim.endpoint("futures")
    cfg = ProbeConfig(
        venue="futures",
        methods=("dns", "tcp", "ws"),
        rest_url=ep.rest_url,
        ws_url=ep.ws_url,
        tcp_ports=(counting_port.port,),
        samples=100_000,
        warmup=0,
        rate=200.0,
        imds=False,
        chrony=False,
    )
    probe = ProbeRun(cfg)
    task = asyncio.ensure_future(probe.run())
    await _wait_for(lambda: counting_port.accepted >= _CONNECTS_BEFORE_SIGNAL, 30, "the tcp method to run")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = probe.result
    assert result.exit_code == 130 and result.finished > 0
    assert result.stats["dns"].overall.latency.count > 0
    assert result.stats["tcp"].overall.latency.count > 0
    assert result.errors[0]["method"] == "tcp" and "not run: ws" in result.errors[0]["message"]
    assert "interrupted" in result.to_dict()["methods"]["tcp"]["note"]


async def test_cancel_during_the_stream_capture_keeps_what_arrived(sim: Simulator) -> None:
    """Cancelled mid-capture, the stream method keeps the messages that arrived (figures, seconds run,
    an interrupted note) instead of losing them all: the capture fills a result the runner owns."""
    ep = sim.endpoint("futures")
    cfg = ProbeConfig(
        venue="futures",
        methods=("stream",),
        rest_url=ep.rest_url,
        ws_url=ep.ws_url,
        stream_duration=60.0,
        offset_samples=3,
        imds=False,
        chrony=False,
    )
    probe = ProbeRun(cfg)
    task = asyncio.ensure_future(probe.run())
    await _wait_for(
        lambda: probe.result.stream is not None and probe.result.stream.messages >= 20, 30, "stream messages to arrive"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = probe.result
    assert result.exit_code == 130
    assert result.stream is not None and result.stream.messages >= 20 and 0 < result.stream.seconds < 60
    stream = result.to_dict()["methods"]["stream"]
    assert stream["messages"] >= 20 and stream["summary"]["count"] > 0 and "interrupted" in stream["note"]
    assert result.errors[0]["method"] == "stream" and "message(s)" in result.errors[0]["message"]
