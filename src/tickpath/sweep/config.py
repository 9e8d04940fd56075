"""Sweep configuration: a TOML file loaded into frozen dataclasses and validated before anything runs.

Every mistake a user can make in the file (unknown keys, wrong types, a metric that names no probe
figure, a cost ceiling the plan exceeds) is a :class:`ConfigError` that names the key, so nothing is
created from a half-understood plan. See ``examples/sweep-aws.toml`` and ``docs/sweep.md``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickpath.errors import ConfigError
from tickpath.probe.config import duration_for
from tickpath.sweep.ranking import Metric, parse_metric
from tickpath.venues.binance.endpoints import VENUES, endpoints

PROVIDERS = ("aws", "local")
MARKETS = ("spot", "on-demand")
PLACEMENT_STRATEGIES = ("cluster", "spread", "partition", "none")
PROBE_METHODS = ("dns", "tcp", "tls", "rest", "ws", "stream", "path")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_AZ_ID_RE = re.compile(r"^[a-z]{2,5}[0-9]-az[0-9]{1,2}$")


@dataclass(frozen=True)
class ProbePlan:
    """What each candidate measures: passed to ``tickpath probe`` on the machine."""

    venue: str = "futures"
    host: str | None = None  # overrides the venue's documented host (None: Binance's own)
    symbol: str = "BTCUSDT"
    methods: tuple[str, ...] = ("tcp", "ws")
    samples: int = 100
    duration_s: float = 30.0  # seconds of sampling *per timed method* (the probe runs them in turn)
    rate: float = 20.0  # intended samples per second per method (open loop)

    @property
    def total_s(self) -> float:
        """The probe's ``--duration``: ``duration_s`` for each timed method."""
        return duration_for(self.duration_s, self.methods)


@dataclass(frozen=True)
class LocalZone:
    """A simulated zone for the ``local`` provider: its id and the endpoints its probe measures."""

    id: str
    rest_url: str
    ws_url: str


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep plan (frozen: the orchestrator never changes it)."""

    name: str
    provider: str
    region: str
    az_ids: tuple[str, ...]
    instance_types: tuple[str, ...]
    probe: ProbePlan
    metric: Metric
    instances_per_candidate: int = 1
    placement_strategy: str = "cluster"
    market: str = "on-demand"
    keep: int = 1
    max_loss_ratio: float = 0.05  # a candidate losing more of a ranked method's samples fails
    ttl_minutes: float = 60.0
    max_cost_usd: float = 10.0
    result_timeout_s: float | None = None
    poll_interval_s: float = 2.0
    max_parallel: int = 32
    state_dir: Path = Path(".tickpath/sweeps")
    results_dir: Path = Path("results")
    # aws
    prices_usd_per_hour: dict[str, float] = field(default_factory=dict)
    wheel: Path | None = None  # the tickpath wheel instances install; None: built from the running source
    results_expiry_days: int = 7
    # local
    local_zones: tuple[LocalZone, ...] = ()
    probe_command: tuple[str, ...] = ()
    simulator_zones: str | None = None  # "a:1ms;b:5ms": the sweep runs `tickpath sim` for its duration

    @property
    def timeout_s(self) -> float:
        """How long after its apply a candidate may take to report before it is failed."""
        if self.result_timeout_s is not None:
            return self.result_timeout_s
        slack = 30.0 if self.provider == "local" else 600.0  # boot + install on a real instance
        return self.probe.total_s + slack

    def zone(self, az_id: str) -> LocalZone | None:
        """The simulated zone ``az_id`` of the ``local`` provider (None for real zones)."""
        for zone in self.local_zones:
            if zone.id == az_id:
                return zone
        return None


def _take(
    table: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    default: Any = None,
    *,
    required: bool = False,
) -> Any:
    if key not in table:
        if required:
            raise ConfigError(f"{where}.{key} is required")
        return default
    value = table.pop(key)
    # bool is an int subclass in Python; a `true` where a number belongs is still a mistake.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(f"{where}.{key} must be {_kind_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key} must be {_kind_name(kind)}, got {type(value).__name__}: {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {
            str: "a string",
            int: "an integer",
            float: "a number",
            list: "a list",
            dict: "a table",
            bool: "true/false",
        }.get(k, k.__name__)
        for k in kinds
    )


def _str_list(
    table: dict[str, Any], key: str, where: str, default: tuple[str, ...] = (), *, required: bool = False
) -> tuple[str, ...]:
    items = _take(table, key, list, where, list(default), required=required)
    if not all(isinstance(x, str) and x for x in items):
        raise ConfigError(f"{where}.{key} must be a list of non-empty strings")
    if len(set(items)) != len(items):
        raise ConfigError(f"{where}.{key} lists the same value twice: {items}")
    return tuple(items)


def _no_leftovers(table: dict[str, Any], where: str) -> None:
    if table:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(sorted(table))}")


def _float_or_none(value: float | None) -> float | None:
    return float(value) if value is not None else None


def _positive(value: float, name: str) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep TOML file."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep config {p} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read sweep config {p}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep config {p} is not valid TOML: {exc}") from exc
    return parse_config(raw, base_dir=p.resolve().parent)


def parse_config(raw: dict[str, Any], *, base_dir: Path | None = None) -> SweepConfig:
    """Validate an already-parsed TOML document (relative paths resolve against ``base_dir``)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    sweep = _take(raw, "sweep", dict, "file", required=True)
    probe_t = _take(raw, "probe", dict, "file", required=True)
    ranking_t = _take(raw, "ranking", dict, "file", {})
    aws_t = _take(raw, "aws", dict, "file", {})
    local_t = _take(raw, "local", dict, "file", {})
    _no_leftovers(raw, "the file (expected [sweep], [probe], [ranking], [aws], [local])")
    # The sections are read in this order, and each key's errors come in it too.
    fields = _sweep_fields(sweep, base_dir or Path.cwd())
    fields |= _local_fields(sweep, local_t) if fields["provider"] == "local" else _aws_zone_fields(sweep)
    _no_leftovers(local_t, "[local]")
    _no_leftovers(sweep, "[sweep]")
    fields |= _aws_fields(aws_t)
    probe = _probe_plan(probe_t)
    metric, fields["max_loss_ratio"] = _ranking(ranking_t, probe.methods)
    _check_limits(fields, probe)
    return SweepConfig(probe=probe, metric=metric, **fields)


def _sweep_fields(sweep: dict[str, Any], base: Path) -> dict[str, Any]:
    """The ``[sweep]`` keys that do not depend on the provider, as SweepConfig fields."""
    name = _take(sweep, "name", str, "sweep", required=True)
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"sweep.name {name!r} must be 1-31 lowercase letters, digits or '-' "
            "(it becomes part of resource names and tags)"
        )
    provider = _take(sweep, "provider", str, "sweep", "aws")
    if provider not in PROVIDERS:
        raise ConfigError(f"sweep.provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    local = provider == "local"
    region = _take(sweep, "region", str, "sweep", "local" if local else None, required=provider == "aws")
    market = _take(sweep, "market", str, "sweep", "on-demand")
    if market not in MARKETS:
        raise ConfigError(f"sweep.market {market!r} is not one of {', '.join(MARKETS)}")
    placement = _take(sweep, "placement_group", str, "sweep", "cluster")
    if placement not in PLACEMENT_STRATEGIES:
        raise ConfigError(f"sweep.placement_group {placement!r} is not one of {', '.join(PLACEMENT_STRATEGIES)}")
    return {
        "name": name,
        "provider": provider,
        "region": region,
        "market": market,
        "placement_strategy": placement,
        "instances_per_candidate": _take(sweep, "instances_per_candidate", int, "sweep", 1),
        "keep": _take(sweep, "keep", int, "sweep", 1),
        "ttl_minutes": float(_take(sweep, "ttl_minutes", (int, float), "sweep", 60.0)),
        "max_cost_usd": float(_take(sweep, "max_cost_usd", (int, float), "sweep", 10.0)),
        "result_timeout_s": _float_or_none(_take(sweep, "result_timeout_s", (int, float), "sweep", None)),
        "poll_interval_s": float(_take(sweep, "poll_interval_s", (int, float), "sweep", 0.25 if local else 5.0)),
        "max_parallel": _take(sweep, "max_parallel", int, "sweep", 32),
        "state_dir": (base / _take(sweep, "state_dir", str, "sweep", ".tickpath/sweeps")).resolve(),
        "results_dir": (base / _take(sweep, "results_dir", str, "sweep", "results")).resolve(),
    }


def _local_fields(sweep: dict[str, Any], local_t: dict[str, Any]) -> dict[str, Any]:
    """The ``local`` provider's zones (listed, or the simulator's), probe command, AZ ids and types."""
    simulator = _take(local_t, "simulator", str, "local", None)
    zones_raw = _take(local_t, "zones", list, "local", [] if simulator else None, required=not simulator)
    if simulator and zones_raw:
        raise ConfigError("[local] takes either zones (endpoints you run) or simulator (the sweep runs one), not both")
    if simulator:
        zones_raw = [{"id": name, "rest_url": "", "ws_url": ""} for name in _sim_zone_names(simulator)]
    zones = []
    for i, z in enumerate(zones_raw):
        if not isinstance(z, dict):
            raise ConfigError(f"local.zones[{i}] must be a table with id, rest_url and ws_url")
        z = dict(z)
        where = f"local.zones[{i}]"
        zones.append(
            LocalZone(
                _take(z, "id", str, where, required=True),
                _take(z, "rest_url", str, where, required=True),
                _take(z, "ws_url", str, where, required=True),
            )
        )
        _no_leftovers(z, f"local.zones[{i}]")
    probe_command = _str_list(local_t, "probe_command", "local")
    az_ids = _str_list(sweep, "az_ids", "sweep", tuple(z.id for z in zones))
    known = {z.id for z in zones}
    unknown = [a for a in az_ids if a not in known]
    if unknown:
        raise ConfigError(f"sweep.az_ids {unknown} are not zones listed in [local] zones ({sorted(known)})")
    return {
        "local_zones": tuple(zones),
        "probe_command": probe_command,
        "simulator_zones": simulator,
        "az_ids": az_ids,
        "instance_types": _str_list(sweep, "instance_types", "sweep", ("local",)),
    }


def _aws_zone_fields(sweep: dict[str, Any]) -> dict[str, Any]:
    """A cloud provider's AZ ids (IDs, not names) and instance types."""
    az_ids = _str_list(sweep, "az_ids", "sweep", required=True)
    bad = [a for a in az_ids if not _AZ_ID_RE.match(a)]
    if bad:
        raise ConfigError(
            f"sweep.az_ids {bad} are not availability zone IDs (like 'apne1-az4'); "
            "zone names such as 'ap-northeast-1a' map to different zones per account"
        )
    return {"az_ids": az_ids, "instance_types": _str_list(sweep, "instance_types", "sweep", required=True)}


def _aws_fields(aws_t: dict[str, Any]) -> dict[str, Any]:
    """The ``[aws]`` table: prices, the wheel instances install, result expiry."""
    prices_raw = _take(aws_t, "price_usd_per_hour", dict, "aws", {})
    prices: dict[str, float] = {}
    for k, v in prices_raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"aws.price_usd_per_hour.{k} must be a non-negative number")
        prices[k] = float(v)
    if "tickpath_install" in aws_t:
        raise ConfigError(
            "aws.tickpath_install is gone: instances install the sweep's own tickpath wheel "
            "(built from the running source tree, or [aws] wheel / --wheel FILE)"
        )
    wheel = _take(aws_t, "wheel", str, "aws", "")
    expiry = _take(aws_t, "results_expiry_days", int, "aws", 7)
    _no_leftovers(aws_t, "[aws]")
    return {"prices_usd_per_hour": prices, "wheel": Path(wheel) if wheel else None, "results_expiry_days": expiry}


def _probe_plan(probe_t: dict[str, Any]) -> ProbePlan:
    """The ``[probe]`` table (its numbers are checked with the others, in :func:`_check_limits`)."""
    venue = _take(probe_t, "venue", str, "probe", "futures")
    if venue not in VENUES:
        raise ConfigError(f"probe.venue {venue!r} is not one of {', '.join(VENUES)}")
    host = _take(probe_t, "host", str, "probe", None)
    symbol = _take(probe_t, "symbol", str, "probe", endpoints(venue).default_symbol)
    rate = float(_take(probe_t, "rate", (int, float), "probe", 20.0))
    methods = _str_list(probe_t, "methods", "probe", ("tcp", "ws"))
    unknown_m = [m for m in methods if m not in PROBE_METHODS]
    if unknown_m:
        raise ConfigError(f"probe.methods {unknown_m} unknown; choose from {', '.join(PROBE_METHODS)}")
    samples = _take(probe_t, "samples", int, "probe", 100)
    duration = float(_take(probe_t, "duration_s", (int, float), "probe", 30.0))
    _no_leftovers(probe_t, "[probe]")
    return ProbePlan(
        venue=venue, host=host, symbol=symbol, methods=methods, samples=samples, duration_s=duration, rate=rate
    )


def _ranking(ranking_t: dict[str, Any], methods: tuple[str, ...]) -> tuple[Metric, float]:
    """The ``[ranking]`` metric, which may only use measured methods, and the loss ceiling."""
    metric = parse_metric(_take(ranking_t, "metric", str, "ranking", "ws.p99"))
    max_loss = float(_take(ranking_t, "max_loss_ratio", (int, float), "ranking", 0.05))
    if not 0.0 <= max_loss <= 1.0:
        raise ConfigError(f"ranking.max_loss_ratio must be between 0 and 1, got {max_loss}")
    _no_leftovers(ranking_t, "[ranking]")
    missing = [t.method for t in metric.terms if t.method not in methods]
    if missing:
        raise ConfigError(
            f"ranking.metric {metric.text!r} uses {sorted(set(missing))}, "
            f"which probe.methods {list(methods)} does not measure"
        )
    return metric, max_loss


def _check_limits(fields: dict[str, Any], probe: ProbePlan) -> None:
    """Counts and durations in range, and a TTL that outlasts the probe."""
    for value, label in (
        (fields["instances_per_candidate"], "sweep.instances_per_candidate"),
        (fields["ttl_minutes"], "sweep.ttl_minutes"),
        (probe.samples, "probe.samples"),
        (probe.rate, "probe.rate"),
        (probe.duration_s, "probe.duration_s"),
        (fields["poll_interval_s"], "sweep.poll_interval_s"),
        (fields["max_parallel"], "sweep.max_parallel"),
        (fields["results_expiry_days"], "aws.results_expiry_days"),
    ):
        _positive(value, label)
    if fields["keep"] < 0:
        raise ConfigError(f"sweep.keep must be 0 or more, got {fields['keep']}")
    if fields["max_cost_usd"] < 0:
        raise ConfigError(f"sweep.max_cost_usd must be 0 or more, got {fields['max_cost_usd']}")
    if fields["result_timeout_s"] is not None:
        _positive(fields["result_timeout_s"], "sweep.result_timeout_s")
    ttl = fields["ttl_minutes"]
    if probe.total_s / 60.0 >= ttl:
        raise ConfigError(
            f"sweep.ttl_minutes ({ttl}) must exceed the probe duration ({probe.total_s:g} s in all "
            f"= probe.duration_s {probe.duration_s:g} s per method x its timed methods): "
            "the self-destruct timer would stop every probe"
        )


def _sim_zone_names(spec: str) -> list[str]:
    """The zone names of a ``[local] simulator`` spec, checked by the simulator's own parser (so a
    spec ``tickpath sim`` would reject fails here, before anything is recorded)."""
    from tickpath.sim.config import parse_zones  # the simulator's parser; imported only when used

    try:
        zones = parse_zones(spec)
    except ConfigError as exc:
        raise ConfigError(f"local.simulator: {exc}") from exc
    names = [z.name for z in zones]
    for name in names:
        # Zone names become candidate names, which name Terraform roots, resources and tags.
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,39}", name):
            raise ConfigError(
                f"local.simulator zone name {name!r} must be lower-case letters, digits, "
                "'_', '.' or '-' (it names the candidate), e.g. fast:1ms"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"local.simulator names the same zone twice: {spec!r}")
    return names
