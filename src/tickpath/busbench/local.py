"""``busbench local``: start a real NATS cluster, run the client (or a matrix), tear it all down.

The cluster comes from :class:`tickpath.natsserver.NatsCluster`; with ``tls`` a CA and
certificates are generated for this run only (servers verify the client's certificate, routes
use TLS too); with ``auth`` a random user and password are made for this run. With ``netns``
(root) servers A and B and the client each live in their own network namespace on a bridge.
Teardown runs in ``finally``, so errors and Ctrl-C (``tickpath.runtime.run`` cancels the task)
leave no servers, namespaces or key material behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tickpath.busbench import client, tls
from tickpath.busbench.config import BenchConfig, MatrixConfig, TlsOptions
from tickpath.busbench.netns import Triangle
from tickpath.busbench.results import BenchResult
from tickpath.errors import ConfigError
from tickpath.nats.url import Credentials
from tickpath.natsserver import NatsCluster

RunProgress = Callable[[str, int, int, int], None]  # (label, sent, received, total)
NETNS_PORTS = (4222, 6222, 8222)  # a fresh namespace has all ports free


@dataclass(frozen=True)
class LocalConfig:
    """The local cluster: how many servers, TLS, auth, namespaces, which binary, GOMAXPROCS.

    ``server_procs`` is each server's GOMAXPROCS: None gives each its share of this machine's
    cores (at least 1), 0 leaves Go's default (every core, for every server). Servers that share
    a machine with each other and with the client otherwise each run as many Go schedulers as
    there are cores; on 2 cores their idle schedulers spinning for work delay the one that has
    it (measured: p50 at 1k msg/s 141 vs 84 µs with busy-polling, see docs/busbench.md).
    """

    servers: int = 2
    tls: bool = False
    auth: bool = False
    netns: bool = False
    binary: str | None = None
    server_procs: int | None = None

    @property
    def gomaxprocs(self) -> int:
        """Resolved GOMAXPROCS per server; 0 means not set (Go's default)."""
        if self.server_procs is not None:
            return self.server_procs
        return max(1, len(os.sched_getaffinity(0)) // self.servers)

    def server_settings(self) -> dict[str, object]:
        """What results record about the servers this process started."""
        return {"count": self.servers, "GOMAXPROCS": self.gomaxprocs or "Go default (all cores)"}

    def __post_init__(self) -> None:
        if self.servers < 2:
            raise ConfigError("busbench needs at least two servers (publish on A, receive on B)")
        if self.netns and self.servers != 2:
            raise ConfigError("--netns places exactly two servers and the client (three hosts)")
        if self.server_procs is not None and not 0 <= self.server_procs <= 1024:
            raise ConfigError(f"--server-procs must be 0 (Go's default) to 1024, not {self.server_procs}")


@contextlib.asynccontextmanager
async def local_cluster(local: LocalConfig) -> AsyncIterator[tuple[NatsCluster, dict[str, object]]]:
    """Start the cluster; yields it with the client settings (URLs, TLS, credentials, netns)."""
    workdir = Path(tempfile.mkdtemp(prefix="tickpath-busbench-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            hosts = ["localhost", "127.0.0.1"]
            kwargs: dict[str, object] = {}
            client_ns = None
            # GOMAXPROCS through env(1) in each server's command prefix (NatsCluster passes our
            # environment on unchanged; ``ip netns exec`` keeps the variable too).
            procs = local.gomaxprocs
            env: tuple[str, ...] = ("env", f"GOMAXPROCS={procs}") if procs else ()
            prefixes: list[tuple[str, ...]] = [env] * local.servers
            if local.netns:
                tri = await stack.enter_async_context(Triangle())
                prefixes = [(*tri.prefix("a"), *env), (*tri.prefix("b"), *env)]
                kwargs = {"hosts": [tri.address("a"), tri.address("b")], "ports": NETNS_PORTS}
                hosts += [tri.address("a"), tri.address("b")]
                client_ns = tri.names["c"]
            kwargs["prefixes"] = prefixes
            material = tls.generate(workdir / "tls", hosts) if local.tls else None
            user = "busbench" if local.auth else None
            password = secrets.token_urlsafe(18) if local.auth else None
            cluster = NatsCluster(
                local.servers,
                tls=material.server if material else None,
                verify_clients=material is not None,
                user=user,
                password=password,
                binary=local.binary,
                workdir=workdir / "nats",
                **kwargs,  # type: ignore[arg-type]
            )
            await stack.enter_async_context(cluster)
            settings: dict[str, object] = {
                "pub_url": cluster.client_urls[0],
                "sub_url": cluster.client_urls[1],
                "tls": TlsOptions(material.ca, material.client.cert, material.client.key) if material else None,
                "credentials": Credentials(user, password),
                "netns": client_ns,
            }
            yield cluster, settings
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # key material and logs belong to this run


async def run_local(
    local: LocalConfig,
    bench: BenchConfig | MatrixConfig,
    *,
    progress: RunProgress | None = None,
    on_result: Callable[[BenchResult], None] | None = None,
) -> list[BenchResult]:
    """Run one benchmark or a matrix against a fresh local cluster; returns every result."""
    async with local_cluster(local) as (_cluster, settings):
        return await run_many(
            _configs(bench, settings), progress=progress, on_result=on_result, servers=local.server_settings()
        )


def _configs(bench: BenchConfig | MatrixConfig, settings: dict[str, object]) -> list[BenchConfig]:
    if isinstance(bench, MatrixConfig):
        base = dataclasses.replace(bench.base, **settings)  # type: ignore[arg-type]
        return [dataclasses.replace(base, size=s, rate=r) for s in bench.sizes for r in bench.rates]
    return [dataclasses.replace(bench, **settings)]  # type: ignore[arg-type]


def expand(bench: BenchConfig | MatrixConfig) -> list[BenchConfig]:
    """The runs a config stands for: itself, or every size x rate of a matrix."""
    return _configs(bench, {})


async def run_many(
    configs: Sequence[BenchConfig],
    *,
    progress: RunProgress | None = None,
    on_result: Callable[[BenchResult], None] | None = None,
    servers: dict[str, object] | None = None,
) -> list[BenchResult]:
    """Run configurations one after another (never in parallel: they would disturb each other).

    ``on_result`` sees each result as soon as its run ends, so a caller can save it before a
    later run of a matrix fails or is interrupted. ``servers`` (settings of servers this
    process started) is recorded in every result.
    """
    results = []
    for cfg in configs:
        label = f"{cfg.size} B @ {cfg.rate:,.0f}/s"

        def cb(sent: int, received: int, total: int, label: str = label) -> None:
            if progress:
                progress(label, sent, received, total)

        result = await client.run(cfg, progress=cb)
        result.servers = servers
        results.append(result)
        if on_result:
            on_result(result)
    return results
