"""The WebSocket surface with a real client: schemas, paths, live requests, pings, limits, lifetime."""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from types import SimpleNamespace

import aiohttp
import pytest
import websockets

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.sim import Simulator
from tickpath.sim.ws import WsConnection

from .helpers import recv_json, recv_until, small_config, ws_connect

DEC = re.compile(r"^\d+\.\d+$|^\d+$")

# Field lists exactly as in the real captures (order included) and Binance's docs.
SCHEMAS = {
    ("futures", "depth"): ["e", "E", "T", "s", "U", "u", "pu", "b", "a"],
    ("spot", "depth"): ["e", "E", "s", "U", "u", "b", "a"],
    ("futures", "bookTicker"): ["e", "u", "s", "b", "B", "a", "A", "T", "E"],
    ("spot", "bookTicker"): ["u", "s", "b", "B", "a", "A"],
    ("futures", "aggTrade"): ["e", "E", "a", "s", "p", "q", "f", "l", "T", "m"],
    ("spot", "aggTrade"): ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"],
    ("futures", "trade"): ["e", "E", "T", "s", "t", "p", "q", "X", "m"],
    ("spot", "trade"): ["e", "E", "s", "t", "p", "q", "T", "m", "M"],
}


@pytest.mark.parametrize("venue", ["spot", "futures"])
async def test_payload_schemas_per_venue_and_stream(venue: str) -> None:
    """Every simulated stream carries the venue's exact field set and order, decimals as strings."""
    streams = ["btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@trade"]
    async with Simulator(small_config(venues=(venue,), rate=500.0)) as sim:
        ws = await ws_connect(sim.endpoint(venue).combined_url(streams))
        seen: dict[str, dict[str, object]] = {}
        try:
            while len(seen) < len(streams):
                msg = await recv_json(ws)
                seen.setdefault(msg["stream"], msg["data"])
        finally:
            await ws.close()
    for name, data in seen.items():
        kind = name.split("@")[1]
        assert list(data) == SCHEMAS[(venue, kind)], (venue, name, list(data))
        assert data["s"] == "BTCUSDT"
        for key in ("p", "q", "b", "B", "a", "A"):
            if isinstance(data.get(key), str):
                assert DEC.match(str(data[key])), (name, key, data[key])
    depth = seen["btcusdt@depth@100ms"]
    for side in ("b", "a"):
        for level in depth[side]:  # type: ignore[attr-defined]
            assert len(level) == 2 and all(DEC.match(x) for x in level)
    if venue == "spot":  # spot prints 8 decimals, as the real captures show
        assert len(str(seen["btcusdt@bookTicker"]["b"]).split(".")[1]) == 8


async def test_raw_and_combined_paths() -> None:
    """/ws/<stream> sends bare payloads; /stream?streams= wraps them in {"stream","data"}."""
    async with Simulator(small_config(venues=("futures",))) as sim:
        ep = sim.endpoint("futures")
        raw = await ws_connect(ep.raw_url("btcusdt@depth@0ms"))
        comb = await ws_connect(ep.combined_url(["btcusdt@depth@0ms", "btcusdt@bookTicker"]))
        try:
            r = await recv_json(raw)
            assert r["e"] == "depthUpdate" and "stream" not in r
            c = await recv_json(comb)
            assert set(c) == {"stream", "data"} and c["stream"] in ("btcusdt@depth@0ms", "btcusdt@bookTicker")
        finally:
            await raw.close()
            await comb.close()


async def test_subscribe_list_unsubscribe() -> None:
    """Live SUBSCRIBE/UNSUBSCRIBE answer {"result":null,"id":N}; LIST_SUBSCRIPTIONS lists what is live."""
    async with Simulator(small_config(venues=("spot",))) as sim:
        ws = await ws_connect(sim.endpoint("spot").ws_url + "/ws")
        try:
            await ws.send(
                json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 1})
            )
            assert await recv_until(ws, lambda m: "id" in m) == {"result": None, "id": 1}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            listed = await recv_until(ws, lambda m: m.get("id") == 2)
            assert listed == {"result": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 2}
            data = await recv_until(ws, lambda m: "e" in m or "u" in m)
            assert data["s"] == "BTCUSDT"
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 3}))
            assert await recv_until(ws, lambda m: m.get("id") == 3) == {"result": None, "id": 3}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            assert (await recv_until(ws, lambda m: m.get("id") == 4))["result"] == ["btcusdt@aggTrade"]
            await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}))
            assert await recv_until(ws, lambda m: m.get("id") == 5) == {"result": None, "id": 5}
            wrapped = await recv_until(ws, lambda m: "stream" in m)
            assert wrapped["stream"] == "btcusdt@aggTrade"
        finally:
            await ws.close()


async def test_malformed_requests_answered_and_connection_kept() -> None:
    """Bad JSON, unknown methods, bad ids and invalid streams get Binance's error answers; the link stays."""
    async with Simulator(small_config(venues=("futures",), rate=0.0, max_incoming_messages_per_s=50)) as sim:
        ws = await ws_connect(sim.endpoint("futures").ws_url + "/ws")
        try:
            await ws.send("{not json")
            assert (await recv_json(ws))["error"]["code"] == 3
            await ws.send(json.dumps({"method": "SUBSCRIB", "params": [], "id": 1}))
            err = await recv_json(ws)
            assert err["id"] == 1 and err["error"]["code"] == 2 and "unknown variant" in err["error"]["msg"]
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": "x"}))
            assert "unsigned integer" in (await recv_json(ws))["error"]["msg"]
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["BTCUSDT@depth"], "id": 2}))
            assert await recv_json(ws) == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2}
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@1000ms"], "id": 3}))
            assert (await recv_json(ws))["id"] == 3
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
            assert await recv_json(ws) == {"result": [], "id": 4}  # still connected and answering
        finally:
            await ws.close()


async def test_bad_stream_in_url_is_refused() -> None:
    """An unknown stream, symbol or venue speed in the URL refuses the upgrade with HTTP 400."""
    async with Simulator(small_config(venues=("spot",))) as sim:
        ep = sim.endpoint("spot")
        for bad in ("btcusdt@depth@0ms", "dogeusdt@trade", "btcusdt@markPrice", "btcusdt@kline_2s"):
            with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
                await ws_connect(ep.raw_url(bad))
            assert exc.value.response.status_code == 400


async def test_incoming_message_rate_limit_disconnects() -> None:
    """More than the venue's incoming messages per second (spot: 5) closes the connection with 1008:
    the sixth does."""
    async with Simulator(small_config(venues=("spot",), rate=0.0)) as sim:
        ws = await ws_connect(sim.endpoint("spot").ws_url + "/ws")
        for i in range(6):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as exc:
            for _ in range(20):
                await recv_json(ws)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1008


@pytest.mark.parametrize(
    ("gap_s", "closed_at"),
    [(0.19, 6), (0.199, 6), (0.2, None), (0.25, None)],  # six within 0.95 s / 0.995 s: closed by the sixth
)
def test_incoming_limit_is_any_one_second_window(gap_s: float, closed_at: int | None) -> None:
    """Binance's rule, exactly: at most 5 messages in any 1 s window (the window is not shortened),
    counted when the simulator reads them; 0.2 s apart is the fastest a client may go."""
    now = [0.0]
    conn = SimpleNamespace(
        loop=SimpleNamespace(time=lambda: now[0]),
        incoming=deque(),
        ctx=SimpleNamespace(limits=SimpleNamespace(max_incoming_per_s=5)),
    )
    verdicts = []
    for i in range(12):
        now[0] = i * gap_s
        verdicts.append(WsConnection._count_incoming(conn))  # type: ignore[arg-type]
    first_refused = next((i + 1 for i, ok in enumerate(verdicts) if not ok), None)
    assert first_refused == closed_at


async def test_stream_count_limit() -> None:
    """A URL with more streams than allowed is refused; a SUBSCRIBE beyond the limit closes with 1008."""
    async with Simulator(
        small_config(venues=("futures",), symbols=("BTCUSDT", "ETHUSDT"), max_streams_per_connection=3)
    ) as sim:
        ep = sim.endpoint("futures")
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await ws_connect(
                ep.combined_url(["btcusdt@trade", "btcusdt@aggTrade", "ethusdt@trade", "ethusdt@aggTrade"])
            )
        ws = await ws_connect(ep.combined_url(["btcusdt@trade", "btcusdt@aggTrade"]))
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade", "ethusdt@aggTrade"], "id": 1}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as exc:
            for _ in range(1000):
                await recv_json(ws)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1008


@virtual_time
async def test_server_pings_and_client_pongs_keep_connection(virtual_clock: VirtualClock) -> None:
    """The server pings on its cadence; a client that answers (websockets does) stays connected."""
    cfg = small_config(venues=("futures",), rate=0.0, ping_interval_s=0.1, pong_timeout_s=0.3)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        ws = await ws_connect(sim.endpoint("futures").ws_url + "/ws", ping_interval=None)
        await asyncio.sleep(0.8)
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert await recv_json(ws) == {"result": [], "id": 1}
        await ws.close()


@virtual_time
async def test_client_that_never_pongs_is_disconnected(virtual_clock: VirtualClock) -> None:
    """Pings arrive every ping interval; without pongs the server closes after the pong timeout."""
    cfg = small_config(venues=("spot",), rate=0.0, ping_interval_s=0.1, pong_timeout_s=0.35)
    async with (
        Simulator(cfg, clock=virtual_clock) as sim,
        aiohttp.ClientSession() as http,
    ):
        ws = await http.ws_connect(sim.endpoint("spot").ws_url + "/ws", autoping=False)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pings = 0
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type == aiohttp.WSMsgType.PING:
                pings += 1
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        elapsed = loop.time() - t0
        # Pings at 0.1, 0.2, 0.3 s; the liveness check runs every 0.025 s (a quarter of the shorter
        # interval), so the first to find more than 0.35 s of silence is the one at 0.375 s.
        assert pings == 3
        assert ws.close_code == 1008
        assert elapsed == pytest.approx(0.375, abs=1e-6)


@virtual_time
async def test_connection_lifetime_ends_in_clean_close(virtual_clock: VirtualClock) -> None:
    """At the configured maximum lifetime the server closes with a clean close frame (1000)."""
    cfg = small_config(venues=("futures",), rate=50.0, max_lifetime_s=0.4)
    async with Simulator(cfg, clock=virtual_clock) as sim:
        ws = await ws_connect(sim.endpoint("futures").raw_url("btcusdt@bookTicker"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(websockets.exceptions.ConnectionClosedOK) as exc:
            while True:
                await ws.recv()
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1000
        assert loop.time() - t0 == pytest.approx(0.4, abs=1e-6)
