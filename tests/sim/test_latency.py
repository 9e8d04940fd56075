"""Zone latency: the injected one-way delay is measured back by a client, and never reorders frames."""

from __future__ import annotations

import statistics
import time

import aiohttp

from tickpath.sim import LatencyProfile, Simulator, ZoneConfig
from tickpath.sim.latency import DelaySampler

from .helpers import recv_json, small_config, ws_connect


async def _frame_delays(url: str, n: int) -> list[float]:
    ws = await ws_connect(url)
    try:
        out = []
        for _ in range(n):
            data = await recv_json(ws)
            out.append(time.time() * 1000 - data["E"])
        return out
    finally:
        await ws.close()


async def test_zone_delay_measured_on_frames_and_rest() -> None:
    """Zone a (40 ms) vs zone b (0 ms): frames arrive ~40 ms later, REST round trips ~80 ms longer."""
    zones = (ZoneConfig("a", LatencyProfile(delay_ms=40.0)), ZoneConfig("b"))
    async with Simulator(small_config(venues=("futures",), rate=400.0, zones=zones)) as sim:
        a, b = sim.endpoint("futures", "a"), sim.endpoint("futures", "b")
        # A stall of the host only ever adds delay, and one longer than a window (60 frames at 400/s:
        # 150 ms) once lifted zone b's median to 216 ms in CI; so each zone is measured in three
        # alternating windows and judged on its least-disturbed one.
        med: dict[str, list[float]] = {"a": [], "b": []}
        for _ in range(3):
            for ep in (a, b):
                med[ep.zone].append(statistics.median(await _frame_delays(ep.raw_url("btcusdt@depth@0ms"), 60)))
        da, db = min(med["a"]), min(med["b"])
        assert 32.0 <= da - db <= 50.0, med
        rtts: dict[str, list[float]] = {"a": [], "b": []}
        async with aiohttp.ClientSession() as http:
            for ep in (a, b):
                # The first request also opens the connection (a handshake through the zone delay):
                # round trips are timed on the kept-alive connection that follows.
                async with http.get(ep.rest_url + "/fapi/v1/time") as r:
                    await r.read()
                for _ in range(7):
                    t0 = time.perf_counter()
                    async with http.get(ep.rest_url + "/fapi/v1/time") as r:
                        await r.read()
                    rtts[ep.zone].append((time.perf_counter() - t0) * 1000)
        # The least-disturbed round trip of each zone, as for the frames: a host stall only adds
        # (a clean-clone CI run once had a median difference of 139.6 ms).
        diff = min(rtts["a"]) - min(rtts["b"])
        assert 72.0 <= diff <= 110.0, rtts


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
