"""Several instances per candidate through the real Terraform CLI and the local provider's agents."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tickpath.sweep.runner import cleanup_sweep
from tickpath.sweep.terraform import state_resources

from .test_local_e2e import _assert_nothing_left, _env, _sweep_dir, tickpath

pytestmark = pytest.mark.integration


def _agent_indices(root: Path) -> list[int]:
    """Instance indices of terraform_data.agent still in a candidate's state."""
    state = json.loads((root / "terraform.tfstate").read_text())
    return sorted(
        inst["index_key"]
        for res in state["resources"]
        if res["type"] == "terraform_data" and res["name"] == "agent"
        for inst in res["instances"]
    )


def test_three_instances_merged_ranked_and_only_the_best_one_kept(tmp_path: Path, terraform_bin: str) -> None:
    """Zone 'near' (instances at 4/1/2 ms) beats 'far' (6 ms each) on merged ws.p50; near keeps only
    its instance 1 (the best, not the first); far is destroyed; the text output shows the spread."""
    stub = Path(__file__).with_name("stub_probe.py")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(f"""
[sweep]
name = "inst"
provider = "local"
instances_per_candidate = 3
ttl_minutes = 5
result_timeout_s = 60
poll_interval_s = 0.1
state_dir = "state"
results_dir = "results"
[probe]
methods = ["tcp", "ws"]
duration_s = 1
[ranking]
metric = "ws.p50"
[local]
zones = [{{ id = "near", rest_url = "http://127.0.0.1:1", ws_url = "ws://127.0.0.1:1" }},
         {{ id = "far", rest_url = "http://127.0.0.1:1", ws_url = "ws://127.0.0.1:1" }}]
probe_command = ["{sys.executable}", "{stub}", "{{az_id}}", "0.1", "near=4/1/2,far=6/6/6", "{{instance}}"]
""")
    proc = subprocess.run(
        tickpath("sweep", "run", str(cfg)), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert "winner: near" in proc.stderr and "best instance (1) is the one kept" in proc.stderr
    assert "3 instances merged; per instance ws.p50 8" in proc.stderr  # instance 0: 2 x 4 ms round trip

    sweep_dir = _sweep_dir(tmp_path)
    assert _agent_indices(sweep_dir / "candidates" / "near") == [1]
    assert state_resources(sweep_dir / "candidates" / "far") == []
    assert sorted(p.name for p in (sweep_dir / "run" / "near").glob("agent-*.pid")) == ["agent-1.pid"]

    (results,) = (tmp_path / "results").iterdir()
    doc = json.loads((results / "summary.json").read_text())
    near = doc["candidates"]["near"]
    assert doc["winner"] == "near" and near["best_instance"] == 1 and near["destroyed_instances"] == [0, 2]
    p50 = [i["figures_us"]["ws.p50"] for i in near["instances"]]
    assert p50[1] < p50[2] < p50[0]
    assert near["spread_us"]["ws.p50"] == pytest.approx(p50[0] - p50[1], abs=0.01)
    # ranked on the merged distribution: its median lies at the middle instance, not the best one
    assert p50[1] < near["score_us"] <= p50[2] < doc["candidates"]["far"]["score_us"]

    asyncio.run(cleanup_sweep(tmp_path / "state", sweep_dir.name))
    _assert_nothing_left(sweep_dir)
