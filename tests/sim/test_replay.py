"""Replay of the real shared captures: frames byte-identical, in order, with scaled timing; REST from snapshots."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.errors import ConfigError
from tickpath.sim import ReplayConfig, SimConfig, Simulator
from tickpath.venues.binance.capture import read_http_capture, read_ws_capture

from .helpers import ws_connect

CAPTURES = [("spot", "spot"), ("futures", "usdm_futures")]


async def _read_all(ws: ClientConnection, n: int) -> list[str]:
    out = []
    for _ in range(n):
        msg = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(msg, str)
        out.append(msg)
    return out


@pytest.mark.parametrize(("venue", "stem"), CAPTURES)
async def test_replay_is_byte_identical(shared_captures: Path, venue: str, stem: str) -> None:
    """Connecting to the recorded URL yields every recorded frame, byte for byte, in recorded order."""
    ws_path, http_path = shared_captures / f"{stem}.ws.txt", shared_captures / f"{stem}.http.txt"
    cap = read_ws_capture(ws_path)
    cfg = SimConfig(venues=(venue,), symbols=(), replay=(ReplayConfig(ws_path, http_path, speed=0.0),))
    async with Simulator(cfg) as sim:
        ep = sim.endpoint(venue)
        assert ep.replay_path is not None
        ws = await ws_connect(ep.ws_url + ep.replay_path, max_size=None)
        got = await _read_all(ws, len(cap.frames))
        await ws.close()
        assert got == [f.text for f in cap.frames]
        async with aiohttp.ClientSession() as http:
            for rec in read_http_capture(http_path):
                async with http.get(ep.rest_url + rec.path, params=rec.params) as r:
                    assert r.status == 200
                    assert await r.read() == rec.body.encode()


@virtual_time
async def test_replay_raw_stream_and_speed(shared_captures: Path, virtual_clock: VirtualClock) -> None:
    """A raw /ws/<stream> gets that stream's data members only; speed 30 plays 30 s in 1 s."""
    ws_path = shared_captures / "spot.ws.txt"
    cap = read_ws_capture(ws_path)
    wanted = [f for f in cap.frames if f.text.startswith('{"stream":"nknusdt@depth@100ms"')]
    span = (wanted[-1].receipt - cap.frames[0].receipt) / 30.0
    cfg = SimConfig(venues=("spot",), symbols=(), replay=(ReplayConfig(ws_path, None, speed=30.0),))
    async with Simulator(cfg, clock=virtual_clock) as sim:
        ws = await ws_connect(sim.endpoint("spot").raw_url("nknusdt@depth@100ms"))
        t0 = virtual_clock.monotonic_ns()
        got = await _read_all(ws, len(wanted))
        elapsed = (virtual_clock.monotonic_ns() - t0) / 1e9
        await ws.close()
    prefix = '{"stream":"nknusdt@depth@100ms","data":'
    assert got == [f.text[len(prefix) : -1] for f in wanted]
    assert elapsed == pytest.approx(span, abs=1e-3), (elapsed, span)  # virtual time: the schedule itself


async def test_replay_rejects_streams_not_recorded(shared_captures: Path) -> None:
    """Streams that are not in the capture are refused; a capture for an unserved venue is a ConfigError."""
    cfg = SimConfig(venues=("spot",), symbols=(), replay=(ReplayConfig(shared_captures / "spot.ws.txt"),))
    async with Simulator(cfg) as sim:
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await ws_connect(sim.endpoint("spot").raw_url("btcusdt@depth"))
    bad = SimConfig(venues=("spot",), symbols=(), replay=(ReplayConfig(shared_captures / "usdm_futures.ws.txt"),))
    with pytest.raises(ConfigError, match="futures"):
        async with Simulator(bad):
            pass


@pytest.mark.parametrize(("venue", "stem"), CAPTURES)
async def test_client_syncs_against_replay_like_the_recorder(shared_captures: Path, venue: str, stem: str) -> None:
    """Snapshot from the replayed REST plus replayed diffs sync every symbol by Binance's rules, with no gap."""
    import json

    from .helpers import ClientBook

    ws_path, http_path = shared_captures / f"{stem}.ws.txt", shared_captures / f"{stem}.http.txt"
    cap = read_ws_capture(ws_path)
    cfg = SimConfig(venues=(venue,), symbols=(), replay=(ReplayConfig(ws_path, http_path, speed=0.0),))
    async with Simulator(cfg) as sim:
        ep = sim.endpoint(venue)
        books: dict[str, ClientBook] = {}
        async with aiohttp.ClientSession() as http:
            for rec in read_http_capture(http_path):
                async with http.get(ep.rest_url + rec.path, params=rec.params) as r:
                    books[rec.params["symbol"]] = ClientBook(venue, json.loads(await r.read()))
        ws = await ws_connect(ep.ws_url + ep.replay_path, max_size=None)  # type: ignore[operator]
        frames = await _read_all(ws, len(cap.frames))
        await ws.close()
    applied = dict.fromkeys(books, 0)
    for text in frames:
        msg = json.loads(text)
        data = msg["data"]
        if data.get("e") == "depthUpdate" and books[data["s"]].apply(data):
            applied[data["s"]] += 1
    assert all(book.synced for book in books.values())
    assert min(applied.values()) > 0
