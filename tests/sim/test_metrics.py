"""The simulator's /metrics: frames sent, market events, open connections and faults injected, as a
Prometheus scrape sees them; ``tickpath sim --metrics-port`` prints where to scrape."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.sim.helpers import recv_json, small_config, ws_connect
from tickpath.cli.main import main
from tickpath.sim import Simulator


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        (smp.name, tuple(sorted(smp.labels.items()))): smp.value
        for fam in text_string_to_metric_families(text)
        for smp in fam.samples
    }


async def test_metrics_count_frames_connections_and_faults() -> None:
    """Two clients on spot, a gap, a stall and a malformed frame: the scrape says exactly that."""
    async with Simulator(small_config()) as sim:
        server = await sim.serve_metrics("127.0.0.1", 0)
        ep = sim.endpoint("spot")
        a = await ws_connect(ep.raw_url("btcusdt@depth@100ms"))
        b = await ws_connect(ep.raw_url("btcusdt@trade"))
        try:
            for _ in range(3):
                await recv_json(a)
            sim.faults.gap("spot", "BTCUSDT")
            sim.faults.stall("spot", "BTCUSDT", 0.1)
            sim.faults.malformed("spot")
            sim.faults.malformed("spot")
            got = await _scrape(server.url)
            hub = sim.hubs["spot"]
            sent, events = hub.frames_sent, hub.events
        finally:
            await a.close()
            await b.close()
    assert got[("tickpath_sim_connections", (("venue", "spot"), ("zone", "local")))] == 2
    assert got[("tickpath_sim_connections", (("venue", "futures"), ("zone", "local")))] == 0
    # counters are read at scrape time; the market keeps running, so compare with bounds
    assert 3 <= got[("tickpath_sim_frames_sent_total", (("venue", "spot"),))] <= sent
    assert 0 < got[("tickpath_sim_events_total", (("venue", "spot"),))] <= events
    faults = {dict(k[1])["kind"]: v for k, v in got.items() if k[0] == "tickpath_sim_faults_total"}
    assert faults == {"gap": 1, "stall": 1, "malformed": 2}


async def test_metrics_stop_with_the_simulator() -> None:
    """After the simulator stops, its /metrics port is closed too."""
    async with Simulator(small_config(venues=("futures",))) as sim:
        url = (await sim.serve_metrics()).url
        assert ("tickpath_sim_faults_total", ()) not in await _scrape(url)
    with pytest.raises(aiohttp.ClientConnectionError):
        await _scrape(url)


@pytest.mark.integration  # runs `tickpath sim` in a process of its own
async def test_cli_prints_the_metrics_url_and_serves_it() -> None:
    """``tickpath sim --json --metrics-port 0`` prints metrics_url; the scheduled gaps show there."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpath.cli.main",
        "sim",
        "--venue",
        "futures",
        "--json",
        "--metrics-port",
        "0",
        "--gap-every",
        "0.1",
        "--duration",
        "20",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        head = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        url = head["metrics_url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        for _ in range(100):
            got = await _scrape(url)
            gaps = got.get(("tickpath_sim_faults_total", (("kind", "gap"),)), 0)
            if gaps >= 2:
                break
            await asyncio.sleep(0.1)
        assert gaps >= 2
        assert ("tickpath_sim_connections", (("venue", "futures"), ("zone", "local"))) in got
    finally:
        proc.terminate()
        await proc.wait()


def test_metrics_port_out_of_range_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """--metrics-port 70000 is refused with one line before anything listens."""
    assert main(["sim", "--metrics-port", "70000", "--duration", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "--metrics-port must be at most 65535" in err and err.count("\n") == 1
