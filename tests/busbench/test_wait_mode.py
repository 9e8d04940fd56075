"""The client's wait mode (busy-poll or sleep) and the local servers' GOMAXPROCS: how they are
chosen, that a run states them in every output, and that busy-polling delivers every message."""

from __future__ import annotations

import dataclasses
import json
from array import array
from pathlib import Path

import pytest

from tickpath.busbench import output
from tickpath.busbench.config import BUSY_POLL_MAX_RATE, BenchConfig, MatrixConfig
from tickpath.busbench.local import LocalConfig, local_cluster, run_local, run_many
from tickpath.busbench.remote import bench_argv
from tickpath.busbench.results import BenchResult, analyse, intended_ns
from tickpath.cli.main import build_parser
from tickpath.cli.main import main as cli_main
from tickpath.errors import ConfigError
from tickpath.natsserver import NatsCluster

A, B = "nats://127.0.0.1:4222", "nats://127.0.0.1:4223"
PLACEHOLDER = BenchConfig("nats://127.0.0.1:1", "nats://127.0.0.1:2")


def _result(wait_mode: str, servers: dict[str, object] | None) -> BenchResult:
    n, t0, interval = 100, 1_000_000, 1e6
    sent, recv = array("q", bytes(8 * n)), array("q", bytes(8 * n))
    for i in range(n):
        sent[i] = intended_ns(t0, i, interval)
        recv[i] = sent[i] + 90_000
    f = analyse(t0=t0, interval_ns=interval, warmup=0, sent_ns=sent, recv_ns=recv)
    return BenchResult(
        size=256,
        rate=1000,
        pub="nats://a:1",
        sub="nats://b:2",
        subject="s",
        warmup=0,
        measured=n,
        sent=n,
        received=n,
        lost=0,
        warmup_lost=0,
        unsent=0,
        duplicates=0,
        reordered=0,
        achieved_rate=f["achieved_rate"],
        sustained=True,
        duration_s=f["duration_s"],
        intended=f["intended"],
        actual=f["actual"],
        send_lag=f["send_lag"],
        rtt_pub_ns=[1],
        rtt_sub_ns=[1],
        wait_mode=wait_mode,
        servers=servers,
    )


def test_wait_mode_defaults_by_rate_and_can_be_forced() -> None:
    """Busy-polling is the default up to the threshold rate, sleeping above it; both can be forced."""
    assert BenchConfig(A, B, rate=1_000).wait_mode == "busy-poll"
    assert BenchConfig(A, B, rate=BUSY_POLL_MAX_RATE).wait_mode == "busy-poll"
    assert BenchConfig(A, B, rate=100_000).wait_mode == "sleep"
    assert BenchConfig(A, B, rate=1_000, busy_poll=False).wait_mode == "sleep"
    assert BenchConfig(A, B, rate=100_000, busy_poll=True).wait_mode == "busy-poll"


def test_matrix_runs_choose_their_wait_mode_per_rate() -> None:
    """In a matrix without --busy-poll/--no-busy-poll, each rate gets its own default mode."""
    from tickpath.busbench.local import expand

    runs = expand(MatrixConfig(BenchConfig(A, B), sizes=(256,), rates=(1_000, 100_000)))
    assert [r.wait_mode for r in runs] == ["busy-poll", "sleep"]


def test_server_procs_default_is_the_cores_share_and_is_validated() -> None:
    """GOMAXPROCS per server defaults to cores / servers (at least 1); 0 means Go's default."""
    import os

    cores = len(os.sched_getaffinity(0))
    assert LocalConfig().gomaxprocs == max(1, cores // 2)
    assert LocalConfig(servers=3).gomaxprocs == max(1, cores // 3)
    assert LocalConfig(server_procs=0).server_settings()["GOMAXPROCS"] == "Go default (all cores)"
    assert LocalConfig(server_procs=3).server_settings() == {"count": 2, "GOMAXPROCS": 3}
    with pytest.raises(ConfigError, match="server-procs"):
        LocalConfig(server_procs=-1)


def test_report_json_and_matrix_state_the_wait_mode_and_servers() -> None:
    """A reader of any output can tell that the client spun a core and how the servers ran."""
    busy = _result("busy-poll", {"count": 2, "GOMAXPROCS": 1})
    text = output.report_text(busy)
    assert "client wait: busy-poll" in text and "100%" in text
    assert "servers: count 2, GOMAXPROCS 1" in text
    doc = busy.to_dict()
    assert doc["wait_mode"] == "busy-poll" and doc["servers"] == {"count": 2, "GOMAXPROCS": 1}
    sleeping = _result("sleep", None)
    assert "client wait: sleep" in output.report_text(sleeping)
    assert "servers:" not in output.report_text(sleeping)
    assert output.matrix_summary([busy, sleeping])[1]["wait_mode"] == "sleep"
    last_columns = [line.split()[-1] for line in output.matrix_text([busy, sleeping]).splitlines()[1:3]]
    assert last_columns == ["busy-poll", "sleep"]


def test_wait_mode_flags_reach_the_remote_client() -> None:
    """--busy-poll/--no-busy-poll survive the trip to the remote client; unset stays unset."""
    parser = build_parser()
    base = ["busbench", "run", "--pub", "nats://a", "--sub", "nats://b"]
    for flag in (True, False, None):
        cfg = BenchConfig(A, B, busy_poll=flag)
        args = parser.parse_args([*base, *bench_argv(cfg)])
        assert args.busy_poll is flag


@pytest.mark.integration
async def test_busy_poll_delivers_every_message_and_never_sleeps(nats_binary: str) -> None:
    """Busy-polling at 2,000 msg/s loses nothing, sleeps zero times and says so; sleep mode sleeps (at
    500 msg/s: 2 ms between sends leaves room to sleep before each even when the host is slow; at 2,000
    msg/s a host stall once left the client behind its schedule, sending without sleeping, for 578 of 600)."""
    local = LocalConfig(binary=nats_binary, server_procs=1)
    async with local_cluster(local) as (_cluster, settings):
        base = dataclasses.replace(PLACEHOLDER, rate=2000, count=600, warmup=0.1, **settings)  # type: ignore[arg-type]
        busy, sleeping = await run_many(
            [base, dataclasses.replace(base, busy_poll=False, rate=500, count=300)], servers=local.server_settings()
        )
    assert busy.ok and busy.received == 600 and busy.duplicates == 0 and busy.reordered == 0
    assert busy.wait_mode == "busy-poll" and busy.sleeps == 0
    assert busy.servers == {"count": 2, "GOMAXPROCS": 1}
    assert sleeping.ok and sleeping.received == 300
    # About one per message on a quiet host; a loaded one wakes the thread late, past the next send
    # (60 of 300 seen while other work ran): any sleep at all tells the modes apart (busy: exactly 0).
    assert sleeping.wait_mode == "sleep" and sleeping.sleeps >= 10
    assert busy.to_dict()["client_sleeps"] == 0


@pytest.mark.integration
async def test_busy_poll_keeps_up_at_high_rate(nats_binary: str) -> None:
    """Forced busy-polling at 20,000 msg/s still sends every message and loses none."""
    cfg = dataclasses.replace(PLACEHOLDER, rate=20_000, count=6_000, warmup=0.05, busy_poll=True)
    (r,) = await run_local(LocalConfig(binary=nats_binary), cfg)
    assert r.ok and r.received == 6_000 and r.unsent == 0 and r.sleeps == 0


@pytest.mark.integration
async def test_servers_run_with_the_gomaxprocs_they_report(nats_binary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each local server's environment holds the GOMAXPROCS that results record (none for 0)."""
    monkeypatch.delenv("GOMAXPROCS", raising=False)

    def environs(cluster: NatsCluster) -> list[list[bytes]]:
        return [
            Path(f"/proc/{nd.process.pid}/environ").read_bytes().split(b"\0")
            for nd in cluster.nodes
            if nd.process is not None
        ]

    async with local_cluster(LocalConfig(binary=nats_binary, server_procs=1)) as (cluster, _settings):
        envs = environs(cluster)
    assert len(envs) == 2 and all(b"GOMAXPROCS=1" in env for env in envs)
    async with local_cluster(LocalConfig(binary=nats_binary, server_procs=0)) as (cluster, _settings):
        envs = environs(cluster)
    assert len(envs) == 2 and not any(v.startswith(b"GOMAXPROCS=") for env in envs for v in env)


@pytest.mark.integration
def test_cli_flags_choose_wait_mode_and_server_procs(
    nats_binary: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CLI: --no-busy-poll and --server-procs show up in the JSON and in the written result file."""
    code = cli_main(
        [
            "busbench",
            "local",
            "--count",
            "200",
            "--warmup",
            "0",
            "--no-busy-poll",
            "--server-procs",
            "1",
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["wait_mode"] == "sleep" and run["client_sleeps"] > 0
    assert run["servers"] == {"count": 2, "GOMAXPROCS": 1} and run["received"] == 200
    saved = json.loads((tmp_path / "s256-r1000.json").read_text())
    assert saved["wait_mode"] == "sleep"
    assert cli_main(["busbench", "local", "--server-procs", "-2"]) == 2
    assert "server-procs" in capsys.readouterr().err
