"""Shared fixtures: where the real Binance captures live, and skips with a reason when absent; and
no collector pauses inside a test."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    """Directory of the real Binance captures (../shared/data/binance), or skip."""
    if not (SHARED_DATA / "usdm_futures.ws.txt").exists():
        pytest.skip(f"real Binance captures not found at {SHARED_DATA} (CI keeps ../shared beside the clone)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _collector_off_inside_each_test() -> Iterator[None]:
    """The cyclic collector waits until a test ends. Late in the suite the process holds everything
    the earlier tests left, and a full collection then takes 260-440 ms (measured over a whole run:
    48 of them); inside a test that measures latency in this process (the simulator's zones, the
    probe, the feed), such a pause is read as the system's latency. Between tests it costs nothing
    that is measured. (Code that manages the collector itself, like busbench's client, still does.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
