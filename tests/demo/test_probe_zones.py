"""The sweep stand-in used when Terraform is missing: real probes against the simulator's zones."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.demo import DemoConfig, DemoProgress
from tickpath.demo.run import sim_config, terraform_available
from tickpath.demo.steps import probe_zones_step
from tickpath.sim import Simulator


def test_missing_terraform_is_detected_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No terraform on PATH (and no --terraform) means the in-process stand-in, and the summary says why.
    (A --terraform path that is not there is an error instead: tests/demo/test_cli_errors.py.)"""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    reason = terraform_available(DemoConfig.quick(results_dir=tmp_path))
    assert reason is not None and "terraform" in reason and "from this process" in reason


@virtual_time
async def test_in_process_probes_name_the_fastest_zone_and_write_sweep_results(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    """Without Terraform the zones are still ranked by ws p50: frankfurt wins, CSV and documents written."""
    cfg = DemoConfig.quick(results_dir=tmp_path)
    with DemoProgress(live=False) as ui:
        async with Simulator(sim_config(cfg), clock=virtual_clock) as sim, ui.step("sweep", "probing", 5.0) as st:
            res = await probe_zones_step(cfg, sim, tmp_path / "sweep", st)
    assert res.winner == "frankfurt" == res.expected_fastest
    assert [r["name"] for r in res.ranking] == ["frankfurt", "virginia", "tokyo"]
    rows = list(csv.DictReader((res.results_dir / "latency_results.csv").open()))
    assert [r["candidate"] for r in rows] == ["frankfurt", "virginia", "tokyo"]
    assert rows[0]["kept"] == "yes" and float(rows[0]["ws.p50_us"]) < float(rows[1]["ws.p50_us"])
    # In virtual time a ping/pong is exactly the zone's delay both ways plus its jitter: never less.
    delay_ms = {z.name: z.latency.delay_ms for z in cfg.zones}
    for r in rows:
        assert 2_000 * delay_ms[r["candidate"]] <= float(r["ws.p50_us"]) < 2_000 * delay_ms[r["candidate"]] + 2_000
    doc = json.loads((res.results_dir / "sweep.json").read_text())
    assert doc["schema"] == "tickpath.sweep/1" and doc["winner"] == "frankfurt"
    for zone in ("frankfurt", "virginia", "tokyo"):
        probe = json.loads((res.results_dir / "probes" / zone / "probe.json").read_text())
        assert probe["schema"] == "tickpath.probe/1" and probe["methods"]["ws"]["summary"]["count"] > 0


def test_missing_nats_server_means_the_bus_steps_are_skipped_with_the_reason(tmp_path: Path) -> None:
    """No nats-server (or --no-nats): the demo goes on without the bus and says why."""
    from tickpath.demo.run import nats_available

    reason = nats_available(DemoConfig.quick(results_dir=tmp_path, nats_server=str(tmp_path / "nope")))
    assert reason is not None and "nats-server" in reason and "without the bus" in reason
    assert nats_available(DemoConfig.quick(results_dir=tmp_path, nats=False)) == "skipped on request (--no-nats)"
