"""Shared fixtures: where the real Binance captures live, and skips with a reason when absent; no
collector pauses inside a test; and the "tickpath" logger as each test found it."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickpath.clock import VirtualClock

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    """Directory of the real Binance captures (../shared/data/binance), or skip."""
    if not (SHARED_DATA / "usdm_futures.ws.txt").exists():
        pytest.skip(f"real Binance captures not found at {SHARED_DATA} (CI keeps ../shared beside the clone)")
    return SHARED_DATA


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """The clock of a test run in virtual time (see tests/virtual_time.py)."""
    return VirtualClock()


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


@pytest.fixture(autouse=True)
def _tickpath_logging_restored() -> Iterator[None]:
    """A test that runs the CLI's ``main`` leaves ``logs.configure()``'s state behind: a handler on
    that test's captured stderr, closed when it ends, and propagation off. Later tests then lost
    their records to "Logging error ... I/O operation on closed file" and ``caplog`` saw nothing."""
    logger = logging.getLogger("tickpath")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
