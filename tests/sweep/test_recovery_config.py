"""The documented recovery after kill -9 of `sweep run`: `status`/`cleanup --config SWEEP_TOML --sweep-id ID`,
with the real Terraform CLI and probe agents of the local provider."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tickpath.sweep.cleanup import local_agents
from tickpath.sweep.runner import sweep_status

from .conftest import SimZone
from .test_local_e2e import _assert_nothing_left, _env, _start_and_wait_for_agents, tickpath

pytestmark = pytest.mark.integration


def test_kill9_then_cleanup_with_the_sweep_file_leaves_nothing(
    tmp_path: Path, sim_zones: dict[str, SimZone], terraform_bin: str
) -> None:
    """After kill -9, `status --config FILE` shows the sweep live and `cleanup --config FILE` removes it all,
    run from another directory (the file's state_dir, not the working directory, locates the sweep)."""
    orch, sweep_dir = _start_and_wait_for_agents(tmp_path, sim_zones)
    orch.kill()
    orch.communicate(timeout=30)
    assert len(local_agents(sweep_dir.name)) == 2
    config = str(tmp_path / "sweep.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = subprocess.run(
        tickpath("sweep", "status", "--config", config, "--sweep-id", sweep_dir.name, "--json"),
        cwd=elsewhere,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["live"] is True
    clean = subprocess.run(
        tickpath("sweep", "cleanup", "--config", config, "--sweep-id", sweep_dir.name),
        cwd=elsewhere,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert clean.returncode == 0, clean.stderr
    _assert_nothing_left(sweep_dir)
    assert sweep_status(tmp_path / "state", sweep_dir.name)["live"] is False
