"""Service configuration: option defaults from a TOML file and the environment, CLI wins."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tickpath.cli.defaults import apply_defaults
from tickpath.cli.main import main
from tickpath.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--venue", required=True, choices=("spot", "futures"))
    p.add_argument("--sink", action="append")
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--status", action=argparse.BooleanOptionalAction, default=None)
    return p


def test_file_then_env_then_cli_precedence() -> None:
    """The environment overrides the file; the command line overrides both; required is satisfied."""
    p = _parser()
    apply_defaults(
        p,
        "feed",
        {"venue": "spot", "metrics-port": 9000, "sink": ["duckdb:a"]},
        {"TICKPATH_FEED_METRICS_PORT": "9464", "TICKPATH_FEED_STATUS": "no"},
    )
    args = p.parse_args([])
    assert (args.venue, args.metrics_port, args.sink, args.status) == ("spot", 9464, ["duckdb:a"], False)
    assert p.parse_args(["--venue", "futures"]).venue == "futures"


def test_bad_values_are_clear_errors() -> None:
    """A value outside the choices, a bad number or an unknown key names where it came from."""
    with pytest.raises(ConfigError, match="TICKPATH_FEED_VENUE"):
        apply_defaults(_parser(), "feed", {}, {"TICKPATH_FEED_VENUE": "options"})
    with pytest.raises(ConfigError, match="metrics-port"):
        apply_defaults(_parser(), "feed", {"metrics-port": "x"}, {})
    with pytest.raises(ConfigError, match="unknown option"):
        apply_defaults(_parser(), "feed", {"symbol": "BTCUSDT"}, {})


def test_main_reads_config_file_and_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tickpath --config FILE report` takes defaults from [report]; a broken file exits 2 without a traceback."""
    cfg = tmp_path / "t.toml"
    cfg.write_text('[report]\noutput = "x.html"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[report\n")
    assert main(["--config", str(bad), "report", str(tmp_path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    monkeypatch.setenv("TICKPATH_REPORT_JSON", "maybe")
    assert main(["--config", str(cfg), "report", str(tmp_path)]) == 2
    assert "TICKPATH_REPORT_JSON" in capsys.readouterr().err
