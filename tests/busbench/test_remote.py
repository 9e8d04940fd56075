"""The remote triangle's orchestration, driven by a scripted command runner: the order of
Terraform and SSH steps, what is copied where, no secrets on command lines, and destroy always."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tickpath.busbench.config import BenchConfig, MatrixConfig
from tickpath.busbench.remote import RemoteConfig, Triangle, bench_argv
from tickpath.cli.main import build_parser
from tickpath.errors import ConfigError, InfraError

OUTPUTS = {
    "public_ips": {"value": {"server_a": "198.51.100.1", "server_b": "198.51.100.2", "client": "198.51.100.3"}},
    "private_ips": {"value": {"server_a": "10.77.1.10", "server_b": "10.77.1.11", "client": "10.77.1.12"}},
    "ssh_user": {"value": "admin"},
}


class ScriptedRunner:
    """Records every command; fails the first command containing ``fail_on``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.uploaded: dict[str, str] = {}
        self.fail_on = fail_on

    async def __call__(self, argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 600.0) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if self.fail_on and any(self.fail_on in a for a in argv):
            raise InfraError(f"scripted failure at {self.fail_on}")
        if argv[:2] == ["terraform", "output"]:
            return json.dumps(OUTPUTS)
        if argv[0] == "scp" and argv[-1].endswith("/"):  # upload: remember file contents by name
            for f in argv[1:-1]:
                p = Path(f)
                if p.is_file() and not p.name.endswith(".tar.gz"):
                    self.uploaded[p.name] = p.read_text()
        if argv[0] == "scp" and "results/." in argv[-2]:  # download of the client's results
            (Path(argv[-1]) / "exit-status").write_text("0\n")
        return ""


def _cfg(tmp_path: Path) -> RemoteConfig:
    return RemoteConfig(
        "aws",
        {"region": "eu-west-1", "availability_zone": "eu-west-1a", "operator_cidr": "203.0.113.7/32"},
        out=tmp_path / "res",
    )


BENCH = BenchConfig("nats://a:4222", "nats://b:4222", rate=10_000, duration=3, warmup=0.5)


async def test_full_run_order_configs_and_cleanup(tmp_path: Path) -> None:
    """init, apply, output, boot checks, servers, client, download, destroy last; run dir removed."""
    runner = ScriptedRunner()
    tri = Triangle(_cfg(tmp_path), BENCH, runner=runner)
    out = await tri.run()
    assert (out / "exit-status").read_text() == "0\n"
    tf = [c[1] for c in runner.calls if c[0] == "terraform"]
    assert tf == ["init", "apply", "output", "destroy"]
    assert runner.calls[-1][1] == "destroy"
    conf_a = runner.uploaded["server_a.conf"]
    assert "nats-route://route:" in conf_a and "@10.77.1.11:6222" in conf_a
    assert '"0.0.0.0:4222"' in conf_a and "verify: true" in conf_a
    client_cmd = next(c[-1] for c in runner.calls if c[0] == "ssh" and "-m tickpath.busbench run" in c[-1])
    assert "tls://10.77.1.10:4222" in client_cmd and "tls://10.77.1.11:4222" in client_cmd
    assert "--rate 10000" in client_cmd and "--duration 3" in client_cmd
    password = runner.uploaded["password"]
    assert all(password not in " ".join(c) for c in runner.calls)  # never on a command line
    assert not tri.dir.exists()  # keys, state copy and TLS material are gone


async def test_failure_mid_run_still_destroys(tmp_path: Path) -> None:
    """When the client step fails, the error surfaces and terraform destroy still runs."""
    runner = ScriptedRunner(fail_on="tickpath.busbench run")
    with pytest.raises(InfraError, match="scripted failure"):
        await Triangle(_cfg(tmp_path), BENCH, runner=runner).run()
    assert runner.calls[-1][:2] == ["terraform", "destroy"]


async def test_failed_apply_destroys_partial_resources(tmp_path: Path) -> None:
    """A failed apply may leave resources behind: destroy runs; a failed init needs none."""
    runner = ScriptedRunner(fail_on="apply")
    with pytest.raises(InfraError):
        await Triangle(_cfg(tmp_path), BENCH, runner=runner).run()
    assert runner.calls[-1][:2] == ["terraform", "destroy"]
    runner = ScriptedRunner(fail_on="init")
    with pytest.raises(InfraError):
        await Triangle(_cfg(tmp_path), BENCH, runner=runner).run()
    assert all(c[1] != "destroy" for c in runner.calls)


def test_remote_config_requires_safe_settings(tmp_path: Path) -> None:
    """AWS needs operator_cidr (the only SSH source); bare metal needs an SSH key."""
    with pytest.raises(ConfigError, match="operator_cidr"):
        RemoteConfig("aws", {"region": "x"})
    with pytest.raises(ConfigError, match="ssh-key"):
        RemoteConfig("baremetal", {})
    with pytest.raises(ConfigError):
        RemoteConfig("gcp", {})


def test_bench_argv_round_trips_through_the_cli() -> None:
    """The workload options sent to the remote client parse back into the same workload."""
    m = MatrixConfig(BENCH, sizes=(256, 1024), rates=(1000, 100_000))
    args = build_parser().parse_args(["busbench", "run", "--pub", "nats://a", "--sub", "nats://b", *bench_argv(m)])
    assert args.size == (256, 1024) and args.rate == (1000.0, 100_000.0)
    assert (args.duration, args.warmup, args.count) == (3.0, 0.5, None)


def test_standalone_entry_needs_only_busbench_modules() -> None:
    """`python -m tickpath.busbench run --help` works without importing other subcommands' modules."""
    code = (
        "import sys\nfrom tickpath.busbench.__main__ import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "bad = [m for m in sys.modules if m.startswith(('tickpath.sim', 'tickpath.feed', 'aiohttp', 'duckdb'))]\n"
        "print('OTHER:', bad)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--pub URL" in proc.stdout and "OTHER: []" in proc.stdout
