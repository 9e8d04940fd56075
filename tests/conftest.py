"""Shared fixtures: where the real Binance captures live, and skips with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    """Directory of the real Binance captures (../shared/data/binance), or skip."""
    if not (SHARED_DATA / "usdm_futures.ws.txt").exists():
        pytest.skip(f"real Binance captures not found at {SHARED_DATA} (CI keeps ../shared beside the clone)")
    return SHARED_DATA
