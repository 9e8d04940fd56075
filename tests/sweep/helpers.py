"""Test doubles for the orchestrator: a scripted result store and an in-memory provisioner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickpath.clock import ManualClock
from tickpath.errors import InfraError
from tickpath.stats import LatencyRecorder
from tickpath.sweep.config import SweepConfig, parse_config
from tickpath.sweep.plan import Candidate


def probe_doc(ws_p99_us: float, tcp_p50_us: float = 100.0, ws_loss: float = 0.0) -> dict[str, Any]:
    """A document shaped like ``tickpath probe --json`` (schema tickpath.probe/1)."""
    return {
        "schema": "tickpath.probe/1",
        "methods": {
            "ws": {
                "summary": {
                    "unit": "us",
                    "count": 100,
                    "losses": 0,
                    "p50": ws_p99_us / 2,
                    "p90": ws_p99_us * 0.8,
                    "p99": ws_p99_us,
                    "p999": ws_p99_us,
                    "p9999": ws_p99_us,
                    "min": 1.0,
                    "mean": ws_p99_us / 2,
                    "max": ws_p99_us,
                    "loss_ratio": ws_loss,
                }
            },
            "tcp": {
                "summary": {
                    "unit": "us",
                    "count": 100,
                    "losses": 0,
                    "p50": tcp_p50_us,
                    "p90": tcp_p50_us,
                    "p99": tcp_p50_us * 2,
                    "p999": tcp_p50_us * 2,
                    "p9999": tcp_p50_us * 2,
                    "min": 1.0,
                    "mean": tcp_p50_us,
                    "max": tcp_p50_us * 2,
                    "loss_ratio": 0.0,
                }
            },
        },
    }


def ok_result(doc: dict[str, Any]) -> bytes:
    return json.dumps({"status": "ok", "probe": doc, "finished_unix": 1.0}).encode()


def local_config(tmp_path: Path, zones: list[str], **sweep: Any) -> SweepConfig:
    raw = {
        "sweep": {"name": "unit", "provider": "local", "ttl_minutes": 5, "poll_interval_s": 0.5, **sweep},
        "probe": {"methods": ["tcp", "ws"], "duration_s": 1},
        "ranking": {"metric": sweep.pop("metric", "ws.p99")} if "metric" in sweep else {"metric": "ws.p99"},
        "local": {"zones": [{"id": z, "rest_url": "http://127.0.0.1:1", "ws_url": "ws://127.0.0.1:1"} for z in zones]},
    }
    raw["sweep"].pop("metric", None)
    return parse_config(raw, base_dir=tmp_path)


@dataclass
class ScriptedStore:
    """Results appear at scripted times on a manual clock."""

    clock: ManualClock
    script: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def ready(self, sweep_id: str) -> set[str]:
        now = self.clock.monotonic_ns()
        return {n for n, (at, _) in self.script.items() if at <= now}

    def get(self, sweep_id: str, candidate: str) -> bytes:
        self.reads.append(candidate)
        return self.script[candidate][1]

    def put(self, sweep_id: str, candidate: str, body: bytes) -> None:
        self.script[candidate] = (self.clock.monotonic_ns(), body)


class FakeProvisioner:
    """Keeps a set of "live" candidates; records when each was destroyed on the manual clock."""

    def __init__(
        self,
        clock: ManualClock,
        store: ScriptedStore,
        *,
        fail_apply: set[str] | None = None,
        apply_blocks: bool = False,
    ) -> None:
        self.clock = clock
        self.store = store
        self.live: set[str] = set()
        self.destroyed_at: dict[str, int] = {}
        self.fail_apply = fail_apply or set()
        self.apply_blocks = apply_blocks
        self.prepared = False
        self.finished_kept: set[str] | None = None
        self.instances_destroyed: dict[str, list[int]] = {}

    async def prepare(self) -> None:
        self.prepared = True

    async def apply(self, candidate: Candidate) -> None:
        self.live.add(candidate.name)  # partially created, like a real failed apply
        if candidate.name in self.fail_apply:
            raise InfraError("InsufficientInstanceCapacity: no capacity in this zone")
        if self.apply_blocks:
            await asyncio.Event().wait()

    def exists(self, candidate: Candidate) -> bool:
        return candidate.name in self.live

    async def destroy(self, candidate: Candidate) -> None:
        await asyncio.sleep(0)
        self.live.discard(candidate.name)
        self.destroyed_at[candidate.name] = self.clock.monotonic_ns()

    async def destroy_instances(self, candidate: Candidate, instances: Sequence[int]) -> None:
        await asyncio.sleep(0)
        self.instances_destroyed.setdefault(candidate.name, []).extend(instances)

    async def finish(self, *, kept: set[str]) -> None:
        self.finished_kept = kept


def recorded_method(samples_us: Sequence[float], losses: int = 0) -> dict[str, Any]:
    """One method of a probe document as ``tickpath probe`` writes it: summary and encoded histogram."""
    rec = LatencyRecorder("m")
    rec.record_many([round(v * 1000) for v in samples_us])
    rec.record_loss(losses)
    return {"summary": rec.summary().to_dict("us"), "histogram": rec.encode()}


def recorded_doc(ws_us: Sequence[float], tcp_us: Sequence[float] = (100.0,), ws_losses: int = 0) -> dict[str, Any]:
    """A probe document whose ws and tcp figures come from real HdrHistograms of these samples."""
    return {
        "schema": "tickpath.probe/1",
        "methods": {"ws": recorded_method(ws_us, ws_losses), "tcp": recorded_method(tcp_us)},
    }
