"""The feed's connection and REST client over in-memory transports, on virtual time: reconnect
backoff, the stale watchdog, SUBSCRIBE pacing and 429 handling, exact to the nanosecond with no
socket and no wall time."""

from __future__ import annotations

import asyncio
import itertools
import json
import random

import pytest

from tickpath.clock import VirtualClock, run_virtual
from tickpath.errors import RateLimitedError
from tickpath.feed.connection import Backoff, FeedConnection
from tickpath.transports import HttpReply, MemoryHttpTransport, MemoryWsPeer, MemoryWsTransport, WsKind
from tickpath.venues.binance.rest import RestClient

NS = 1_000_000_000


def _frames(received: list[tuple[str, int]]):
    def on_frame(text: str, wall_ns: int, mono_ns: int, conn: FeedConnection) -> None:
        received.append((text, mono_ns))

    return on_frame


async def _until_received(
    conn: FeedConnection, transport: MemoryWsTransport, received: list[tuple[str, int]], n: int
) -> None:
    """Run ``conn`` until ``n`` frames came, then stop it and its transport."""
    task = asyncio.create_task(conn.run())
    while len(received) < n:
        await asyncio.sleep(0.01)
    await conn.stop()
    await task
    await transport.close()


def test_reconnects_after_refusals_with_the_documented_backoff() -> None:
    clock = VirtualClock()
    received: list[tuple[str, int]] = []

    async def venue(peer: MemoryWsPeer) -> None:
        await peer.send('{"n":1}')
        await asyncio.sleep(5)  # then the venue drops the connection
        await peer.close(error="reset by peer")

    transport = MemoryWsTransport(venue, refuse=3)
    backoff = Backoff(base_s=0.1, max_s=30.0, reset_after_s=60.0)
    conn = FeedConnection(
        "c1", "wss://x", ["btcusdt@trade"], _frames(received), clock=clock, transport=transport, backoff=backoff, seed=7
    )

    run_virtual(lambda: _until_received(conn, transport, received, 2), clock)
    rng = random.Random(7)
    # three refusals, each followed by its backoff (the connection sleeps whole nanoseconds)
    first_open = sum(int(backoff.delay(attempt, rng) * NS) for attempt in (1, 2, 3))
    assert conn.connect_failures == 3 and transport.attempts == 5
    assert received[0] == ('{"n":1}', first_open)
    # lived 5 s < reset_after_s: the attempt counter went on to 4 before the reconnect
    second_open = first_open + 5 * NS + int(backoff.delay(4, rng) * NS)
    assert received[1][1] == second_open
    assert conn.reconnects == 1 and "reset by peer" in conn.last_error
    assert conn.ws_errors == 1  # ended by an error, not a close frame (tickpath_feed_ws_errors_total)


def test_a_connection_that_lived_reset_after_s_restarts_the_backoff() -> None:
    """Three refusals, then 12 s of data (>= the default 10 s): the reconnect waits delay(1), not delay(4)."""
    clock = VirtualClock()
    received: list[tuple[str, int]] = []

    async def venue(peer: MemoryWsPeer) -> None:
        await peer.send('{"n":1}')
        await asyncio.sleep(12)
        await peer.close(error="reset by peer")

    transport = MemoryWsTransport(venue, refuse=3)
    backoff = Backoff(base_s=0.1, max_s=30.0)
    conn = FeedConnection(
        "c1", "wss://x", ["btcusdt@trade"], _frames(received), clock=clock, transport=transport, backoff=backoff, seed=7
    )
    run_virtual(lambda: _until_received(conn, transport, received, 2), clock)
    rng = random.Random(7)
    first_open = sum(int(backoff.delay(attempt, rng) * NS) for attempt in (1, 2, 3))
    assert received[1][1] == first_open + 12 * NS + int(backoff.delay(1, rng) * NS)


def test_a_clean_close_is_a_reconnect_but_not_a_websocket_error() -> None:
    clock = VirtualClock()
    received: list[tuple[str, int]] = []

    async def venue(peer: MemoryWsPeer) -> None:
        await peer.send("x")
        await peer.close()

    transport = MemoryWsTransport(venue)
    conn = FeedConnection("c1", "wss://x", ["s"], _frames(received), clock=clock, transport=transport, seed=1)

    run_virtual(lambda: _until_received(conn, transport, received, 2), clock)
    assert conn.reconnects >= 1 and conn.ws_errors == 0


def test_watchdog_closes_a_silent_connection_after_stale_after_s() -> None:
    clock = VirtualClock()
    received: list[tuple[str, int]] = []

    async def venue(peer: MemoryWsPeer) -> None:
        await peer.send("first")
        await asyncio.Event().wait()  # then silence, connection open

    transport = MemoryWsTransport(venue)
    conn = FeedConnection("c1", "wss://x", ["s"], _frames(received), clock=clock, transport=transport, stale_after_s=8)

    async def main() -> int:
        task = asyncio.create_task(conn.run())
        while conn.stale_closes == 0:
            await asyncio.sleep(0.001)
        closed_at = clock.monotonic_ns()
        await conn.stop()
        await task
        await transport.close()
        return closed_at

    closed_at = run_virtual(main, clock)
    # checked every stale_after_s / 4 = 2 s; the first check past 8 s of silence is at 10 s
    assert closed_at == pytest.approx(10 * NS, abs=1_000_000)
    assert received == [("first", 0)]


def test_subscribe_messages_are_paced_under_the_incoming_limit() -> None:
    """SUBSCRIBEs go 1.25x the limit's interval apart (5/s: 250 ms): any second of arrivals holds
    at most 4 of them, one under Binance's limit, so a message the venue reads late still leaves
    the connection within it."""
    clock = VirtualClock()
    arrivals: list[tuple[dict[str, object], int]] = []

    async def venue(peer: MemoryWsPeer) -> None:
        while True:
            arrivals.append((json.loads(await peer.from_client.get()), clock.monotonic_ns()))

    streams = [f"s{i}@trade" for i in range(1150)]
    conn = FeedConnection(
        "c1",
        "wss://x",
        streams,
        _frames([]),
        clock=clock,
        transport=MemoryWsTransport(venue),
        subscribe=True,
        max_messages_per_s=5,
        streams_per_subscribe=100,
    )

    async def main() -> None:
        task = asyncio.create_task(conn.run())
        while len(arrivals) < 12:
            await asyncio.sleep(0.01)
        await conn.stop()
        await task

    run_virtual(main, clock)
    assert [len(m["params"]) for m, _ in arrivals] == [100] * 11 + [50]  # type: ignore[arg-type]
    times = [t for _, t in arrivals]
    assert [b - a for a, b in itertools.pairwise(times)] == [250_000_000] * 11  # never faster
    # the most in any 1 s window (one starting at each arrival holds the most): under the limit of 5
    in_a_second = [sum(t <= u < t + NS for u in times) for t in times]
    assert max(in_a_second) == 4
    assert conn.url == "wss://x/stream"


def test_closed_socket_reports_closed_and_refuses_sends() -> None:
    async def venue(peer: MemoryWsPeer) -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        transport = MemoryWsTransport(venue)
        ws = await transport.connect("wss://x")
        await ws.close()
        assert ws.closed and (await ws.receive()).type == WsKind.CLOSED
        with pytest.raises(ConnectionResetError):
            await ws.send_str("late")
        await transport.close()

    run_virtual(main)


def test_rest_client_over_memory_http_reads_weight_and_retry_after() -> None:
    clock = VirtualClock()
    answers = iter(
        [
            HttpReply(200, {"x-mbx-used-weight-1m": "42"}, b'{"serverTime": 1}'),
            HttpReply(429, {"retry-after": "7"}, b'{"code":-1003,"msg":"Too many requests"}'),
        ]
    )

    async def handler(url: str) -> HttpReply:
        return next(answers)

    http = MemoryHttpTransport(handler)

    async def main() -> None:
        rest = RestClient("spot", "https://api.example", clock=clock, http=http)
        first = await rest.get("/api/v3/time")
        assert first.status == 200 and rest.used_weight == 42
        with pytest.raises(RateLimitedError) as err:
            await rest.get("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5})
        assert err.value.retry_after == 7.0 and err.value.status == 429
        await rest.close()

    run_virtual(main, clock)
    assert http.requests == [
        "https://api.example/api/v3/time",
        "https://api.example/api/v3/depth?symbol=BTCUSDT&limit=5",
    ]
