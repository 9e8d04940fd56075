"""End to end with the real Terraform CLI, the local provider, the real probe and simulator zones."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tickpath.sweep.cleanup import local_agents
from tickpath.sweep.config import load_config
from tickpath.sweep.runner import cleanup_sweep, run_sweep, sweep_status
from tickpath.sweep.terraform import state_resources

from .conftest import SimZone

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def write_config(
    tmp_path: Path,
    zones: dict[str, SimZone],
    *,
    duration_s: float,
    name: str = "e2e",
    extra_zones: dict[str, tuple[str, str]] | None = None,
    timeout_s: float = 60,
) -> Path:
    lines = [
        "[sweep]",
        f'name = "{name}"',
        'provider = "local"',
        "keep = 1",
        "ttl_minutes = 5",
        f"result_timeout_s = {timeout_s}",
        "poll_interval_s = 0.1",
        'state_dir = "state"',
        'results_dir = "results"',
        "[probe]",
        'methods = ["tcp", "ws"]',
        f"duration_s = {duration_s}",
        "rate = 20",
        "[ranking]",
        'metric = "ws.p50"',
        "max_loss_ratio = 0.2",
        "[local]",
        "zones = [",
    ]
    for zid, z in zones.items():
        lines.append(f'  {{ id = "{zid}", rest_url = "{z.rest_url}", ws_url = "{z.ws_url}" }},')
    for zid, (rest, ws) in (extra_zones or {}).items():
        lines.append(f'  {{ id = "{zid}", rest_url = "{rest}", ws_url = "{ws}" }},')
    lines.append("]")
    path = tmp_path / "sweep.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def tickpath(*args: str) -> list[str]:
    return [sys.executable, "-m", "tickpath.cli.main", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}


def _sweep_dir(tmp_path: Path) -> Path:
    dirs = [p for p in (tmp_path / "state").iterdir() if (p / "sweep.json").exists()]
    assert len(dirs) == 1
    return dirs[0]


def _assert_nothing_left(sweep_dir: Path, *, except_: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    assert local_agents(sweep_dir.name) == [] or except_, "agent processes survived"
    for root in (sweep_dir / "candidates").iterdir():
        if root.name not in except_:
            assert state_resources(root) == [], f"{root.name} still holds resources"


def test_sweep_picks_the_truly_fastest_zone_and_destroys_losers_as_results_arrive(
    tmp_path: Path, sim_zones: dict[str, SimZone], terraform_bin: str
) -> None:
    """Zones of 1/12/25 ms: the 1 ms zone wins, losers go within 5 s of their result, a dead zone fails."""
    # 1.5 s at 20/s is ~30 ws samples per zone: a p50 that a host stall of a few hundred ms cannot
    # flip between the 12 and 25 ms zones (0.5 s, ~10 samples, swapped them once in a clean-clone CI run
    # while the four agents started together on two cores).
    cfg = write_config(
        tmp_path, sim_zones, duration_s=1.5, extra_zones={"dead": ("http://127.0.0.1:9", "ws://127.0.0.1:9")}
    )
    proc = subprocess.run(
        tickpath("sweep", "run", str(cfg), "--json"),
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["winner"] == "fast", summary
    assert summary["kept"] == ["fast"]
    assert summary["failed"] == ["dead"]
    assert [r["name"] for r in summary["ranking"]] == ["fast", "mid", "slow"]
    assert "fast has the lowest ws.p50" in summary["why"]

    sweep_dir = _sweep_dir(tmp_path)
    states = json.loads((sweep_dir / "status.json").read_text())["candidates"]
    for name in ("mid", "slow", "dead"):
        st = states[name]
        assert st["status"] == "destroyed"
        if st["result_s"] is not None:
            assert st["destroyed_s"] - st["result_s"] < 5.0, st
    assert states["fast"]["status"] == "kept"

    out = Path(summary["results_dir"])
    rows = {r["candidate"]: r for r in csv.DictReader((out / "latency_results.csv").open())}
    assert rows["fast"]["rank"] == "1" and rows["fast"]["kept"] == "yes"
    assert rows["dead"]["failed"] == "yes" and rows["dead"]["rank"] == ""
    assert float(rows["fast"]["ws.p50_us"]) < float(rows["mid"]["ws.p50_us"]) < float(rows["slow"]["ws.p50_us"])
    assert (out / "candidates" / "fast.json").exists() and list((out / "candidates").glob("fast.*.hgrm"))
    assert list((out / "candidates").glob("slow.*.hdr")) and not list((out / "candidates").glob("slow.*.hgrm"))
    assert "**Winner: fast**" in (out / "summary.md").read_text()

    # The winner is kept (its resource is still in state) until cleanup removes it.
    assert state_resources(sweep_dir / "candidates" / "fast") == ["terraform_data.agent"]
    _assert_nothing_left(sweep_dir, except_={"fast"})
    cleaned = asyncio.run(cleanup_sweep(tmp_path / "state", sweep_dir.name))  # the CLI form: kill -9 test
    assert cleaned["destroyed"] == ["fast"]
    _assert_nothing_left(sweep_dir)


def _start_and_wait_for_agents(
    tmp_path: Path, all_zones: dict[str, SimZone], *extra: str
) -> tuple[subprocess.Popen[str], Path]:
    sim_zones = {k: all_zones[k] for k in ("fast", "slow")}  # two are enough to prove teardown
    cfg = write_config(tmp_path, sim_zones, duration_s=60, name="sig")
    orch = subprocess.Popen(
        tickpath("sweep", "run", str(cfg), *extra),
        cwd=tmp_path,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = tmp_path / "state"
        if state.exists() and any(state.iterdir()):
            sweep_dir = _sweep_dir(tmp_path)
            if len(local_agents(sweep_dir.name)) == len(sim_zones):
                return orch, sweep_dir
        if orch.poll() is not None:
            pytest.fail(f"orchestrator exited early: {orch.communicate()}")
        time.sleep(0.1)
    orch.kill()
    pytest.fail("agents did not start within 60 s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_during_run_leaves_nothing(
    tmp_path: Path, sim_zones: dict[str, SimZone], terraform_bin: str, sig: signal.Signals
) -> None:
    """SIGINT or SIGTERM mid-probe: the CLI destroys every candidate, no agent survives, exit 130; with
    --json stdout still gets one object saying so, with the sweep's status after the cleanup (it was
    empty)."""
    orch, sweep_dir = _start_and_wait_for_agents(tmp_path, sim_zones, "--json")
    orch.send_signal(sig)
    out, err = orch.communicate(timeout=60)
    assert orch.returncode == 130, err
    assert "cleanup finished" in err
    _assert_nothing_left(sweep_dir)
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["sweep_id"] == sweep_dir.name
    assert doc["status"]["live"] is False and set(doc["status"]["candidates"]) == {"fast", "slow"}


def test_kill9_then_cleanup_leaves_nothing(tmp_path: Path, sim_zones: dict[str, SimZone], terraform_bin: str) -> None:
    """After kill -9 of the orchestrator, agents live on; `sweep cleanup --sweep-id` removes them all."""
    orch, sweep_dir = _start_and_wait_for_agents(tmp_path, sim_zones)
    orch.kill()
    orch.communicate(timeout=30)
    assert len(local_agents(sweep_dir.name)) == 2  # nothing cleaned them up by itself
    assert sweep_status(tmp_path / "state", sweep_dir.name)["live"] is True
    clean = subprocess.run(
        tickpath("sweep", "cleanup", "--sweep-id", sweep_dir.name, "--state-dir", str(tmp_path / "state")),
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert clean.returncode == 0, clean.stderr
    _assert_nothing_left(sweep_dir)
    assert sweep_status(tmp_path / "state", sweep_dir.name)["live"] is False


def test_silent_candidate_is_timed_out_failed_and_its_agent_stopped(tmp_path: Path, terraform_bin: str) -> None:
    """With real Terraform, a probe that never reports is failed at result_timeout_s and its agent destroyed."""
    stub = Path(__file__).with_name("stub_probe.py")
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(f"""
[sweep]
name = "hang"
provider = "local"
ttl_minutes = 5
result_timeout_s = 3
poll_interval_s = 0.1
state_dir = "state"
results_dir = "results"
[probe]
methods = ["tcp", "ws"]
duration_s = 1
[local]
zones = [{{ id = "ok", rest_url = "http://127.0.0.1:1", ws_url = "ws://127.0.0.1:1" }},
         {{ id = "silent", rest_url = "http://127.0.0.1:1", ws_url = "ws://127.0.0.1:1" }}]
probe_command = ["{{python}}", "{stub}", "{{az_id}}", "0.2", "ok=2,silent=hang"]
""")
    result = asyncio.run(run_sweep(load_config(cfg)))
    states = result.outcome.states
    assert states["silent"].failed and "no result within 3 s" in (states["silent"].error or "")
    assert states["silent"].status == "destroyed"
    assert result.outcome.winners == ["ok"]
    sweep_dir = _sweep_dir(tmp_path)
    assert local_agents(sweep_dir.name, keep={"ok"}) == []
    assert state_resources(sweep_dir / "candidates" / "silent") == []
    asyncio.run(cleanup_sweep(tmp_path / "state", sweep_dir.name))
    _assert_nothing_left(sweep_dir)
