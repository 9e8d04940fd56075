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
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, InfraError, TickpathError
from tickpath.logs import log_event
from tickpath.sweep.cleanup import AwsTagCleaner, local_agents, stop_local_agents
from tickpath.sweep.config import SweepConfig
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
    factory = client_factory or (lambda s: boto3.client(s, region_name=cfg.region))
    try:
        factory("sts").get_caller_identity()
        ec2 = factory("ec2")
        zones = ec2.describe_availability_zones(AllAvailabilityZones=False)["AvailabilityZones"]
        known = {z["ZoneId"]: z["ZoneName"] for z in zones}
        unknown = [a for a in cfg.az_ids if a not in known]
        if unknown:
            raise ConfigError(f"AZ IDs {unknown} are not available in {cfg.region} for this account "
                              f"(available: {sorted(known)})")
        offers = ec2.describe_instance_type_offerings(
            LocationType="availability-zone-id",
            Filters=[{"Name": "location", "Values": list(cfg.az_ids)},
                     {"Name": "instance-type", "Values": list(cfg.instance_types)}])["InstanceTypeOfferings"]
        offered = {(o["Location"], o["InstanceType"]) for o in offers}
        missing = [f"{t} in {a}" for a in cfg.az_ids for t in cfg.instance_types if (a, t) not in offered]
        if missing:
            raise ConfigError(f"instance types not offered: {', '.join(missing)}")
    except NoCredentialsError as exc:
        raise ConfigError("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "AuthFailure"):
            raise ConfigError(f"AWS credentials rejected ({code}); check AWS_PROFILE or keys") from exc
        raise InfraError(f"AWS preflight failed ({code}): {exc}") from exc
    except BotoCoreError as exc:
        raise InfraError(f"AWS preflight failed: {exc}") from exc


def _status_writer(d: Path, sweep_id: str) -> Callable[[dict[str, CandidateState]], None]:
    def write(states: dict[str, CandidateState]) -> None:
        with contextlib.suppress(OSError):
            write_json(d / "status.json", {"sweep_id": sweep_id,
                                           "candidates": {n: s.to_dict() for n, s in states.items()}})
    return write


async def run_sweep(cfg: SweepConfig, *, config_path: str | None = None, terraform: str | None = None,
                    sweep_id: str | None = None, progress: ProgressFn | None = None,
                    on_start: Callable[[str], None] | None = None, clock: Clock = DEFAULT_CLOCK,
                    preflight: bool = True) -> SweepRun:
    """Run a whole sweep; returns the outcome and the results directory."""
    binary = find_terraform(terraform)
    check_cost(cfg)
    if preflight and cfg.provider == "aws":
        await asyncio.to_thread(aws_preflight, cfg)
    sid = validate_sweep_id(sweep_id or new_sweep_id(cfg))
    d = write_manifest(cfg, sid, terraform=binary, config_path=config_path)
    if on_start:
        on_start(sid)
    log_event(log, logging.INFO, "sweep_started", sweep=sid, candidates=len(candidates(cfg)), dir=d)
    prov = TerraformProvisioner(cfg, sid, terraform=binary)
    orch = Orchestrator(cfg, sid, prov, clock=clock, progress=progress, candidates=candidates(cfg),
                        on_change=_status_writer(d, sid))
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
        import json

        status = json.loads((d / "status.json").read_text()).get("candidates", {})
    cands = {}
    for c in manifest["candidates"]:
        name = c["name"]
        cands[name] = {"status": status.get(name, {}).get("status", "unknown"),
                       "score_us": status.get(name, {}).get("score_us"),
                       "resources": state_resources(d / "candidates" / name)}
    doc: dict[str, Any] = {"sweep_id": sweep_id, "provider": manifest["provider"], "dir": str(d),
                           "candidates": cands, "shared_resources": state_resources(d / "shared")}
    if manifest["provider"] == "local":
        doc["agent_pids"] = local_agents(sweep_id)
    doc["live"] = any(c["resources"] for c in cands.values()) or bool(doc["shared_resources"]) or bool(
        doc.get("agent_pids"))
    return doc


async def cleanup_sweep(state_dir: Path, sweep_id: str, *,
                        aws_client_factory: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Destroy everything of a sweep: every Terraform root on disk, then a tag-scoped search."""
    d = sweep_dir(state_dir, validate_sweep_id(sweep_id))
    manifest = read_manifest(d)
    env = terraform_env(d)
    binary = find_terraform(manifest.get("terraform"))
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
    log_event(log, logging.INFO, "sweep_cleaned", sweep=sweep_id, destroyed=len(destroyed), swept=len(swept))
    if errors or left:
        raise InfraError(f"cleanup of {sweep_id} incomplete: {'; '.join(errors) or ', '.join(left)}")
    return {"sweep_id": sweep_id, "destroyed": destroyed, "tag_search_removed": swept}


def list_sweeps(state_dir: Path) -> list[str]:
    """Sweep ids recorded under ``state_dir``, newest last."""
    root = Path(state_dir)
    if not root.exists():
        return []
    return sorted((p.name for p in root.iterdir() if (p / "sweep.json").exists()),
                  key=lambda n: (root / n / "sweep.json").stat().st_mtime)
