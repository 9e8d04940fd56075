"""A bad ``--wheel`` is refused before an AWS sweep records anything: no state directory, no
``sweep.json``, so ``sweep status``/``cleanup`` never list a sweep that could not have started."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tickpath.errors import ConfigError
from tickpath.sweep.config import parse_config
from tickpath.sweep.runner import run_sweep

from .test_wheel import _aws_raw, _fake_wheel


@pytest.mark.parametrize("kind", ["missing", "not_a_zip", "wrong_name"])
async def test_a_bad_wheel_leaves_no_sweep_record(tmp_path: Path, kind: str) -> None:
    wheel = {
        "missing": tmp_path / "tickpath-0.1.0-py3-none-any.whl",
        "not_a_zip": tmp_path / "tickpath-0.1.0-py3-none-any.whl",
        "wrong_name": _fake_wheel(tmp_path, "other-0.1.0-py3-none-any.whl"),
    }[kind]
    if kind == "not_a_zip":
        wheel.write_bytes(b"truncated download")
    state = tmp_path / "state"
    cfg = dataclasses.replace(parse_config(_aws_raw()), wheel=wheel, state_dir=state)
    with pytest.raises(ConfigError, match="not a tickpath wheel"):
        await run_sweep(cfg, preflight=False)
    assert not state.exists() or not any(state.rglob("sweep.json"))


async def test_a_good_wheel_passes_the_early_check(tmp_path: Path) -> None:
    """The same call with a real-looking wheel gets past the check (and stops later, at the
    cost guard or Terraform, which this test does not reach for): the check is not a blanket refusal."""
    from tickpath.sweep.wheel import check_wheel_file

    good = _fake_wheel(tmp_path)
    assert check_wheel_file(good) == good
