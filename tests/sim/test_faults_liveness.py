"""The simulator's liveness faults at the wire: ``mute`` silences one stream while the others go on,
``freeze`` keeps bookTicker frames coming with the values of its start."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.sim.helpers import small_config, ws_connect
from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.errors import ConfigError
from tickpath.sim import Simulator

SYM = "BTCUSDT"


async def _collect(ws: object, seconds: float) -> list[dict[str, object]]:
    """Every combined-stream message received for ``seconds``."""
    out: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))  # type: ignore[attr-defined]
        except TimeoutError:
            break
    return out


@pytest.mark.parametrize("venue", ["spot", "futures"])
@virtual_time
async def test_mute_silences_one_stream_while_the_others_go_on(virtual_clock: VirtualClock, venue: str) -> None:
    """For the mute, no aggTrade arrives but bookTicker and trade frames do; afterwards aggTrades return."""
    async with Simulator(small_config(venues=(venue,), rate=300.0), clock=virtual_clock) as sim:
        url = sim.endpoint(venue).combined_url(["btcusdt@aggTrade", "btcusdt@trade", "btcusdt@bookTicker"])
        ws = await ws_connect(url)
        await _collect(ws, 0.3)
        assert sim.faults.mute(venue, SYM, "aggTrade", 1.0) == 1
        during = await _collect(ws, 0.8)
        await asyncio.sleep(0.3)
        after = await _collect(ws, 0.8)
        await ws.close()
        assert sim.faults.injected["mute"] == 1
    streams = [m["stream"] for m in during]
    assert "btcusdt@aggTrade" not in streams
    assert streams.count("btcusdt@trade") > 5 and streams.count("btcusdt@bookTicker") > 5
    assert [m["stream"] for m in after].count("btcusdt@aggTrade") > 5


@virtual_time
async def test_freeze_repeats_ticker_values_with_fresh_update_ids(virtual_clock: VirtualClock) -> None:
    """While frozen, bookTicker frames keep coming with one bid/ask and sizes and rising update ids;
    afterwards the values move again."""
    async with Simulator(small_config(venues=("futures",), rate=300.0), clock=virtual_clock) as sim:
        ws = await ws_connect(sim.endpoint("futures").combined_url(["btcusdt@bookTicker"]))
        await _collect(ws, 0.3)
        assert sim.faults.freeze("futures", SYM, 1.0) == 1
        during = [m["data"] for m in await _collect(ws, 0.8)]
        await asyncio.sleep(0.3)
        after = [m["data"] for m in await _collect(ws, 0.8)]
        await ws.close()
    assert len(during) > 10
    assert len({(d["b"], d["B"], d["a"], d["A"]) for d in during}) == 1  # type: ignore[index]
    ids = [d["u"] for d in during]  # type: ignore[index]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({(d["b"], d["B"], d["a"], d["A"]) for d in after}) > 5  # type: ignore[index]


@virtual_time
async def test_bad_liveness_faults_are_refused(virtual_clock: VirtualClock) -> None:
    """Muting a depth stream, or a non-positive duration: a ConfigError naming the problem."""
    async with Simulator(small_config(venues=("futures",)), clock=virtual_clock) as sim:
        with pytest.raises(ConfigError, match="can be muted"):
            sim.faults.mute("futures", SYM, "depth", 1.0)
        with pytest.raises(ConfigError, match="positive"):
            sim.faults.freeze("futures", SYM, 0)
