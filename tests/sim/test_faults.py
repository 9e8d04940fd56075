"""Every injected fault is visible to a real client as the fault it is."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.sim import Simulator

from .helpers import recv_json, small_config, ws_connect

SYM = "BTCUSDT"


async def _futures_0ms(sim: Simulator) -> ClientConnection:
    ws = await ws_connect(sim.endpoint("futures").raw_url("btcusdt@depth@0ms"))
    await asyncio.sleep(0.05)  # the subscription is registered before we step the market
    return ws


async def test_gap_skips_update_ids() -> None:
    """gap(): the next depth event is never sent, so pu of the one after differs from the last u seen."""
    async with Simulator(small_config(venues=("futures",), rate=0.0)) as sim:
        ws = await _futures_0ms(sim)
        sim.step("futures", SYM, 3)
        seen = [await recv_json(ws) for _ in range(3)]
        assert sim.faults.gap("futures", SYM, events=2) > 0
        sim.step("futures", SYM, 4)
        after = [await recv_json(ws) for _ in range(2)]
        await ws.close()
    assert [e["pu"] for e in seen[1:]] == [e["u"] for e in seen[:-1]]  # intact before the fault
    assert after[0]["pu"] == seen[-1]["u"] + 2  # two update ids were skipped
    assert after[0]["U"] == seen[-1]["u"] + 3
    assert after[1]["pu"] == after[0]["u"]  # and the stream continues intact


async def test_duplicate_and_reorder() -> None:
    """duplicate() sends an event twice; reorder() swaps an event with its successor."""
    async with Simulator(small_config(venues=("futures",), rate=0.0)) as sim:
        ws = await _futures_0ms(sim)
        sim.faults.duplicate("futures", SYM)
        sim.step("futures", SYM, 2)
        dup = [await recv_json(ws) for _ in range(3)]
        sim.faults.reorder("futures", SYM)
        sim.step("futures", SYM, 3)
        reo = [await recv_json(ws) for _ in range(3)]
        await ws.close()
    assert dup[0] == dup[1] and dup[2]["u"] == dup[0]["u"] + 1
    base = dup[2]["u"]
    assert [e["u"] for e in reo] == [base + 2, base + 1, base + 3]


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_malformed_and_truncated_frames(kind: str) -> None:
    """The next frame is invalid JSON (malformed) or a cut-off prefix (truncated); later frames are fine."""
    async with Simulator(small_config(venues=("futures",), rate=0.0)) as sim:
        ws = await _futures_0ms(sim)
        sim.step("futures", SYM, 1)
        good = json.loads(await ws.recv())
        assert getattr(sim.faults, kind)("futures") == 1
        sim.step("futures", SYM, 2)
        bad = await asyncio.wait_for(ws.recv(), 2)
        nxt = json.loads(await asyncio.wait_for(ws.recv(), 2))
        await ws.close()
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)
    if kind == "truncated":
        assert 0 < len(bad) < len(json.dumps(good))
    assert nxt["u"] == good["u"] + 2


@virtual_time
async def test_stall_holds_then_releases_in_order(virtual_clock: VirtualClock) -> None:
    """stall(): nothing arrives for the stall, then every held event arrives in order, none lost."""
    async with Simulator(small_config(venues=("futures",), rate=200.0), clock=virtual_clock) as sim:
        ws = await _futures_0ms(sim)
        last = (await recv_json(ws))["u"]
        sim.faults.stall("futures", SYM, 0.4)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ids = []
        gaps = []
        prev_t = t0
        while loop.time() - t0 < 0.8:
            ev = await recv_json(ws)
            now = loop.time()
            gaps.append(now - prev_t)
            prev_t = now
            ids.append(ev["u"])
        await ws.close()
    # virtual time: the stall is exactly 0.4 s of silence, every other gap the 5 ms of 200/s
    assert max(gaps) == pytest.approx(0.4, abs=1e-6) and sorted(gaps)[-2] == pytest.approx(0.005, abs=1e-6)
    assert ids[0] >= last + 1 and ids == list(range(ids[0], ids[0] + len(ids)))  # then in order, gapless


async def test_drop_connection_without_close_frame() -> None:
    """drop_connections() cuts TCP: the client sees an abnormal closure, no close frame."""
    async with Simulator(small_config(venues=("futures",), rate=100.0)) as sim:
        ws = await ws_connect(sim.endpoint("futures").raw_url("btcusdt@bookTicker"))
        await recv_json(ws)
        assert sim.faults.drop_connections("futures") == 1
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as exc:
            while True:
                await asyncio.wait_for(ws.recv(), 2)
        assert exc.value.rcvd is None


async def test_snapshot_delay_failure_rate_limit_and_refusal() -> None:
    """REST faults: slow snapshot, HTTP 500 snapshot, forced 429 with Retry-After, refused upgrades."""
    async with Simulator(small_config(venues=("spot",))) as sim, aiohttp.ClientSession() as http:
        ep = sim.endpoint("spot")
        sim.faults.snapshot_delay("spot", 0.3)
        t0 = time.perf_counter()
        async with http.get(ep.depth_url(SYM, 5)) as r:
            assert r.status == 200
        assert time.perf_counter() - t0 >= 0.3
        sim.faults.snapshot_delay("spot", 0)
        sim.faults.fail_snapshots("spot", 1)
        async with http.get(ep.depth_url(SYM, 5)) as r:
            assert r.status == 500 and (await r.json())["code"] == -1001
        async with http.get(ep.depth_url(SYM, 5)) as r:
            assert r.status == 200
        sim.faults.rate_limit("spot", 2.0)
        async with http.get(ep.rest_url + "/api/v3/time") as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) in (1, 2)
        sim.faults.refuse("spot", seconds=1.0)
        with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
            await ws_connect(ep.raw_url("btcusdt@trade"))
        assert exc.value.response.status_code == 503
        sim.faults.clear()
        async with http.get(ep.rest_url + "/api/v3/time") as r:
            assert r.status == 200


async def test_fault_on_unknown_symbol_is_a_clear_error() -> None:
    """Asking for a fault on something not simulated raises ConfigError naming it."""
    from tickpath.errors import ConfigError

    async with Simulator(small_config(venues=("futures",), rate=0.0)) as sim:
        with pytest.raises(ConfigError, match="DOGEUSDT"):
            sim.faults.gap("futures", "DOGEUSDT")
        with pytest.raises(ConfigError, match="spot"):
            sim.faults.gap("spot", SYM)
