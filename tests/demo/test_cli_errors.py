"""`tickpath demo` input errors: a --terraform path that is not a program, and option names in messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tickpath.cli.main import main
from tickpath.demo import DemoConfig
from tickpath.demo.run import terraform_available
from tickpath.errors import ToolMissingError


@pytest.mark.parametrize("kind", ["missing", "not-executable", "directory"])
def test_bad_terraform_path_is_exit_3_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """`demo --terraform PATH` with no executable at PATH exits 3 naming it (no silent in-process fallback)."""
    path = tmp_path / "terraform"
    if kind == "not-executable":
        path.write_text("#!/bin/sh\n")
    elif kind == "directory":
        path.mkdir()
    results = tmp_path / "out"
    assert main(["demo", "--quick", "--no-nats", "--terraform", str(path), "--results", str(results)]) == 3
    err = capsys.readouterr().err
    assert f"--terraform {path}" in err and "not installed or not on PATH" not in err
    assert not results.exists()


def test_terraform_missing_from_path_still_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --terraform and none on PATH, the demo falls back to in-process probes and says why."""
    monkeypatch.setenv("PATH", str(tmp_path))
    why = terraform_available(DemoConfig.quick(results_dir=tmp_path / "r"))
    assert why is not None and "not on PATH" in why


def test_given_executable_terraform_is_accepted(tmp_path: Path) -> None:
    """An executable file given as --terraform is used as is (no fallback, no error)."""
    exe = tmp_path / "terraform"
    exe.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(exe, 0o755)
    assert terraform_available(DemoConfig.quick(terraform=str(exe), results_dir=tmp_path / "r")) is None
    with pytest.raises(ToolMissingError, match="does not exist"):
        terraform_available(DemoConfig.quick(terraform=str(tmp_path / "nope"), results_dir=tmp_path / "r"))


def test_non_positive_feed_seconds_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --feed-seconds 0` is exit 2 with a message naming --feed-seconds, not the internal feed_s."""
    assert main(["demo", "--quick", "--feed-seconds", "0", "--results", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--feed-seconds must be positive" in err and "feed_s" not in err
