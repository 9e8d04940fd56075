"""``busbench remote``: the server A / server B / client triangle on real machines, end to end.

Steps, each a command through a :class:`Runner` (so tests can script them):

1. copy the Terraform module (``terraform/aws`` or ``terraform/baremetal``) into a private run
   directory, write the variables (0600), ``terraform init`` and ``apply``;
2. read the machines' addresses, wait until each has booted (``/var/lib/busbench-ready``);
3. generate TLS material for the servers' private addresses, route and client credentials
   (all for this run only), render each server's config, copy it over SSH, start nats-server;
4. copy tickpath to the client, run ``tickpath busbench run`` there against A and B's private
   addresses, download its result directory;
5. always, also after errors and Ctrl-C: ``terraform destroy`` and delete the run directory
   (keys included).

SSH uses a key made for the run (AWS) or the user's key (bare metal), ``StrictHostKeyChecking
accept-new`` against a known-hosts file private to the run, and batch mode (never prompts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tickpath.busbench import tls
from tickpath.busbench.config import BenchConfig, MatrixConfig
from tickpath.errors import ConfigError, InfraError, TickpathError
from tickpath.logs import log_event
from tickpath.natsserver import render_config
from tickpath.procs import run_command

log = logging.getLogger(__name__)
MODULES = Path(__file__).resolve().parent / "terraform"
REMOTE_DIR = "/tmp/busbench"
# What ``python -m tickpath.busbench`` imports on the client (pinned like pyproject.toml).
CLIENT_DEPS = (
    "hdrhistogram==0.10.8",
    "cryptography==50.0.2",
    "numpy==2.4.6",
    "rich==15.0.0",
    "matplotlib==3.11.2",
    "uvloop==0.23.0",
)


class Runner(Protocol):
    """Runs one command and returns its stdout; raises :class:`InfraError` on failure."""

    async def __call__(self, argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 600.0) -> str: ...


async def subprocess_runner(argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 600.0) -> str:
    """The real runner: a child process, its stderr in the error message when it fails."""
    done = await run_command(argv, timeout=timeout, cwd=cwd)
    if done.code != 0:
        tail = done.err.strip().splitlines()[-5:]
        raise InfraError(f"{Path(argv[0]).name} {' '.join(argv[1:3])} failed ({done.code}): " + " | ".join(tail))
    return done.out


@dataclass(frozen=True)
class RemoteConfig:
    """Where and how: module, its variables, SSH key (bare metal), tools, where results go."""

    provider: str
    variables: dict[str, Any] = field(default_factory=dict)
    out: Path = Path("busbench-remote")
    ssh_key: Path | None = None
    terraform: str = "terraform"
    boot_timeout: float = 900.0

    def __post_init__(self) -> None:
        if self.provider not in ("aws", "baremetal"):
            raise ConfigError(f"unknown provider {self.provider!r}: use aws or baremetal")
        if self.provider == "baremetal" and self.ssh_key is None:
            raise ConfigError("bare metal needs --ssh-key, the private key that logs in to the machines")
        if self.provider == "aws" and "operator_cidr" not in self.variables:
            raise ConfigError("aws needs --var operator_cidr=<your address>/32 (the only SSH source)")


def bench_argv(cfg: BenchConfig | MatrixConfig) -> list[str]:
    """The ``tickpath busbench run`` workload options that reproduce ``cfg`` on the client."""
    base = cfg.base if isinstance(cfg, MatrixConfig) else cfg
    sizes = cfg.sizes if isinstance(cfg, MatrixConfig) else (cfg.size,)
    rates = cfg.rates if isinstance(cfg, MatrixConfig) else (cfg.rate,)
    argv = [
        "--size",
        ",".join(str(s) for s in sizes),
        "--rate",
        ",".join(f"{r:g}" for r in rates),
        "--warmup",
        f"{base.warmup:g}",
        "--drain-timeout",
        f"{base.drain_timeout:g}",
        "--interest-timeout",
        f"{base.interest_timeout:g}",
        "--spin-us",
        f"{base.spin_us:g}",
        "--lead-us",
        f"{base.lead_us:g}",
    ]
    argv += ["--count", str(base.count)] if base.count is not None else ["--duration", f"{base.duration:g}"]
    if base.keep_samples:
        argv.append("--samples")
    if base.busy_poll is not None:
        argv.append("--busy-poll" if base.busy_poll else "--no-busy-poll")
    return argv


class Triangle:
    """One remote run; :meth:`run` does everything and always destroys what it created."""

    def __init__(
        self, cfg: RemoteConfig, bench: BenchConfig | MatrixConfig, *, runner: Runner = subprocess_runner
    ) -> None:
        self.cfg = cfg
        self.bench = bench
        self.run_ = runner
        self.run_id = secrets.token_hex(4)
        self.dir = Path(tempfile.mkdtemp(prefix=f"tickpath-remote-{self.run_id}-"))
        self.tf_dir = self.dir / "tf" / cfg.provider
        self.key = cfg.ssh_key or self.dir / "id_ed25519"
        self.ips: dict[str, dict[str, str]] = {}
        self.user = "root"
        self.applied = False
        self.material: tls.TlsMaterial | None = None
        self.password = ""

    # -- orchestration -----------------------------------------------------------------------
    async def run(self) -> Path:
        """Provision, benchmark, download; returns the local results directory."""
        try:
            await self.provision()
            await self.wait_booted()
            await self.start_servers()
            return await self.run_client()
        finally:
            await self.destroy()

    async def provision(self) -> None:
        shutil.copytree(MODULES, self.dir / "tf")
        variables = {"run_id": self.run_id, **self.cfg.variables}
        if self.cfg.provider == "aws":
            variables["ssh_public_key"] = _ssh_keypair(self.key)
        var_file = self.dir / "run.tfvars.json"
        _write_private(var_file, json.dumps(variables))
        tf = self.cfg.terraform
        await self.run_([tf, "init", "-input=false", "-no-color"], cwd=self.tf_dir)
        self.applied = True  # from here on, destroy must run
        await self.run_(
            [tf, "apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={var_file}"],
            cwd=self.tf_dir,
            timeout=1800,
        )
        out = json.loads(await self.run_([tf, "output", "-json", "-no-color"], cwd=self.tf_dir))
        try:
            self.ips = {"public": out["public_ips"]["value"], "private": out["private_ips"]["value"]}
            self.user = out["ssh_user"]["value"]
        except (KeyError, TypeError) as exc:
            raise InfraError(f"terraform outputs lack public_ips/private_ips/ssh_user: {exc}") from exc
        log_event(
            log,
            logging.INFO,
            "busbench_remote_provisioned",
            run_id=self.run_id,
            **{role: ip for role, ip in self.ips["public"].items()},
        )

    async def wait_booted(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.cfg.boot_timeout
        for role in ("server_a", "server_b", "client"):
            while True:
                try:
                    await self.ssh(role, "test -f /var/lib/busbench-ready", timeout=30)
                    break
                except InfraError as exc:
                    if asyncio.get_running_loop().time() > deadline:
                        raise InfraError(f"{role} did not finish booting within {self.cfg.boot_timeout:.0f} s") from exc
                    await asyncio.sleep(5)

    async def start_servers(self) -> None:
        priv = self.ips["private"]
        self.material = tls.generate(self.dir / "tls", [priv["server_a"], priv["server_b"]])
        self.password = secrets.token_urlsafe(18)
        route_password = secrets.token_urlsafe(18)
        remote_tls = (f"{REMOTE_DIR}/server-cert.pem", f"{REMOTE_DIR}/server-key.pem", f"{REMOTE_DIR}/ca.pem")
        for role, peer in (("server_a", "server_b"), ("server_b", "server_a")):
            conf = self.dir / f"{role}.conf"
            _write_private(
                conf,
                render_config(
                    name=f"busbench-{role}",
                    host="0.0.0.0",
                    client_port=4222,
                    route_port=6222,
                    routes=[(priv[peer], 6222)],
                    tls_files=remote_tls,
                    verify_clients=True,
                    user="busbench",
                    password=self.password,
                    route_password=route_password,
                ),
            )
            await self.ssh(role, f"mkdir -p -m 700 {REMOTE_DIR}")
            await self.scp(
                [self.material.server.cert, self.material.server.key, self.material.ca, conf], role, REMOTE_DIR
            )
            await self.ssh(
                role,
                f"cd {REMOTE_DIR} && mv {role}.conf nats.conf && "
                f"(nohup nats-server -c {REMOTE_DIR}/nats.conf > nats.log 2>&1 & echo $! > nats.pid)",
            )

    async def run_client(self) -> Path:
        """Install busbench on the client, run it against the servers' private addresses and
        download its results into ``--out``."""
        assert self.material is not None, "start_servers() first"
        await self._install_client()
        # Exit status 9 (losses) still produced results worth downloading.
        remote_cmd = (
            f"cd {REMOTE_DIR} && mkdir -p results && BUSBENCH_PASSWORD=$(cat password) "
            f"PYTHONPATH=src venv/bin/python -m tickpath.busbench {shlex.join(self._client_argv())} > run.txt 2>&1; "
            f"echo $? > results/exit-status"
        )
        await self.ssh("client", remote_cmd, timeout=7200)
        out = self.cfg.out
        out.mkdir(parents=True, exist_ok=True)
        client = f"{self.user}@{self.ips['public']['client']}"
        await self.run_(["scp", *self._ssh_opts(), "-r", f"{client}:{REMOTE_DIR}/results/.", str(out)])
        await self.run_(["scp", *self._ssh_opts(), f"{client}:{REMOTE_DIR}/run.txt", str(out)])
        return out

    async def _install_client(self) -> None:
        """This tickpath's source, the client's TLS files and the password onto the client, and a
        venv with busbench's own dependencies."""
        import tickpath

        assert self.material is not None
        pkg = Path(tickpath.__file__).resolve().parent
        archive = self.dir / "tickpath-src.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(pkg, arcname=pkg.name, filter=lambda info: None if "__pycache__" in info.name else info)
        pw_file = self.dir / "password"
        _write_private(pw_file, self.password)
        await self.ssh("client", f"mkdir -p -m 700 {REMOTE_DIR}/src")
        await self.scp(
            [archive, self.material.ca, self.material.client.cert, self.material.client.key, pw_file],
            "client",
            REMOTE_DIR,
        )
        await self.ssh(
            "client",
            f"cd {REMOTE_DIR} && tar xzf {archive.name} -C src && "
            f"python3 -m venv venv && venv/bin/pip install -q {' '.join(CLIENT_DEPS)}",
            timeout=900,
        )

    def _client_argv(self) -> list[str]:
        """``busbench run`` arguments for the client: TLS to both servers' private addresses."""
        priv = self.ips["private"]
        return [
            "run",
            "--pub",
            f"tls://{priv['server_a']}:4222",
            "--sub",
            f"tls://{priv['server_b']}:4222",
            "--tls-ca",
            f"{REMOTE_DIR}/ca.pem",
            "--tls-cert",
            f"{REMOTE_DIR}/client-cert.pem",
            "--tls-key",
            f"{REMOTE_DIR}/client-key.pem",
            "--user",
            "busbench",
            "--password-env",
            "BUSBENCH_PASSWORD",
            "--out",
            f"{REMOTE_DIR}/results",
            *bench_argv(self.bench),
        ]

    async def destroy(self) -> None:
        """terraform destroy (when anything may exist) and removal of the run directory."""
        try:
            if self.applied:
                var_file = self.dir / "run.tfvars.json"
                await self.run_(
                    [
                        self.cfg.terraform,
                        "destroy",
                        "-auto-approve",
                        "-input=false",
                        "-no-color",
                        f"-var-file={var_file}",
                    ],
                    cwd=self.tf_dir,
                    timeout=1800,
                )
                log_event(log, logging.INFO, "busbench_remote_destroyed", run_id=self.run_id)
        except TickpathError as exc:
            raise InfraError(
                f"terraform destroy failed; state kept in {self.dir} for a manual 'terraform destroy': {exc}"
            ) from exc
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- ssh -----------------------------------------------------------------------------------
    def _ssh_opts(self) -> list[str]:
        return [
            "-i",
            str(self.key),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={self.dir / 'known_hosts'}",
            "-o",
            "ConnectTimeout=10",
        ]

    async def ssh(self, role: str, command: str, *, timeout: float = 600.0) -> str:
        host = self.ips["public"][role]
        return await self.run_(["ssh", *self._ssh_opts(), f"{self.user}@{host}", command], timeout=timeout)

    async def scp(self, files: Sequence[Path], role: str, dest: str) -> None:
        host = self.ips["public"][role]
        await self.run_(["scp", *self._ssh_opts(), *map(str, files), f"{self.user}@{host}:{dest}/"])


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _ssh_keypair(path: Path) -> str:
    """An Ed25519 key pair for this run; writes the private key (0600), returns the public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    _write_private(path, private.decode())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " tickpath-busbench"
