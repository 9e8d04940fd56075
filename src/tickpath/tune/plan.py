"""Show, apply and revert the latency settings, saving previous values so ``revert`` restores them.

``apply`` records every value it is about to change in a state file before changing anything, and
keeps what it already changed if a later setting fails (the state file then says exactly what to
revert). ``revert`` restores the saved values and renames the state file so a second revert is a
clear error rather than a silent no-op.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickpath.errors import ConfigError
from tickpath.tune.knobs import EXCLUDED, CommandRunner, Knob, KnobState, default_knobs, system_runner

STATE_SCHEMA = "tickpath.tune/1"
DEFAULT_STATE_FILE = "/var/lib/tickpath/tune-state.json"


@dataclass(frozen=True)
class TuneConfig:
    root: str = "/"
    state_file: str = DEFAULT_STATE_FILE
    require_root: bool = True  # tests on a fake tree turn this off


@dataclass
class TuneReport:
    action: str  # show | apply | revert
    knobs: list[KnobState] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    state_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": STATE_SCHEMA,
            "action": self.action,
            "knobs": [
                {
                    "name": k.name,
                    "why": k.why,
                    "unsupported": k.unsupported,
                    "settings": [
                        {"where": s.where, "current": s.current, "target": s.target, "changes": s.changes}
                        for s in k.settings
                    ],
                }
                for k in self.knobs
            ],
            "changed": self.changed,
            "failed": self.failed,
            "excluded": [{"name": n, "why": w} for n, w in EXCLUDED],
            "state_file": self.state_file,
        }


def _check_root(config: TuneConfig) -> None:
    if config.require_root and os.geteuid() != 0:
        raise ConfigError("changing kernel settings needs root: run with sudo (or use show without --apply)")


def inspect(config: TuneConfig, *, run: CommandRunner = system_runner, knobs: list[Knob] | None = None) -> TuneReport:
    root = Path(config.root)
    return TuneReport("show", [k.inspect(root, run) for k in (knobs or default_knobs())])


def apply(config: TuneConfig, *, run: CommandRunner = system_runner, knobs: list[Knob] | None = None) -> TuneReport:
    _check_root(config)
    state_path = Path(config.state_file)
    if state_path.exists():
        raise ConfigError(
            f"{state_path} already holds saved values from an earlier --apply: "
            "run --revert first, so the original values are not lost"
        )
    knobs = knobs or default_knobs()
    root = Path(config.root)
    report = inspect(config, run=run, knobs=knobs)
    report.action = "apply"
    todo = [(knob, s) for knob, st in zip(knobs, report.knobs, strict=True) for s in st.settings if s.changes]
    if not todo:
        return report  # already tuned: nothing to save, nothing to change
    saved = {
        "schema": STATE_SCHEMA,
        "saved_at": time.time(),
        "root": str(root),
        "previous": [{"knob": k.name, "where": s.where, "value": s.current} for k, s in todo],
    }
    try:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(saved, indent=2))
    except OSError as exc:
        raise ConfigError(f"cannot save previous values to {state_path}: {exc}") from exc
    report.state_file = str(state_path)
    for knob, s in todo:
        try:
            knob.write(root, run, s.where, s.target)
        except OSError as exc:
            report.failed.append({"knob": knob.name, "where": s.where, "error": str(exc)})
        else:
            report.changed.append({"knob": knob.name, "where": s.where, "from": s.current, "to": s.target})
    return report


def revert(config: TuneConfig, *, run: CommandRunner = system_runner, knobs: list[Knob] | None = None) -> TuneReport:
    _check_root(config)
    state_path = Path(config.state_file)
    try:
        saved = json.loads(state_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"nothing to revert: {state_path} does not exist (was --apply run?)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read saved values from {state_path}: {exc}") from exc
    if saved.get("schema") != STATE_SCHEMA:
        raise ConfigError(f"{state_path} is not a tickpath tune state file")
    by_name = {k.name: k for k in (knobs or default_knobs())}
    root = Path(config.root)
    report = TuneReport("revert", state_file=str(state_path))
    for item in saved["previous"]:
        knob = by_name.get(item["knob"])
        if knob is None:
            report.failed.append({"knob": item["knob"], "where": item["where"], "error": "unknown knob"})
            continue
        try:
            knob.write(root, run, item["where"], item["value"])
        except OSError as exc:
            report.failed.append({"knob": knob.name, "where": item["where"], "error": str(exc)})
        else:
            report.changed.append({"knob": knob.name, "where": item["where"], "to": item["value"]})
    if not report.failed:
        state_path.rename(state_path.with_name(state_path.name + f".reverted-{int(time.time())}"))
    return report
