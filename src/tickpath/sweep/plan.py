"""What a sweep will do, computed without creating anything: candidates, probe command, cost, resources.

``tickpath sweep plan`` prints this; ``run`` refuses to start when the expected cost exceeds the
configured ceiling. Expected cost is an upper bound: every instance of every candidate billed for the
whole TTL at the on-demand price (spot is usually cheaper, never dearer than on-demand).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from tickpath.errors import ConfigError
from tickpath.sweep.config import SweepConfig

# On-demand Linux USD/hour in us-east-1 / ap-northeast-1 (checked 2026-10); other regions and types
# need [aws] price_usd_per_hour. Used only for the cost ceiling, which is why unknown is an error.
KNOWN_PRICES_USD_PER_HOUR: dict[str, float] = {
    "c6in.large": 0.1134,
    "c6in.xlarge": 0.2268,
    "c6in.2xlarge": 0.4536,
    "c6in.4xlarge": 0.9072,
    "c7i.large": 0.0893,
    "c7i.xlarge": 0.1785,
    "c7i.2xlarge": 0.357,
    "c7i.4xlarge": 0.714,
    "c7g.large": 0.0725,
    "c7g.xlarge": 0.145,
    "c7gn.large": 0.1248,
    "c7gn.xlarge": 0.2496,
    "c5n.large": 0.108,
    "c5n.xlarge": 0.216,
    "c5n.2xlarge": 0.432,
    "m7i.large": 0.1008,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "c6in.24xlarge": 5.4432,
    "c7i.24xlarge": 4.284,
}

TAG_SWEEP_ID = "tickpath:sweep-id"
TAG_CANDIDATE = "tickpath:candidate"


@dataclass(frozen=True)
class Candidate:
    """One placement to measure: an availability zone ID and an instance type."""

    name: str
    az_id: str
    instance_type: str
    index: int


def candidates(cfg: SweepConfig) -> list[Candidate]:
    """Every (zone, instance type) pair, in a stable order."""
    out: list[Candidate] = []
    for az in cfg.az_ids:
        for itype in cfg.instance_types:
            name = az if cfg.provider == "local" and cfg.instance_types == ("local",) else f"{az}.{itype}"
            out.append(Candidate(name=name, az_id=az, instance_type=itype, index=len(out)))
    return out


def new_sweep_id(cfg: SweepConfig) -> str:
    """A unique, short, lower-case id (it names buckets and roles, so at most 52 characters)."""
    return f"{cfg.name}-{time.strftime('%y%m%d%H%M', time.gmtime())}-{secrets.token_hex(2)}"


def validate_sweep_id(sweep_id: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{2,51}", sweep_id):
        raise ConfigError(f"{sweep_id!r} is not a sweep id (lower-case letters, digits and '-')")
    return sweep_id


def tags(cfg: SweepConfig, sweep_id: str, candidate: Candidate | None = None) -> dict[str, str]:
    """Tags put on every resource; cleanup searches by ``tickpath:sweep-id`` and nothing else."""
    t = {TAG_SWEEP_ID: sweep_id, "tickpath:sweep-name": cfg.name, "tickpath:managed-by": "tickpath-sweep"}
    if candidate is not None:
        t[TAG_CANDIDATE] = candidate.name
    return t


def probe_argv(cfg: SweepConfig, candidate: Candidate) -> list[str]:
    """Arguments after ``tickpath`` that run this candidate's probe and print JSON."""
    p = cfg.probe
    argv = [
        "probe",
        "--venue",
        p.venue,
        "--method",
        ",".join(p.methods),
        "--symbol",
        p.symbol,
        "--samples",
        str(p.samples),
        "--duration",
        f"{p.total_s:g}",
        "--rate",
        f"{p.rate:g}",
        "--quiet",
    ]
    zone = cfg.zone(candidate.az_id)
    if zone is not None:
        # Before a sweep-run simulator has started, its zones' URLs are not known yet.
        argv += [
            "--rest-url",
            zone.rest_url or f"<{zone.id} REST URL>",
            "--ws-url",
            zone.ws_url or f"<{zone.id} WS URL>",
            "--no-imds",
        ]
    elif p.host:
        argv += ["--host", p.host]
    return [*argv, "--json"]


def price_per_hour(cfg: SweepConfig, instance_type: str) -> float:
    if cfg.provider == "local":
        return 0.0
    if instance_type in cfg.prices_usd_per_hour:
        return cfg.prices_usd_per_hour[instance_type]
    if instance_type in KNOWN_PRICES_USD_PER_HOUR:
        return KNOWN_PRICES_USD_PER_HOUR[instance_type]
    raise ConfigError(
        f"no price known for {instance_type!r}: add it under [aws] price_usd_per_hour "
        "so the cost ceiling can be checked"
    )


def expected_cost(cfg: SweepConfig) -> float:
    """Upper bound in USD: every instance billed for the whole TTL at the on-demand price."""
    hours = cfg.ttl_minutes / 60.0
    return sum(price_per_hour(cfg, c.instance_type) * cfg.instances_per_candidate * hours for c in candidates(cfg))


def check_cost(cfg: SweepConfig) -> float:
    cost = expected_cost(cfg)
    if cost > cfg.max_cost_usd:
        raise ConfigError(
            f"expected cost ${cost:.2f} (all instances for the {cfg.ttl_minutes:g} min TTL) "
            f"exceeds sweep.max_cost_usd ${cfg.max_cost_usd:.2f}; cut candidates or the TTL"
        )
    return cost


def resources(cfg: SweepConfig) -> dict[str, list[str]]:
    """What ``run`` will create, shared and per candidate (the modules' resources, by address)."""
    if cfg.provider == "local":
        sim = [f"a `tickpath sim` process serving zones {cfg.simulator_zones} (for the sweep's duration)"]
        shared = [f"results directory {cfg.state_dir}/<sweep-id>/store", *(sim if cfg.simulator_zones else [])]
        return {"shared": shared, "per_candidate": ["terraform_data.agent (a probe agent process on this machine)"]}
    per = [
        "aws_subnet.probe (in the AZ ID, in the sweep VPC)",
        "aws_route_table_association.probe",
        "aws_security_group.probe (egress only; access via SSM)",
        "aws_instance.probe (IMDSv2 required, shutdown terminates, self-destruct at TTL)"
        + (f" x{cfg.instances_per_candidate}" if cfg.instances_per_candidate > 1 else ""),
    ]
    if cfg.placement_strategy != "none":
        per.insert(0, f"aws_placement_group.probe ({cfg.placement_strategy})")
    shared = [
        f"aws_s3_bucket.results (private, public access blocked, expiry {cfg.results_expiry_days} d)",
        "aws_iam_role.probe (s3:PutObject on results/<sweep-id>/* only)",
        "aws_iam_instance_profile.probe",
        "aws_vpc.sweep + aws_internet_gateway + aws_route_table",
    ]
    return {"shared": shared, "per_candidate": per}


def describe(cfg: SweepConfig) -> dict[str, Any]:
    """The plan as a JSON-ready dict (what ``sweep plan --json`` prints)."""
    cands = candidates(cfg)
    cost = expected_cost(cfg)
    return {
        "name": cfg.name,
        "provider": cfg.provider,
        "region": cfg.region,
        "market": cfg.market,
        "metric": cfg.metric.text,
        "keep": cfg.keep,
        "ttl_minutes": cfg.ttl_minutes,
        "result_timeout_s": cfg.timeout_s,
        "candidates": [
            {
                "name": c.name,
                "az_id": c.az_id,
                "instance_type": c.instance_type,
                "instances": cfg.instances_per_candidate,
                "usd_per_hour": price_per_hour(cfg, c.instance_type) * cfg.instances_per_candidate,
                "probe": ["tickpath", *probe_argv(cfg, c)],
            }
            for c in cands
        ],
        "expected_cost_usd": round(cost, 4),
        "max_cost_usd": cfg.max_cost_usd,
        "within_budget": cost <= cfg.max_cost_usd,
        "resources": resources(cfg),
        "simulator": cfg.simulator_zones,
    }
