"""Defects from the acceptance tour of `tickpath sweep`: the actions' own --config, option defaults
from the environment for actions, simulator zones checked up front, per-method probe duration, AWS
checks in plan, CSV column names and examples in every action's help."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tickpath.cli.main import main
from tickpath.probe.config import ProbeConfig
from tickpath.sweep.config import load_config, parse_config
from tickpath.sweep.orchestrator import CandidateState, SweepOutcome
from tickpath.sweep.plan import candidates, probe_argv
from tickpath.sweep.provision import write_manifest
from tickpath.sweep.results import write_results

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _local_file(tmp_path: Path, simulator: str = "fast:1ms;mid:5ms", state: str = "state") -> Path:
    """A local sweep file whose state_dir is ``tmp_path/<state>``."""
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        f'[sweep]\nname = "acc"\nprovider = "local"\nttl_minutes = 5\nstate_dir = "{state}"\n'
        f'results_dir = "results"\n[probe]\nmethods = ["tcp", "ws"]\nduration_s = 1\n'
        f'[ranking]\nmetric = "ws.p50"\n[local]\nsimulator = "{simulator}"\n'
    )
    return cfg


def _record(cfg_path: Path, sweep_id: str) -> Path:
    """Record a sweep on disk the way `run` does before its first apply."""
    return write_manifest(load_config(cfg_path), sweep_id, terraform="/bin/true", config_path=str(cfg_path))


# --- item 2: `status --config FILE` / `cleanup --config FILE` --------------------------------------


def test_status_config_is_the_sweep_file_not_the_global_defaults_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sweep status --config SWEEP_TOML --sweep-id ID` finds the sweep in that file's state_dir (was: exit 2,
    "config file [sweep]: unknown option(s)")."""
    cfg = _local_file(tmp_path)
    _record(cfg, "acc-status-0001")
    monkeypatch.chdir(tmp_path / "..")  # the file, not the working directory, says where the state is
    assert main(["sweep", "status", "--config", str(cfg), "--sweep-id", "acc-status-0001", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sweep_id"] == "acc-status-0001" and doc["live"] is False
    assert main(["sweep", "status", "--config", str(EXAMPLES / "sweep-aws.toml"), "--json"]) == 0
    assert "unknown option" not in capsys.readouterr().err


def test_cleanup_config_form_works_on_a_recorded_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep cleanup --config SWEEP_TOML --sweep-id ID` (the documented recovery) reaches the sweep."""
    cfg = _local_file(tmp_path)
    _record(cfg, "acc-cleanup-0001")
    assert main(["sweep", "cleanup", "--config", str(cfg), "--sweep-id", "acc-cleanup-0001", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["sweep_id"] == "acc-cleanup-0001", out.err


def test_global_config_before_the_command_still_sets_defaults_and_rejects_unknown_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tickpath --config DEFAULTS sweep status` reads [sweep]/[sweep.status]; unknown keys are still an error."""
    cfg = _local_file(tmp_path)
    _record(cfg, "acc-global-0001")
    defaults = tmp_path / "tickpath.toml"
    defaults.write_text(f'[sweep]\nstate-dir = "/nonexistent"\n[sweep.status]\nstate_dir = "{tmp_path / "state"}"\n')
    assert main(["--config", str(defaults), "sweep", "status", "--json"]) == 0
    assert [d["sweep_id"] for d in json.loads(capsys.readouterr().out)] == ["acc-global-0001"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nbogus = 1\n")
    assert main(["--config", str(bad), "sweep", "status"]) == 2
    assert "unknown option(s) bogus" in capsys.readouterr().err


# --- item 19: environment variables for an action's options ----------------------------------------


@pytest.mark.parametrize("var", ["TICKPATH_SWEEP_STATE_DIR", "TICKPATH_SWEEP_STATUS_STATE_DIR"])
def test_status_reads_state_dir_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    """$TICKPATH_SWEEP_STATE_DIR and $TICKPATH_SWEEP_STATUS_STATE_DIR set `sweep status --state-dir`."""
    cfg = _local_file(tmp_path)
    _record(cfg, "acc-env-0001")
    monkeypatch.chdir(tmp_path / "..")
    monkeypatch.setenv(var, str(tmp_path / "state"))
    assert main(["sweep", "status", "--json"]) == 0
    assert [d["sweep_id"] for d in json.loads(capsys.readouterr().out)] == ["acc-env-0001"]


def test_action_variable_wins_over_command_variable_and_command_line_over_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TICKPATH_SWEEP_STATUS_* beats TICKPATH_SWEEP_*; --state-dir beats both."""
    cfg = _local_file(tmp_path)
    _record(cfg, "acc-prec-0001")
    monkeypatch.setenv("TICKPATH_SWEEP_STATE_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("TICKPATH_SWEEP_STATUS_STATE_DIR", str(tmp_path / "state"))
    assert main(["sweep", "status", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert main(["sweep", "status", "--json", "--state-dir", str(tmp_path / "other")]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cleanup_sweep_id_can_come_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A required option (cleanup --sweep-id) set by $TICKPATH_SWEEP_CLEANUP_SWEEP_ID is no longer missing."""
    cfg = _local_file(tmp_path)
    _record(cfg, "acc-envid-0001")
    monkeypatch.setenv("TICKPATH_SWEEP_CLEANUP_SWEEP_ID", "acc-envid-0001")
    assert main(["sweep", "cleanup", "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sweep_id"] == "acc-envid-0001"


# --- item 11: simulator zones checked by the simulator's parser -----------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fast:-1ms;mid:4ms", "bad zone 'fast:-1ms'"),
        ("Fast:4ms;mid:4ms", "must be lower-case"),
        ("a:1ms;a:2ms", "same zone twice"),
    ],
)
def test_plan_and_run_refuse_a_zone_the_simulator_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    """A [local] simulator spec `tickpath sim` would reject: plan and run exit 2 with its message, record nothing."""
    cfg = _local_file(tmp_path, simulator=spec)
    assert main(["sweep", "plan", str(cfg)]) == 2
    assert message in capsys.readouterr().err
    assert main(["sweep", "run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Expecting value" not in err
    assert not (tmp_path / "state").exists()


# --- item 12: duration_s is per method --------------------------------------------------------------


def test_duration_s_is_per_method_in_what_the_probe_is_told() -> None:
    """The probe gets duration_s x timed methods, so each method samples for duration_s (rate x duration_s samples)."""
    raw = {
        "sweep": {"name": "d", "provider": "local", "ttl_minutes": 5},
        "probe": {"methods": ["tcp", "rest", "ws", "path"], "duration_s": 3, "rate": 20},
        "ranking": {"metric": "ws.p50"},
        "local": {"zones": [{"id": "a", "rest_url": "http://127.0.0.1:1", "ws_url": "ws://127.0.0.1:1"}]},
    }
    cfg = parse_config(raw)
    argv = probe_argv(cfg, candidates(cfg)[0])
    total = float(argv[argv.index("--duration") + 1])
    assert total == 9.0  # path is not a timed method
    # The probe's own reading of that total: 3 s and 60 samples for each method.
    pc = ProbeConfig(
        venue="futures",
        methods=cfg.probe.methods,
        duration=total,
        rate=20.0,
        rest_url="http://127.0.0.1:1",
        ws_url="ws://127.0.0.1:1",
        imds=False,
    )
    assert pc.method_seconds == 3.0 and pc.sample_count == 60
    assert cfg.timeout_s == total + 30.0


def test_ttl_check_counts_the_whole_probe_time() -> None:
    """A TTL shorter than duration_s x methods is refused even when one method's duration fits."""
    raw = {
        "sweep": {"name": "d", "provider": "local", "ttl_minutes": 1},
        "probe": {"methods": ["tcp", "ws"], "duration_s": 40},
        "local": {"zones": [{"id": "a", "rest_url": "http://127.0.0.1:1", "ws_url": "ws://127.0.0.1:1"}]},
    }
    from tickpath.errors import ConfigError

    with pytest.raises(ConfigError, match="80 s in all"):
        parse_config(raw)


def test_shipped_local_example_gives_each_method_at_least_100_samples() -> None:
    """examples/sweep-local.toml: every method gets >= 100 samples (was 20, and picked the wrong winner once)."""
    cfg = load_config(EXAMPLES / "sweep-local.toml")
    argv = probe_argv(cfg, candidates(cfg)[0])
    pc = ProbeConfig(
        venue="futures",
        methods=cfg.probe.methods,
        rate=cfg.probe.rate,
        duration=float(argv[argv.index("--duration") + 1]),
        rest_url="http://127.0.0.1:1",
        ws_url="ws://127.0.0.1:1",
        imds=False,
    )
    assert pc.sample_count >= 100


# --- item 13: plan checks AWS ------------------------------------------------------------------------


def _no_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_plan_without_credentials_says_so_and_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline with no AWS credentials, `sweep plan` still shows the plan but exits 2 naming the missing credentials."""
    _no_aws_credentials(monkeypatch)
    assert main(["sweep", "plan", str(EXAMPLES / "sweep-aws.toml"), "--json"]) == 2
    out = capsys.readouterr()
    plan = json.loads(out.out)
    assert len(plan["candidates"]) == 6 and plan["aws_checks"].startswith("failed: no AWS credentials")
    assert "no AWS credentials" in out.err


def test_plan_skip_preflight_says_nothing_was_verified(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan --skip-preflight` exits 0 without AWS and states that credentials etc. were not verified."""
    _no_aws_credentials(monkeypatch)
    assert main(["sweep", "plan", str(EXAMPLES / "sweep-aws.toml"), "--skip-preflight"]) == 0
    assert "NOT verified" in " ".join(capsys.readouterr().out.split())


# --- item 14: CSV column names -----------------------------------------------------------------------


def test_csv_names_loss_ratios_without_a_unit(tmp_path: Path) -> None:
    """latency_results.csv: latencies are `<figure>_us`, loss ratios are `<method>.loss_ratio` with the ratio."""
    cfg = load_config(_local_file(tmp_path))
    cand = candidates(cfg)[0]
    state = CandidateState(cand, status="kept", figures={"ws.p50": 2100.5, "ws.loss_ratio": 0.0125}, score=2100.5)
    outcome = SweepOutcome("acc-csv-0001", {cand.name: state}, [cand.name], [cand.name], 0, 10)
    out = write_results(cfg, outcome, tmp_path / "res")
    with (out / "latency_results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    assert "ws.loss_ratio" in header and not [h for h in header if h.endswith("ratio_us")]
    assert rows[0]["ws.loss_ratio"] == "0.0125" and rows[0]["ws.p50_us"] == "2100.500"


# --- item 20: examples in every action's help --------------------------------------------------------


@pytest.mark.parametrize("action", ["plan", "run", "status", "cleanup"])
def test_every_action_help_has_examples(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`tickpath sweep ACTION --help` ends with runnable examples of that action."""
    with pytest.raises(SystemExit) as exc:
        main(["sweep", action, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"tickpath sweep {action} " in out
