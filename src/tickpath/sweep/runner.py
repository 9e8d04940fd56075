"""The library calls behind ``tickpath sweep run|status|cleanup``.

``run_sweep`` checks everything it can before creating anything (Terraform present, cost within
the ceiling, for aws: credentials, AZ IDs, instance types offered there, vCPU quota), records the
sweep on disk, runs the :class:`~tickpath.sweep.orchestrator.Orchestrator` and writes the results.
``cleanup_sweep`` recovers from a killed orchestrator from what is on disk: Terraform destroy of
every root, then a tag-scoped search for anything left.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, InfraError, TickpathError
from tickpath.logs import log_event
from tickpath.sweep.cleanup import AwsTagCleaner, local_agents, stop_local_agents
from tickpath.sweep.config import LocalZone, SweepConfig
from tickpath.sweep.orchestrator import CandidateState, Orchestrator, ProgressFn, SweepOutcome
from tickpath.sweep.plan import candidates, check_cost, new_sweep_id, validate_sweep_id
from tickpath.sweep.provision import (
    TerraformProvisioner,
    read_manifest,
    sweep_dir,
    write_json,
    write_manifest,
)
from tickpath.sweep.results import write_results
from tickpath.sweep.terraform import Terraform, find_terraform, state_resources, terraform_env
from tickpath.sweep.wheel import check_wheel_file

log = logging.getLogger("tickpath.sweep")


@dataclass(frozen=True)
class SweepRun:
    """A finished sweep: its outcome and where the results were written."""

    outcome: SweepOutcome
    results_dir: Path


def aws_preflight(cfg: SweepConfig, client_factory: Callable[[str], Any] | None = None) -> None:
    """Fail before creating anything: credentials, AZ IDs, instance type offerings, vCPU quota."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    except ImportError as exc:  # pragma: no cover - boto3 is in the aws extra
        raise ConfigError("the aws provider needs boto3: pip install 'tickpath[aws]'") from exc
    from botocore.config import Config

    # Bounded so an offline machine gets an answer in seconds (botocore's defaults: 60 s connects, retried).
    bounded = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})
    factory = client_factory or (lambda s: boto3.client(s, region_name=cfg.region, config=bounded))
    try:
        factory("sts").get_caller_identity()
        ec2 = factory("ec2")
        zones = ec2.describe_availability_zones(AllAvailabilityZones=False)["AvailabilityZones"]
        known = {z["ZoneId"]: z["ZoneName"] for z in zones}
        unknown = [a for a in cfg.az_ids if a not in known]
        if unknown:
            raise ConfigError(
                f"AZ IDs {unknown} are not available in {cfg.region} for this account (available: {sorted(known)})"
            )
        offers = ec2.describe_instance_type_offerings(
            LocationType="availability-zone-id",
            Filters=[
                {"Name": "location", "Values": list(cfg.az_ids)},
                {"Name": "instance-type", "Values": list(cfg.instance_types)},
            ],
        )["InstanceTypeOfferings"]
        offered = {(o["Location"], o["InstanceType"]) for o in offers}
        missing = [f"{t} in {a}" for a in cfg.az_ids for t in cfg.instance_types if (a, t) not in offered]
        if missing:
            raise ConfigError(f"instance types not offered: {', '.join(missing)}")
        _check_vcpu_quota(cfg, ec2, factory, ClientError)
    except NoCredentialsError as exc:
        raise ConfigError("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "AuthFailure"):
            raise ConfigError(f"AWS credentials rejected ({code}); check AWS_PROFILE or keys") from exc
        raise InfraError(f"AWS preflight failed ({code}): {exc}") from exc
    except BotoCoreError as exc:
        raise InfraError(f"AWS preflight failed: {exc}") from exc


# Service Quotas codes of the vCPU limits standard instance families (A, C, D, H, I, M, R, T, Z) count against.
_VCPU_QUOTA = {"on-demand": "L-1216C47A", "spot": "L-34B43A08"}


def _check_vcpu_quota(cfg: SweepConfig, ec2: Any, factory: Callable[[str], Any], client_error: type[Exception]) -> None:
    """Refuse a sweep whose vCPUs exceed the account's regional limit (usage by others is not known)."""
    if not all(t[:1] in "acdhimrtz" for t in cfg.instance_types):
        return  # other families (P, G, X, ...) have their own quotas; let the apply report them
    try:
        types = ec2.describe_instance_types(InstanceTypes=list(cfg.instance_types))["InstanceTypes"]
        vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in types}
        quota = factory("service-quotas").get_service_quota(ServiceCode="ec2", QuotaCode=_VCPU_QUOTA[cfg.market])
        limit = float(quota["Quota"]["Value"])
    except client_error as exc:  # e.g. no servicequotas permission: the apply will still report a limit
        log_event(log, logging.WARNING, "vcpu_quota_unchecked", error=exc)
        return
    need = sum(vcpus.get(t, 0) for t in cfg.instance_types) * len(cfg.az_ids) * cfg.instances_per_candidate
    if need > limit:
        raise ConfigError(
            f"the sweep needs {need} {cfg.market} vCPUs at once but the account's limit in "
            f"{cfg.region} is {limit:g}; request a quota increase or sweep fewer candidates"
        )


def _status_writer(d: Path, sweep_id: str) -> Callable[[dict[str, CandidateState]], None]:
    def write(states: dict[str, CandidateState]) -> None:
        with contextlib.suppress(OSError):
            write_json(
                d / "status.json", {"sweep_id": sweep_id, "candidates": {n: s.to_dict() for n, s in states.items()}}
            )

    return write


@contextlib.asynccontextmanager
async def simulator_for(cfg: SweepConfig) -> AsyncIterator[SweepConfig]:
    """With ``[local] simulator``, run ``tickpath sim`` for the sweep and point the zones at it."""
    if not cfg.simulator_zones:
        yield cfg
        return
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpath.cli.main",
        "sim",
        "--venue",
        cfg.probe.venue,
        "--symbols",
        cfg.probe.symbol,
        "--rate",
        "20",
        "--zones",
        cfg.simulator_zones,
        "--json",
        # Like every other part of a sweep, it stops itself at the TTL even if we are killed.
        "--duration",
        f"{cfg.ttl_minutes * 60:g}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            endpoints = json.loads(line)["endpoints"]
        except (TimeoutError, ValueError, KeyError) as exc:
            err = b""
            if not isinstance(exc, TimeoutError) and proc.stderr is not None:
                # It closed stdout without its JSON line: it is exiting; its stderr says why.
                with contextlib.suppress(TimeoutError):
                    err = await asyncio.wait_for(proc.stderr.read(), 10)
            raise ConfigError(
                f"the simulator for [local] simulator did not start: {err.decode(errors='replace').strip() or exc}"
            ) from exc
        by_zone = {e["zone"]: e for e in endpoints if e["venue"] == cfg.probe.venue}
        zones = tuple(LocalZone(z.id, by_zone[z.id]["rest_url"], by_zone[z.id]["ws_url"]) for z in cfg.local_zones)
        log_event(log, logging.INFO, "simulator_started", pid=proc.pid, zones=len(zones))
        yield dataclasses.replace(cfg, local_zones=zones)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()


async def run_sweep(
    cfg: SweepConfig,
    *,
    config_path: str | None = None,
    terraform: str | None = None,
    sweep_id: str | None = None,
    progress: ProgressFn | None = None,
    on_start: Callable[[str], None] | None = None,
    clock: Clock = DEFAULT_CLOCK,
    preflight: bool = True,
) -> SweepRun:
    """Run a whole sweep; returns the outcome and the results directory."""
    binary = find_terraform(terraform)
    check_cost(cfg)
    if cfg.provider == "aws" and cfg.wheel is not None:
        check_wheel_file(cfg.wheel)  # a bad --wheel leaves no sweep record behind
    if preflight and cfg.provider == "aws":
        await asyncio.to_thread(aws_preflight, cfg)
    sid = validate_sweep_id(sweep_id or new_sweep_id(cfg))
    d = write_manifest(cfg, sid, terraform=binary, config_path=config_path)
    if on_start:
        on_start(sid)
    log_event(log, logging.INFO, "sweep_started", sweep=sid, candidates=len(candidates(cfg)), dir=d)
    async with simulator_for(cfg) as cfg:
        prov = TerraformProvisioner(cfg, sid, terraform=binary)
        orch = Orchestrator(
            cfg, sid, prov, clock=clock, progress=progress, candidates=candidates(cfg), on_change=_status_writer(d, sid)
        )
        outcome = await orch.run()
    out = write_results(cfg, outcome)
    write_json(d / "result.json", {"results_dir": str(out), "winners": outcome.winners})
    return SweepRun(outcome, out)


def sweep_status(state_dir: Path, sweep_id: str) -> dict[str, Any]:
    """What a sweep holds right now: per candidate its last status and resources still in state."""
    d = sweep_dir(state_dir, validate_sweep_id(sweep_id))
    manifest = read_manifest(d)
    status: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        status = json.loads((d / "status.json").read_text()).get("candidates", {})
    cands = {}
    for c in manifest["candidates"]:
        name = c["name"]
        cands[name] = {
            "status": status.get(name, {}).get("status", "unknown"),
            "score_us": status.get(name, {}).get("score_us"),
            "resources": state_resources(d / "candidates" / name),
        }
    doc: dict[str, Any] = {
        "sweep_id": sweep_id,
        "provider": manifest["provider"],
        "dir": str(d),
        "candidates": cands,
        "shared_resources": state_resources(d / "shared"),
    }
    if manifest["provider"] == "local":
        doc["agent_pids"] = local_agents(sweep_id)
    doc["live"] = (
        any(c["resources"] for c in cands.values()) or bool(doc["shared_resources"]) or bool(doc.get("agent_pids"))
    )
    return doc


async def cleanup_sweep(
    state_dir: Path, sweep_id: str, *, aws_client_factory: Callable[[str], Any] | None = None
) -> dict[str, Any]:
    """Destroy everything of a sweep: every Terraform root on disk, then a tag-scoped search."""
    d = sweep_dir(state_dir, validate_sweep_id(sweep_id))
    manifest = read_manifest(d)
    env = terraform_env(d)
    recorded = manifest.get("terraform")
    # The binary the sweep ran with, else (moved or upgraded since) the one on PATH.
    binary = find_terraform(recorded if isinstance(recorded, str) and os.access(recorded, os.X_OK) else None)
    roots = sorted(p for p in (d / "candidates").iterdir() if p.is_dir()) if (d / "candidates").exists() else []
    errors: list[str] = []
    destroyed: list[str] = []

    async def destroy(root: Path) -> None:
        if not state_resources(root):
            return
        try:
            await Terraform(root, env, binary=binary).destroy()
            destroyed.append(root.name)
        except TickpathError as exc:
            errors.append(f"{root.name}: {exc}")

    await asyncio.gather(*(destroy(r) for r in roots))
    if (d / "shared").exists():
        await destroy(d / "shared")
    swept: list[str] = []
    if manifest["provider"] == "local":
        swept = [f"agent pid {p}" for p in await asyncio.to_thread(stop_local_agents, sweep_id)]
    else:
        cleaner = AwsTagCleaner(sweep_id, region=manifest["region"], client_factory=aws_client_factory)
        swept = await asyncio.to_thread(cleaner.run)
    left = [r.name for r in roots if state_resources(r)]
    _mark_cleaned(d, {r.name for r in roots} - set(left))
    log_event(log, logging.INFO, "sweep_cleaned", sweep=sweep_id, destroyed=len(destroyed), swept=len(swept))
    if errors or left:
        raise InfraError(f"cleanup of {sweep_id} incomplete: {'; '.join(errors) or ', '.join(left)}")
    return {"sweep_id": sweep_id, "destroyed": destroyed, "tag_search_removed": swept}


def _mark_cleaned(d: Path, gone: set[str]) -> None:
    """Record in status.json that cleanup removed these candidates (status reads it)."""
    path = d / "status.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for name, cand in doc.get("candidates", {}).items():
        if name in gone and cand.get("status") not in ("destroyed",):
            cand["status"] = "destroyed"
            cand["error"] = (
                (cand.get("error") or "") + " (destroyed by cleanup)" if cand.get("error") else "destroyed by cleanup"
            )
    with contextlib.suppress(OSError):
        write_json(path, doc)


def list_sweeps(state_dir: Path) -> list[str]:
    """Sweep ids recorded under ``state_dir``, newest last."""
    root = Path(state_dir)
    if not root.exists():
        return []
    return sorted(
        (p.name for p in root.iterdir() if (p / "sweep.json").exists()),
        key=lambda n: (root / n / "sweep.json").stat().st_mtime,
    )
