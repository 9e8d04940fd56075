"""The probe against simulator zones with known delay, jitter, spikes and clock offset, in virtual time:
the zones' delays are the only time that passes, so a round trip is exactly two one-way delays."""

from __future__ import annotations

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.probe import ProbeConfig, run_probe
from tickpath.sim import LatencyProfile, SimConfig, Simulator, ZoneConfig

MS = 1_000_000


def _sim(
    delay_ms: float, *, jitter_ms: float = 0.0, spike_prob: float = 0.0, spike_ms: float = 0.0, offset_ms: float = 0.0
) -> SimConfig:
    profile = LatencyProfile(delay_ms=delay_ms, jitter_ms=jitter_ms, spike_prob=spike_prob, spike_ms=spike_ms)
    return SimConfig(
        venues=("futures",),
        symbols=("BTCUSDT",),
        seed=7,
        rate=50.0,
        zones=(ZoneConfig("z", profile),),
        clock_offset_ms=offset_ms,
    )


def _probe(ep: object, methods: tuple[str, ...], **kw: object) -> ProbeConfig:
    base: dict[str, object] = dict(
        venue="futures",
        methods=methods,
        rest_url=ep.rest_url,  # type: ignore[attr-defined]
        ws_url=ep.ws_url,
        samples=30,
        rate=20.0,
        warmup=3,  # type: ignore[attr-defined]
        timeout=1.0,
        offset_samples=15,
        stream_duration=1.5,
        imds=False,
        chrony=False,
    )
    base.update(kw)
    return ProbeConfig(**base)  # type: ignore[arg-type]


@virtual_time
async def test_rtt_methods_recover_twice_the_one_way_delay(virtual_clock: VirtualClock) -> None:
    """With 10 ms one way, REST and WS round trips are 20 ms each; a TCP handshake (the kernel's, not
    delayed by the zone) takes no time at all."""
    async with Simulator(_sim(10.0), clock=virtual_clock) as sim:
        result = await run_probe(
            _probe(sim.endpoint("futures", zone="z"), ("tcp", "rest", "ws"), samples=20), clock=virtual_clock
        )
    assert result.errors == []
    for method in ("rest", "ws"):
        s = result.stats[method].overall.summary()
        assert s.count == 20 and s.losses == 0, method
        # every sample is 2 x 10 ms: one histogram bucket (3 significant digits) holds them all
        assert s.min_ns <= 20 * MS <= s.max_ns and s.max_ns - s.min_ns <= 20 * MS // 1000, (method, s)
    assert result.stats["tcp"].overall.summary().max_ns < 1_000


@virtual_time
async def test_corrected_stream_latency_recovers_one_way_delay_within_bound(virtual_clock: VirtualClock) -> None:
    """Exchange clock 300 ms ahead, 8 ms one way: raw is ~-292 ms, corrected is 8 ms within the stated bound."""
    async with Simulator(_sim(8.0, jitter_ms=0.3, offset_ms=300.0), clock=virtual_clock) as sim:
        result = await run_probe(_probe(sim.endpoint("futures", zone="z"), ("stream",)), clock=virtual_clock)
    assert result.offset is not None
    assert abs(result.offset.offset_ns - 300 * MS) <= result.offset.bound_ns
    stream = result.to_dict()["methods"]["stream"]
    assert stream["corrected"] is True and stream["messages"] > 20
    for label in ("aggTrade", "bookTicker", "depth"):
        e = stream["per_type"][label]["E"]
        # 8 ms - 300 ms, to the exchange's millisecond timestamps and the 0.3 ms jitter
        assert -293_000 <= e["raw_median_signed"] <= -291_000, label  # µs
        error_us = abs(e["corrected_median_signed"] - 8_000)
        assert error_us <= e["bound_us"], (label, e["corrected_median_signed"], e["bound_us"])
    assert "millisecond" in stream["note"]


@virtual_time
async def test_spikes_show_at_the_tail_and_timeouts_are_losses(virtual_clock: VirtualClock) -> None:
    """Delay spikes longer than the timeout are counted as losses; shorter stalls reach the tail."""
    async with Simulator(_sim(2.0, spike_prob=0.08, spike_ms=400.0), clock=virtual_clock) as sim:
        result = await run_probe(
            _probe(sim.endpoint("futures", zone="z"), ("ws",), samples=80, rate=40.0, timeout=0.3), clock=virtual_clock
        )
    ws = result.stats["ws"].overall
    s = ws.summary()
    assert s.losses >= 1 and ws.errors.get("timeout", 0) == s.losses
    assert s.count + s.losses == 80
    assert abs(s.p50_ns - 4 * MS) <= 4 * MS // 1000  # most pings are 2 x 2 ms, behind no spike
    # Pings queued behind a spiked frame on the same connection answer late: the tail shows it, and
    # an answer later than the 0.3 s timeout is a loss, never a sample.
    assert 50 * MS <= s.max_ns < 300 * MS
    assert result.to_dict()["methods"]["ws"]["summary"]["loss_ratio"] > 0
