"""The `tickpath sweep` command line: help, plan, and bad input mapped to exit codes before anything is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickpath.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_help_teaches_the_four_actions(capsys: pytest.CaptureFixture[str]) -> None:
    """`tickpath sweep --help` names plan, run, status and cleanup and what Ctrl-C does."""
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("plan", "run", "status", "cleanup", "Ctrl-C"):
        assert word in out


def test_plan_json_lists_candidates_cost_and_resources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`sweep plan --json` on the AWS example shows 6 candidates, the cost bound and creates no state."""
    assert main(["sweep", "plan", str(EXAMPLES / "sweep-aws.toml"), "--json", "--skip-preflight"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["candidates"]) == 6
    assert plan["expected_cost_usd"] == pytest.approx(3 * (0.2268 + 0.1785) * 0.75, rel=1e-3)
    assert any("IMDSv2" in r for r in plan["resources"]["per_candidate"])
    assert plan["candidates"][0]["probe"][:2] == ["tickpath", "probe"]


def test_plan_over_budget_exits_nonzero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A plan above max_cost_usd says so and exits 2."""
    text = (EXAMPLES / "sweep-aws.toml").read_text().replace("max_cost_usd = 5.0", "max_cost_usd = 0.5")
    cfg = tmp_path / "s.toml"
    cfg.write_text(text)
    assert main(["sweep", "plan", str(cfg), "--skip-preflight"]) == 2
    assert "OVER BUDGET" in capsys.readouterr().out


def test_bad_config_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An invalid config gives exit 2 and a one-line message naming the key, never a traceback."""
    cfg = tmp_path / "s.toml"
    cfg.write_text((EXAMPLES / "sweep-aws.toml").read_text().replace('"apne1-az1"', '"ap-northeast-1a"'))
    assert main(["sweep", "run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "sweep.az_ids" in err and "Traceback" not in err


def test_missing_terraform_fails_before_creating_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without terraform on PATH, run exits 3 with install advice and writes no sweep state."""
    text = (EXAMPLES / "sweep-local.toml").read_text().replace('"../.tickpath/sweeps"', '"state"')
    cfg = tmp_path / "s.toml"
    cfg.write_text(text)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert main(["sweep", "run", str(cfg)]) == 3
    assert "terraform is not installed" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_cleanup_of_unknown_sweep_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """cleanup --sweep-id for a sweep that is not on disk exits 2 and says where it looked."""
    assert main(["sweep", "cleanup", "--sweep-id", "nope-2611221200-abcd", "--state-dir", str(tmp_path)]) == 2
    assert "no sweep at" in capsys.readouterr().err
