"""Zone latency: the injected one-way delay is measured back by a client, and never reorders frames."""

from __future__ import annotations

import asyncio
import statistics

import aiohttp

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.sim import LatencyProfile, Simulator, ZoneConfig
from tickpath.sim.latency import DelaySampler

from .helpers import recv_json, small_config, ws_connect


async def _frame_delays(clock: VirtualClock, url: str, n: int) -> list[float]:
    ws = await ws_connect(url)
    try:
        out = []
        for _ in range(n):
            data = await recv_json(ws)
            out.append((clock.wall_ns() - data["E"] * 1_000_000) / 1e6)
        return out
    finally:
        await ws.close()


@virtual_time
async def test_zone_delay_measured_on_frames_and_rest(virtual_clock: VirtualClock) -> None:
    """Zone a (40 ms) vs zone b (0 ms), in virtual time: frames arrive 40 ms later (to the exchange's
    millisecond timestamps), REST round trips on a kept-alive connection take exactly 80 ms more."""
    zones = (ZoneConfig("a", LatencyProfile(delay_ms=40.0)), ZoneConfig("b"))
    loop = asyncio.get_running_loop()
    cfg = small_config(venues=("futures",), rate=400.0, zones=zones)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        a, b = sim.endpoint("futures", "a"), sim.endpoint("futures", "b")
        delays = {ep.zone: await _frame_delays(virtual_clock, ep.raw_url("btcusdt@depth@0ms"), 60) for ep in (a, b)}
        assert all(40.0 <= d < 41.0 for d in delays["a"]), delays["a"]  # E is truncated to the millisecond
        assert all(0.0 <= d < 1.0 for d in delays["b"]), delays["b"]
        rtts: dict[str, list[float]] = {"a": [], "b": []}
        async with aiohttp.ClientSession() as http:
            for ep in (a, b):
                # The first request also opens the connection (a handshake through the zone delay):
                # round trips are timed on the kept-alive connection that follows.
                async with http.get(ep.rest_url + "/fapi/v1/time") as r:
                    await r.read()
                for _ in range(7):
                    t0 = loop.time()
                    async with http.get(ep.rest_url + "/fapi/v1/time") as r:
                        await r.read()
                    rtts[ep.zone].append(round((loop.time() - t0) * 1000, 6))
    assert rtts == {"a": [80.0] * 7, "b": [0.0] * 7}


async def test_jitter_and_spikes_keep_frame_order() -> None:
    """Heavy jitter and spikes delay frames but a connection still receives them in update-id order."""
    zones = (ZoneConfig("j", LatencyProfile(delay_ms=2.0, jitter_ms=5.0, spike_prob=0.1, spike_ms=20.0)),)
    async with Simulator(small_config(venues=("futures",), rate=500.0, zones=zones)) as sim:
        ws = await ws_connect(sim.endpoint("futures", "j").raw_url("btcusdt@depth@0ms"))
        try:
            ids = [(await recv_json(ws))["u"] for _ in range(150)]
        finally:
            await ws.close()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ids[-1] - ids[0] == len(ids) - 1  # nothing lost either


def test_delay_sampler_distribution_is_seeded() -> None:
    """The sampler is deterministic for a seed; its mean is delay + jitter mean + spike share."""
    prof = LatencyProfile(delay_ms=10.0, jitter_ms=2.0, spike_prob=0.05, spike_ms=100.0)
    a = [DelaySampler(prof, "s").sample_s() for _ in range(3)]
    s1, s2 = DelaySampler(prof, "seed"), DelaySampler(prof, "seed")
    xs = [s1.sample_s() for _ in range(20000)]
    assert xs[:50] == [s2.sample_s() for _ in range(50)]
    assert a[0] == a[1] == a[2]
    assert min(xs) >= 0.010
    mean_ms = statistics.fmean(xs) * 1000
    assert 10.0 + 2.0 + 5.0 - 0.6 <= mean_ms <= 10.0 + 2.0 + 5.0 + 0.6
    assert abs(sum(x > 0.100 for x in xs) / len(xs) - 0.05) < 0.01
