"""Unit tests of run configuration validation: bad input is a ConfigError with a clear message."""

from __future__ import annotations

import pytest

from tickpath.busbench.config import BenchConfig, MatrixConfig
from tickpath.errors import ConfigError

A, B = "nats://127.0.0.1:4222", "nats://127.0.0.1:4223"


def test_counts_follow_rate_duration_and_warmup() -> None:
    """Measured = rate x duration (or count); warm-up = rate x warm-up seconds; total is both."""
    c = BenchConfig(A, B, rate=2000, duration=1.5, warmup=0.5)
    assert (c.measured, c.warmup_count, c.total) == (3000, 1000, 4000)
    assert BenchConfig(A, B, count=7, warmup=0).total == 7


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"size": 15}, "at least 16"),
        ({"rate": 0}, "rate"),
        ({"count": 0}, "count"),
        ({"warmup": -1}, "warm-up"),
        ({"rate": 1e9, "duration": 100}, "50 million"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], fragment: str) -> None:
    """Too-small payloads, non-positive rates or counts, negative warm-up, absurd totals."""
    with pytest.raises(ConfigError, match=fragment):
        BenchConfig(A, B, **kwargs)  # type: ignore[arg-type]


def test_matrix_refuses_small_sizes() -> None:
    """A matrix checks every size, not only the base one."""
    with pytest.raises(ConfigError):
        MatrixConfig(BenchConfig(A, B), sizes=(256, 8))


@pytest.mark.parametrize("command", ["local", "run"])
def test_duration_and_count_together_are_refused(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--duration and --count both given is exit 2 naming both (one used to be dropped silently)."""
    from tickpath.cli.main import main

    extra = ["--pub", "nats://a:4222", "--sub", "nats://b:4222"] if command == "run" else []
    with pytest.raises(SystemExit) as info:
        main(["busbench", command, *extra, "--duration", "1", "--count", "100"])
    assert info.value.code == 2
    assert "--count: not allowed with argument --duration" in capsys.readouterr().err
