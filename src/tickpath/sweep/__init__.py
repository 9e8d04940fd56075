"""``tickpath sweep``: find the lowest-latency placement, keep the winners, leave nothing behind.

Configured by a TOML file (:func:`load_config`); ``plan`` (:func:`describe`) creates nothing;
:func:`run_sweep` applies every candidate at once with Terraform, ranks their probe results by a
metric such as ``ws.p99`` and destroys losers as soon as they cannot win; :func:`cleanup_sweep`
recovers from a killed orchestrator. See ``docs/sweep.md``.

Names are imported lazily: a probe agent (``python -m tickpath.sweep.agent``) starts once per
candidate, many at once, and must not pay for the orchestrator's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickpath.sweep.config import SweepConfig, load_config, parse_config
    from tickpath.sweep.orchestrator import CandidateState, Orchestrator, SweepOutcome
    from tickpath.sweep.plan import Candidate, candidates, describe, expected_cost
    from tickpath.sweep.ranking import Metric, parse_metric
    from tickpath.sweep.runner import SweepRun, cleanup_sweep, list_sweeps, run_sweep, sweep_status
    from tickpath.sweep.store import DirectoryStore, ResultStore, S3Store

_WHERE = {
    "SweepConfig": "config",
    "load_config": "config",
    "parse_config": "config",
    "CandidateState": "orchestrator",
    "Orchestrator": "orchestrator",
    "SweepOutcome": "orchestrator",
    "Candidate": "plan",
    "candidates": "plan",
    "describe": "plan",
    "expected_cost": "plan",
    "Metric": "ranking",
    "parse_metric": "ranking",
    "SweepRun": "runner",
    "cleanup_sweep": "runner",
    "list_sweeps": "runner",
    "run_sweep": "runner",
    "sweep_status": "runner",
    "DirectoryStore": "store",
    "ResultStore": "store",
    "S3Store": "store",
}

__all__ = [
    "Candidate",
    "CandidateState",
    "DirectoryStore",
    "Metric",
    "Orchestrator",
    "ResultStore",
    "S3Store",
    "SweepConfig",
    "SweepOutcome",
    "SweepRun",
    "candidates",
    "cleanup_sweep",
    "describe",
    "expected_cost",
    "list_sweeps",
    "load_config",
    "parse_config",
    "parse_metric",
    "run_sweep",
    "sweep_status",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"tickpath.sweep.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tickpath.sweep' has no attribute {name!r}")
