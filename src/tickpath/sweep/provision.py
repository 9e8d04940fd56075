"""Creating and destroying candidates with Terraform, and the on-disk layout of one sweep.

Layout of ``<state_dir>/<sweep-id>/`` (everything cleanup needs is on disk, nothing in memory)::

    sweep.json              manifest: id, provider, region, candidates (written before any apply)
    status.json             live status per candidate (rewritten on every change)
    terraformrc, .terraform  empty CLI config, shared provider install (TF_DATA_DIR)
    shared/                 aws only: VPC, results bucket, instance role
    wheel/                  aws only: the tickpath wheel built for the instances (unless --wheel)
    candidates/<name>/      one Terraform root (module copy, tfvars, state) per candidate
    run/<name>/             local only: agent pid file and log of each instance (agent-N.pid/.log)
    store/results/<id>/     local only: the directory result store
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from importlib import resources as ir
from pathlib import Path
from typing import Any, Protocol

from tickpath.errors import ConfigError
from tickpath.sweep.cleanup import stop_local_agents
from tickpath.sweep.config import SweepConfig
from tickpath.sweep.plan import Candidate, candidates, probe_argv, tags
from tickpath.sweep.store import DirectoryStore, ResultStore, S3Store
from tickpath.sweep.terraform import Terraform, find_terraform, prepare_root, state_resources, terraform_env
from tickpath.sweep.wheel import WheelArtifact, resolve_wheel, upload

MANIFEST = "sweep.json"
# The resource of each provider's candidate module with one instance per machine (count), so
# `<resource>[N]` addresses the candidate's instance N.
INSTANCE_RESOURCE = {"aws": "aws_instance.probe", "local": "terraform_data.agent"}


def module_dir(provider: str, part: str = "") -> Path:
    """Directory of a Terraform module shipped in the package."""
    base = ir.files("tickpath.sweep") / "providers" / provider
    path = Path(str(base / part if part else base))
    if not (path / "main.tf").exists():
        raise ConfigError(f"no Terraform module for provider {provider!r} at {path}")
    return path


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)


def sweep_dir(state_dir: Path, sweep_id: str) -> Path:
    return Path(state_dir) / sweep_id


def write_manifest(cfg: SweepConfig, sweep_id: str, *, terraform: str, config_path: str | None) -> Path:
    """Record the sweep on disk before anything is created, so cleanup always finds it."""
    d = sweep_dir(cfg.state_dir, sweep_id)
    if d.exists():
        raise ConfigError(f"sweep {sweep_id} already exists at {d}")
    (d / "candidates").mkdir(parents=True)
    write_json(
        d / MANIFEST,
        {
            "sweep_id": sweep_id,
            "name": cfg.name,
            "provider": cfg.provider,
            "region": cfg.region,
            "terraform": terraform,
            "config_path": config_path,
            "keep": cfg.keep,
            "metric": cfg.metric.text,
            "candidates": [c.__dict__ for c in candidates(cfg)],
            "results_dir": str(cfg.results_dir),
        },
    )
    return d


def read_manifest(d: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads((d / MANIFEST).read_text())
    except FileNotFoundError:
        raise ConfigError(f"no sweep at {d} (missing {MANIFEST}); check --sweep-id and --state-dir") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"sweep manifest {d / MANIFEST} unreadable: {exc}") from exc
    return doc


class Provisioner(Protocol):
    """Creates and destroys candidates; the orchestrator knows nothing else about infrastructure."""

    store: ResultStore

    async def prepare(self) -> None: ...

    async def apply(self, candidate: Candidate) -> None: ...

    async def destroy(self, candidate: Candidate) -> None: ...

    async def destroy_instances(self, candidate: Candidate, instances: Sequence[int]) -> None: ...

    def exists(self, candidate: Candidate) -> bool: ...

    async def finish(self, *, kept: set[str]) -> None: ...


class TerraformProvisioner:
    """One Terraform root per candidate, applied and destroyed independently and in parallel."""

    def __init__(
        self,
        cfg: SweepConfig,
        sweep_id: str,
        *,
        terraform: str | None = None,
        python: str = sys.executable,
        store: ResultStore | None = None,
    ) -> None:
        self.cfg = cfg
        self.sweep_id = sweep_id
        self.dir = sweep_dir(cfg.state_dir, sweep_id)
        self.binary = find_terraform(terraform)
        self.python = python
        self.env = terraform_env(self.dir)
        self._shared_outputs: dict[str, Any] = {}
        self.artifact: WheelArtifact | None = None  # aws: the wheel instances install (prepare())
        self._init_lock = asyncio.Lock()  # candidate inits share one TF_DATA_DIR: one at a time
        self.store: ResultStore = store or (
            DirectoryStore(self.dir / "store") if cfg.provider == "local" else _LazyS3Store(self)
        )

    def root(self, candidate: Candidate) -> Path:
        return self.dir / "candidates" / candidate.name

    def _tf(self, root: Path) -> Terraform:
        return Terraform(root, self.env, binary=self.binary)

    async def prepare(self) -> None:
        """Install providers once per sweep and, for aws, create the shared resources."""
        if self.cfg.provider == "local":
            # Built-in terraform_data only: init has nothing to download; run it once to prove the
            # CLI works before any candidate starts.
            probe_root = self.dir / "init"
            prepare_root(probe_root, module_dir("local"), {})
            await self._tf(probe_root).init()
            return
        # The wheel first: a build that fails must fail before anything is paid for.
        self.artifact = await asyncio.to_thread(resolve_wheel, self.cfg.wheel, self.dir / "wheel")
        shared = self.dir / "shared"
        prepare_root(
            shared,
            module_dir("aws", "shared"),
            {
                "region": self.cfg.region,
                "sweep_id": self.sweep_id,
                "tags": tags(self.cfg, self.sweep_id),
                "results_expiry_days": self.cfg.results_expiry_days,
            },
        )
        tf = self._tf(shared)
        await tf.init()
        await tf.apply()
        self._shared_outputs = await tf.output()
        await asyncio.to_thread(self._upload_wheel)

    def _upload_wheel(self) -> None:
        import boto3

        assert self.artifact is not None
        # Its own session: boto3's module-level default caches credentials for the whole process.
        client = boto3.session.Session().client("s3", region_name=self.cfg.region)
        upload(self.artifact, str(self._shared_outputs.get("results_bucket", "")), self.sweep_id, client)

    def _variables(self, c: Candidate) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.provider == "local":
            run_dir = self.dir / "run" / c.name
            specs = []
            for instance in range(cfg.instances_per_candidate):
                spec: dict[str, Any] = {"store_dir": str(self.dir / "store"), "ttl_s": cfg.ttl_minutes * 60}
                if cfg.probe_command:
                    spec["probe_argv"] = self._probe_command(c, instance)
                else:  # the real `tickpath probe`, run inside the agent
                    spec["probe_args"] = probe_argv(cfg, c)
                specs.append(json.dumps(spec))
            return {
                "sweep_id": self.sweep_id,
                "candidate": c.name,
                "python": self.python,
                "agent_specs": specs,
                "run_dir": str(run_dir),
                "tags": tags(cfg, self.sweep_id, c),
            }
        out = self._shared_outputs
        return {
            "region": cfg.region,
            "sweep_id": self.sweep_id,
            "candidate": c.name,
            "index": c.index,
            "az_id": c.az_id,
            "instance_type": c.instance_type,
            "instance_count": cfg.instances_per_candidate,
            "placement_strategy": cfg.placement_strategy,
            "market": cfg.market,
            "ttl_minutes": int(cfg.ttl_minutes),
            "probe_cmdline": shlex.join(probe_argv(cfg, c)),
            **(self.artifact.boot_variables(self.sweep_id) if self.artifact else {}),
            # Any candidate may be kept until all are ranked, so none powers off while a winner is
            # wanted; losers are destroyed by the sweep, and the TTL ends whatever is left.
            "power_off_after_upload": cfg.keep == 0,
            "results_bucket": out.get("results_bucket", ""),
            "instance_profile": out.get("instance_profile", ""),
            "vpc_id": out.get("vpc_id", ""),
            "route_table_id": out.get("route_table_id", ""),
            "vpc_cidr": out.get("vpc_cidr", "10.42.0.0/16"),
            "tags": tags(cfg, self.sweep_id, c),
        }

    def _probe_command(self, c: Candidate, instance: int = 0) -> list[str]:
        """``[local] probe_command`` with its {placeholders} filled in."""
        zone = self.cfg.zone(c.az_id)
        values = {
            "python": self.python,
            "candidate": c.name,
            "instance": str(instance),
            "az_id": c.az_id,
            "rest_url": zone.rest_url if zone else "",
            "ws_url": zone.ws_url if zone else "",
            "duration_s": f"{self.cfg.probe.duration_s:g}",
        }
        try:
            return [part.format(**values) for part in self.cfg.probe_command]
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"local.probe_command has an unknown placeholder ({exc}); "
                f"known: {', '.join('{' + k + '}' for k in values)}"
            ) from exc

    async def apply(self, candidate: Candidate) -> None:
        root = self.root(candidate)
        prepare_root(
            root,
            module_dir(self.cfg.provider, "" if self.cfg.provider == "local" else "candidate"),
            self._variables(candidate),
        )
        tf = self._tf(root)
        if self.cfg.provider == "aws":
            lock = self.dir / "shared" / ".terraform.lock.hcl"
            if lock.exists():  # same provider versions as the shared root, already installed
                shutil.copy2(lock, root / lock.name)
            async with self._init_lock:
                await tf.init()
        await tf.apply()

    def exists(self, candidate: Candidate) -> bool:
        return bool(state_resources(self.root(candidate)))

    async def destroy(self, candidate: Candidate) -> None:
        root = self.root(candidate)
        if root.exists() and state_resources(root):
            await self._tf(root).destroy()

    async def destroy_instances(self, candidate: Candidate, instances: Sequence[int]) -> None:
        """Destroy some instances of a candidate and nothing else (keeping its best one).

        A targeted destroy by address, not a re-apply with fewer instances: an apply would also
        re-read the AMI and could replace the instance being kept.
        """
        root = self.root(candidate)
        if not instances or not (root.exists() and state_resources(root)):
            return
        resource = INSTANCE_RESOURCE[self.cfg.provider]
        await self._tf(root).destroy(targets=[f"{resource}[{i}]" for i in sorted(instances)])

    async def finish(self, *, kept: set[str]) -> None:
        """After the candidates: drop shared resources no winner needs; locally, the tag sweep.

        An apply interrupted between its provisioner starting an agent and Terraform saving state
        leaves an agent no state knows about; the search by sweep id finds it (winners excepted).
        """
        if self.cfg.provider == "local":
            await asyncio.to_thread(stop_local_agents, self.sweep_id, keep=kept)
        shared = self.dir / "shared"
        if not kept and shared.exists() and state_resources(shared):
            await self._tf(shared).destroy()


class _LazyS3Store:
    """The S3 store of an aws sweep, bound once the shared module has named the bucket."""

    def __init__(self, prov: TerraformProvisioner) -> None:
        self._prov = prov
        self._store: S3Store | None = None

    def _get(self) -> S3Store:
        if self._store is None:
            bucket = self._prov._shared_outputs.get("results_bucket")
            if not bucket:
                raise ConfigError("results bucket unknown: the shared module has not been applied")
            self._store = S3Store(str(bucket), region=self._prov.cfg.region)
        return self._store

    def ready(self, sweep_id: str) -> set[str]:
        return self._get().ready(sweep_id)

    def get(self, sweep_id: str, name: str) -> bytes:
        return self._get().get(sweep_id, name)

    def put(self, sweep_id: str, name: str, body: bytes) -> None:
        self._get().put(sweep_id, name, body)
