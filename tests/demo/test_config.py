"""The demo's configuration, results directory rules, teardown helper and CLI surface (no servers)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tickpath.demo import DemoConfig
from tickpath.demo.steps import require_dir_free, shielded, sweep_document
from tickpath.errors import ConfigError
from tickpath.sim import LatencyProfile, ZoneConfig
from tickpath.sweep import parse_config

REPO = Path(__file__).resolve().parents[2]


def test_fastest_zone_is_the_lowest_typical_delay() -> None:
    """The zone the sweep must name is the one with the lowest delay plus mean jitter, spikes aside."""
    cfg = DemoConfig(
        zones=(
            ZoneConfig("a", LatencyProfile(3.0, 0.1)),
            ZoneConfig("b", LatencyProfile(2.0, 2.0)),
            ZoneConfig("c", LatencyProfile(2.5, 0.2, spike_prob=0.5, spike_ms=50.0)),
        )
    )
    assert cfg.fastest_zone == "c"
    assert DemoConfig().fastest_zone == "frankfurt"


@pytest.mark.parametrize(
    "bad",
    [
        {"feed_s": 0},
        {"bus_s": -1},
        {"sweep_probe_s": 0},
        {"bus_warmup_s": -0.5},
        {"venues": ("spot",)},
        {"sweep_methods": ("tcp",)},
        {"zones": (ZoneConfig("solo"),)},
    ],
)
def test_bad_settings_are_config_errors(bad: dict[str, object]) -> None:
    """Non-positive durations, a single zone, no futures venue or no ws method are refused up front."""
    with pytest.raises(ConfigError):
        DemoConfig(**bad)  # type: ignore[arg-type]


def test_quick_is_short_and_keeps_overrides(tmp_path: Path) -> None:
    """--quick shrinks every step to seconds and keeps what the caller set."""
    q = DemoConfig.quick(results_dir=tmp_path, nats=False)
    full = DemoConfig()
    assert q.results_dir == tmp_path and q.nats is False
    assert sum(q.expected_s.values()) < sum(full.expected_s.values()) / 2
    assert q.feed_s < full.feed_s and q.sweep_probe_s < full.sweep_probe_s


def test_results_dir_must_be_new_or_empty(tmp_path: Path) -> None:
    """A results directory holding another run's files is refused; a new or empty one is accepted."""
    require_dir_free(tmp_path / "new")
    require_dir_free(tmp_path)
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(ConfigError, match="not empty"):
        require_dir_free(tmp_path)


def test_sweep_plan_is_a_valid_local_sweep(tmp_path: Path) -> None:
    """The sweep document the demo builds passes the sweep's own validation, one candidate per zone."""

    class FakeSim:
        def endpoint(self, venue: str, zone: str) -> object:
            port = {"tokyo": 1001, "frankfurt": 1002, "virginia": 1003}[zone]
            return type("Ep", (), {"rest_url": f"http://127.0.0.1:{port}", "ws_url": f"ws://127.0.0.1:{port}"})

    cfg = DemoConfig.quick(results_dir=tmp_path)
    scfg = parse_config(sweep_document(cfg, FakeSim(), tmp_path), base_dir=tmp_path)  # type: ignore[arg-type]
    assert scfg.provider == "local"
    assert scfg.az_ids == ("tokyo", "frankfurt", "virginia")
    assert scfg.metric.text == cfg.sweep_metric
    assert scfg.state_dir == tmp_path / ".state"
    assert scfg.timeout_s > len(cfg.sweep_methods) * cfg.sweep_probe_s


async def test_shielded_teardown_finishes_then_the_cancel_goes_on() -> None:
    """A cancel during shielded teardown lets the teardown finish, then still cancels the caller."""
    finished: list[str] = []
    gate = asyncio.Event()

    async def teardown() -> None:
        await gate.wait()
        finished.append("done")

    async def caller() -> None:
        await shielded(teardown())
        finished.append("after")  # must never run: the caller was cancelled

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    assert not task.done()  # still waiting for the teardown
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["done"]


def _tickpath(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickpath.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
    )


def test_help_teaches_the_steps(tmp_path: Path) -> None:
    """`tickpath demo --help` lists every step, the flags and the exit codes."""
    out = _tickpath("demo", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for word in ("sweep", "feed", "dq", "busbench", "report", "--quick", "--no-nats", "--json", "--results", "Ctrl-C"):
        assert word in out.stdout


@pytest.mark.integration  # runs `python -m tickpath.cli.main` as a process of its own
def test_cli_refuses_a_non_empty_results_dir_without_traceback(tmp_path: Path) -> None:
    """Bad input is one clear line and exit code 2, and the other run's files are left alone."""
    (tmp_path / "keep.txt").write_text("another run")
    out = _tickpath("demo", "--quick", "--results", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "not empty" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "keep.txt").read_text() == "another run"
