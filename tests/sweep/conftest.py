"""Fixtures for sweep tests: the simulator serving zones of known delay, in a background thread."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

# One-way delays (ms) of the simulator zones the end-to-end sweeps measure; far apart, so the
# ranking cannot be flipped by scheduling noise on a shared 2-core machine.
ZONE_DELAYS_MS = {"fast": 1.0, "mid": 12.0, "slow": 25.0}


@dataclass(frozen=True)
class SimZone:
    rest_url: str
    ws_url: str
    delay_ms: float


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    """The real Terraform CLI, or skip with the reason."""
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform CLI not installed: the local provider runs the real Terraform")
    return path


@pytest.fixture(scope="module")
def sim_zones() -> Iterator[dict[str, SimZone]]:
    """A simulator (futures, BTCUSDT) with one listener per zone of ZONE_DELAYS_MS, on free ports."""
    try:
        from tickpath.sim import LatencyProfile, SimConfig, Simulator, ZoneConfig
    except ImportError as exc:
        pytest.skip(f"tickpath.sim not available: {exc}")
    ready = threading.Event()
    zones: dict[str, SimZone] = {}
    stop: list[asyncio.Event] = []
    errors: list[BaseException] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        cfg = SimConfig(
            venues=("futures",),
            symbols=("BTCUSDT",),
            rate=20.0,
            zones=tuple(ZoneConfig(n, LatencyProfile(delay_ms=d)) for n, d in ZONE_DELAYS_MS.items()),
        )
        async with Simulator(cfg) as sim:
            for name, delay in ZONE_DELAYS_MS.items():
                ep = sim.endpoint("futures", zone=name)
                zones[name] = SimZone(ep.rest_url, ep.ws_url, delay)
            stop.append(asyncio.Event())
            ready.set()
            await stop[0].wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="sim", daemon=True)
    thread.start()
    ready.wait(30)
    if errors or not zones:
        pytest.fail(f"simulator did not start: {errors}")
    yield zones
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(30)


@pytest.fixture(autouse=True)
def _fresh_boto3_default_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's module-level default session resolves credentials once and keeps them: a test that ran
    the sweep against moto with dummy credentials in the environment made a later "no AWS
    credentials" test find them. Each test starts without one (and the old one comes back after)."""
    try:
        import boto3
    except ImportError:
        return
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
