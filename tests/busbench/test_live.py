"""Integration tests of busbench against a real local NATS cluster: formats parse, TLS works, a
killed server B is reported as loss within the bounded wait, a paused publisher shows up only in
the coordinated-omission-free figures, and the CLI maps it all to exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tickpath.busbench import client, output
from tickpath.busbench.config import BenchConfig, MatrixConfig
from tickpath.busbench.local import LocalConfig, local_cluster, run_local
from tickpath.busbench.netns import available as netns_unavailable
from tickpath.busbench.results import BenchResult
from tickpath.cli.main import main as cli_main
from tickpath.natsserver import NatsCluster

pytestmark = pytest.mark.integration
PLACEHOLDER = BenchConfig("nats://127.0.0.1:1", "nats://127.0.0.1:2")


async def _wait_for_client(monitor_url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"{monitor_url}/connz", timeout=1).read())
        if json.loads(body).get("num_connections", 0) >= 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the CLI never connected to server B")


def _parse_hgrm(path: Path) -> tuple[list[tuple[float, float]], int]:
    rows, total = [], -1
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) in (3, 4) and parts[0][0].isdigit():
            rows.append((float(parts[0]), float(parts[1])))
        if line.startswith("#[Max"):
            total = int(line.split("Total count")[1].strip(" =]"))  # HdrHistogram's footer: an integer
    return rows, total


async def test_run_writes_parseable_formats(nats_binary: str, tmp_path: Path) -> None:
    """A clean run loses nothing and its JSON, .hgrm and samples CSV parse and agree."""
    cfg = dataclasses.replace(PLACEHOLDER, rate=2000, count=600, warmup=0.1, keep_samples=True)
    results = await run_local(LocalConfig(binary=nats_binary), cfg)
    (r,) = results
    assert r.ok and r.lost == 0 and r.received == 600 and r.duplicates == 0
    assert r.rtt_pub_ns and r.rtt_sub_ns
    paths = output.write_run(r, tmp_path, samples=True)
    doc = json.loads(paths["json"].read_text())
    assert doc["received"] == 600 and doc["lost"] == 0
    assert set(doc["latency_from_intended"]) >= {"p10", "p50", "p99.999", "p100", "histogram"}
    assert doc["latency_from_intended"]["p50"] >= doc["latency_from_actual"]["p10"]
    rows, total = _parse_hgrm(paths["intended_hgrm"])
    assert total == 600 and rows[-1][1] == 1.0
    assert [v for v, _ in rows] == sorted(v for v, _ in rows)
    lines = paths["samples"].read_text().splitlines()
    assert len(lines) == 601 and lines[0].startswith("seq,intended_ns")
    text = output.report_text(r)
    for needle in ("99.999", "achieved rate", "RTT pub server", "bandwidth", "min/median/max"):
        assert needle in text


async def test_tls_and_auth_mode(nats_binary: str) -> None:
    """With per-run TLS (client certificates verified) and a password, the benchmark runs clean."""
    async with local_cluster(LocalConfig(tls=True, auth=True, binary=nats_binary)) as (cluster, settings):
        assert all(u.startswith("tls://") for u in cluster.client_urls)
        cfg = dataclasses.replace(PLACEHOLDER, count=300, rate=1000, warmup=0.05, **settings)  # type: ignore[arg-type]
        r = await client.run(cfg)
    assert r.ok and r.tls and r.received == 300


async def test_killing_server_b_reports_loss_within_bounded_wait(nats_binary: str) -> None:
    """SIGKILL of server B mid-run: the run ends within its bounds, counts losses and is not ok."""
    async with NatsCluster(2, binary=nats_binary) as c:
        cfg = BenchConfig(c.client_urls[0], c.client_urls[1], rate=1000, duration=2.0, warmup=0.0, drain_timeout=1.0)
        midway = asyncio.Event()

        def progress(sent: int, received: int, total: int) -> None:
            if sent >= 400:
                midway.set()

        task = asyncio.create_task(client.run(cfg, progress=progress))
        await asyncio.wait_for(midway.wait(), timeout=20)
        await c.kill(1)
        killed_at = time.monotonic()
        r = await asyncio.wait_for(task, timeout=20)
        after_kill = time.monotonic() - killed_at
    assert not r.ok
    assert r.lost >= 500  # at least the last 1.5 s of a 2 s run at 1,000/s went nowhere
    assert r.received >= 300 and r.sent == 2000
    assert any("closed" in e or "broke" in e for e in r.errors)
    assert after_kill < 1.7 + 1.0 + 1.5  # rest of the schedule + drain + slack: never a hang


def _median_lag_before(r: BenchResult, first_paused: int) -> tuple[int, int]:
    """(median send lag of the messages due before message ``first_paused``, when that one was due)."""
    assert r.samples is not None
    by_seq = {s[0]: s for s in r.samples}
    start = by_seq[min(by_seq) + first_paused][1]
    lags = sorted(sent - intended for _, intended, sent, _ in r.samples if intended < start)
    return lags[len(lags) // 2], start


async def test_paused_publisher_shows_in_intended_latency_only(nats_binary: str) -> None:
    """A 150 ms publisher stall lifts the intended-time figures past 150 ms; the actual-time ones
    leave it out: per message, intended minus actual latency is the send lag, the rest of the stall."""
    async with NatsCluster(2, binary=nats_binary) as c:
        # Sleep mode: a busy-polling client takes one of this machine's two cores, and a clean-clone
        # run once saw the servers on the other core fall 160 ms behind, late from every clock. The
        # pause is the same code in both modes; test_wait_mode covers busy-polling.
        cfg = BenchConfig(
            c.client_urls[0],
            c.client_urls[1],
            rate=1000,
            count=600,
            warmup=0.05,
            pause_at=200,
            pause_ms=150,
            busy_poll=False,
            keep_samples=True,
        )
        # The contrast needs an undisturbed 200 ms before the pause. On a host with 10 % steal, one
        # run in three had a VM stall of ~60 ms there (send lag p50 9 ms, p90 47 ms, rising then
        # caught up): such a run is measured again, up to three times in all.
        for _attempt in range(3):
            r = await client.run(cfg)
            assert r.ok and r.samples is not None
            median_lag, start = _median_lag_before(r, 200)
            if median_lag < 5_000_000:
                break
    assert r.ok and r.samples is not None and len(r.samples) == r.intended.count == r.actual.count
    assert median_lag < 5_000_000  # before the stall, messages left on time
    assert r.intended.percentile(100) >= 145_000_000
    # ~100 of the 600 messages were due more than 50 ms before the stall ended: above p85 from the
    # intended time.
    assert r.intended.percentile(85) > 50_000_000
    # Per message (seq, intended send, actual send, receipt), which a VM stall cannot blur: the
    # stall began when the 200th measured message was due, and every message due during it left
    # only when it ended, so its intended-time latency exceeds its actual-time one by the rest of
    # the stall. (Percentiles of the actual-time figure alone are not asserted: a host stall of a
    # hundred ms while the backlog is in flight makes them late from any clock, as seen in CI.)
    during = [s for s in r.samples if start <= s[1] < start + 140_000_000]
    assert len(during) >= 130
    for _, intended, sent, _ in during:
        assert sent - intended >= start + 150_000_000 - intended - 2_000_000


async def test_matrix_writes_spectrum_png(nats_binary: str, tmp_path: Path) -> None:
    """A 2x2 matrix runs every size and rate and draws a PNG percentile spectrum."""
    base = dataclasses.replace(PLACEHOLDER, count=100, warmup=0.0)
    results = await run_local(LocalConfig(binary=nats_binary), MatrixConfig(base, sizes=(16, 512), rates=(1000, 5000)))
    assert [(r.size, r.rate) for r in results] == [(16, 1000), (16, 5000), (512, 1000), (512, 5000)]
    png = output.plot_spectrum(results, tmp_path / "spectrum.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = output.matrix_summary(results)
    assert all(row["lost"] == 0 for row in rows)


def test_cli_exit_codes(nats_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CLI: a clean local run exits 0 with JSON; bad input exits 2 with one line, no traceback."""
    code = cli_main(["busbench", "local", "--count", "200", "--warmup", "0", "--json", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert doc["runs"][0]["received"] == 200 and len(doc["files"]) == 3
    assert cli_main(["busbench", "run", "--pub", "nats://127.0.0.1:1", "--sub", "nats://h:2", "--size", "8"]) == 2
    assert "at least 16 bytes" in capsys.readouterr().err


async def test_cli_exits_nonzero_when_server_b_dies(nats_binary: str) -> None:
    """The CLI prints the figures and exits 9 when server B dies mid-run and messages are lost."""
    async with NatsCluster(2, binary=nats_binary) as c:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.busbench",
            "run",
            "--pub",
            c.client_urls[0],
            "--sub",
            c.client_urls[1],
            "--duration",
            "1.5",
            "--warmup",
            "0",
            "--drain-timeout",
            "0.5",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        await _wait_for_client(c.monitor_urls[1])  # the CLI is connected to B and running
        await asyncio.sleep(0.3)
        await c.kill(1)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 9, err.decode()
    doc = json.loads(out)
    assert doc["runs"][0]["lost"] > 0
    assert b"lost" in err and b"Traceback" not in err


@pytest.mark.skipif(netns_unavailable() is not None, reason=f"{netns_unavailable()}")
async def test_network_namespaces_run_and_clean_up(nats_binary: str) -> None:
    """As root: servers and client in their own namespaces over veth; namespaces removed after."""
    async with local_cluster(LocalConfig(netns=True, binary=nats_binary)) as (cluster, settings):
        assert cluster.client_urls[0].startswith("nats://10.213.")
        ns = str(settings["netns"])
        cfg = dataclasses.replace(PLACEHOLDER, count=300, warmup=0.05, **settings)  # type: ignore[arg-type]
        r = await client.run(cfg)
    assert r.ok and r.received == 300
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in listing and ns[:-2] not in listing


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_ctrl_c_stops_every_server_and_exits_130(nats_binary: str) -> None:
    """SIGINT during `busbench local` cancels the run, stops the servers it started, exits 130."""
    # The standalone entry (what remote clients run) starts faster than the full `tickpath` CLI,
    # whose exit-code mapping test_cli_exit_codes covers in-process.
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickpath.busbench", "local", "--duration", "30", "--warmup", "0"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        servers: list[int] = []
        while time.monotonic() < deadline and len(servers) < 2:
            servers = [
                p
                for p in _children(proc.pid)
                if "nats-server" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
            ]
            time.sleep(0.05)
        assert len(servers) == 2, "the CLI never started its two servers"
        time.sleep(1.0)  # connected and measuring
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert not any(_alive(p) for p in servers)
