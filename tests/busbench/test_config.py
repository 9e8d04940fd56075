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


@pytest.mark.parametrize("kwargs, fragment", [
    ({"size": 15}, "at least 16"),
    ({"rate": 0}, "rate"),
    ({"count": 0}, "count"),
    ({"warmup": -1}, "warm-up"),
    ({"rate": 1e9, "duration": 100}, "50 million"),
])
def test_bad_settings_are_refused(kwargs: dict[str, float], fragment: str) -> None:
    """Too-small payloads, non-positive rates or counts, negative warm-up, absurd totals."""
    with pytest.raises(ConfigError, match=fragment):
        BenchConfig(A, B, **kwargs)  # type: ignore[arg-type]


def test_matrix_refuses_small_sizes() -> None:
    """A matrix checks every size, not only the base one."""
    with pytest.raises(ConfigError):
        MatrixConfig(BenchConfig(A, B), sizes=(256, 8))
