"""Unit behaviour of the feed's parts: weight pacing, sharding, backoff, the engine's bad-input path,
the pipeline's back-pressure, and the REST client's error translation."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest
from aiohttp import web

from tests.support.http import serve_app
from tickpath.clock import ManualClock
from tickpath.errors import ConfigError, ExchangeError, RateLimitedError
from tickpath.events import Event, SessionInfo, Trade
from tickpath.feed.config import FeedConfig, parse_channels
from tickpath.feed.connection import Backoff
from tickpath.feed.engine import FeedEngine
from tickpath.feed.pipeline import Pipeline
from tickpath.feed.shards import plan_shards
from tickpath.feed.snapshots import MINUTE_NS, WeightPacer
from tickpath.sinks.base import Sink
from tickpath.venues.binance.endpoints import endpoints
from tickpath.venues.binance.rest import RestClient


async def test_pacer_waits_for_the_next_minute_when_the_budget_is_spent() -> None:
    """Weight beyond safety x budget waits for the next minute window; within it nothing waits."""
    clock = ManualClock(start_ns=0, wall_offset_ns=10 * MINUTE_NS)  # wall starts on a minute edge
    pacer = WeightPacer(1000, safety=0.5, clock=clock)  # 500 per minute
    for _ in range(2):
        await pacer.acquire(250)
    assert pacer.waits == 0 and clock.monotonic_ns() == 0
    await pacer.acquire(250)
    assert pacer.waits == 1
    assert clock.wall_ns() // MINUTE_NS == 11 and pacer.used == 250


async def test_pacer_trusts_the_venue_header_and_retry_after() -> None:
    """A higher x-mbx-used-weight-1m is adopted, and Retry-After blocks every grant for its length."""
    clock = ManualClock(start_ns=0, wall_offset_ns=10 * MINUTE_NS)
    pacer = WeightPacer(1000, safety=1.0, clock=clock)
    pacer.observe(990)
    await pacer.acquire(20)  # must roll into the next minute
    assert clock.wall_ns() // MINUTE_NS == 11
    start = clock.monotonic_ns()
    pacer.block_for(7.5)
    await pacer.acquire(1)
    assert clock.monotonic_ns() - start >= 7_500_000_000


def test_shards_respect_the_connection_limit_and_keep_symbols_whole() -> None:
    """Streams are packed within the per-connection cap and a symbol's streams share a connection."""
    cfg = FeedConfig(venue="futures", symbols=tuple(f"S{i:03d}USDT" for i in range(150)))
    shards = plan_shards(cfg.streams_by_symbol(), 200)
    assert all(len(s.streams) <= 200 for s in shards)
    assert sum(len(s.streams) for s in shards) == 450 and len(shards) == 3
    for s in shards:
        assert {st.split("@")[0] for st in s.streams} == {sym.lower() for sym in s.symbols}
    with pytest.raises(ConfigError):
        plan_shards({"A": ["a@x", "a@y"]}, 1)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    """Delays double per attempt, stay within [cap/2, cap], and never exceed max_s."""
    b = Backoff(base_s=0.1, max_s=2.0)
    rng = random.Random(1)
    for attempt, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (10, 2.0)):
        for _ in range(50):
            d = b.delay(attempt, rng)
            assert cap / 2 <= d <= cap


def test_config_rejects_bad_values_with_clear_messages() -> None:
    """Unknown channels, duplicate symbols and impossible limits are ConfigErrors."""
    with pytest.raises(ConfigError, match="unknown channel"):
        parse_channels("l2,orders")
    with pytest.raises(ConfigError, match="twice"):
        FeedConfig(venue="spot", symbols=("BTCUSDT", "BTCUSDT"))
    with pytest.raises(ConfigError, match="streams per connection"):
        FeedConfig(
            venue="futures",
            symbols=("BTCUSDT",),
            streams_per_connection=endpoints("futures").max_streams_per_connection + 1,
        )
    assert FeedConfig(venue="spot", symbols=("BTCUSDT",)).effective_snapshot_limit == 5000


class _Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, events: list[Event]) -> None:
        self.events.extend(events)


class _Conn:
    conn_id = "c"


def test_engine_counts_bad_frames_and_keeps_going() -> None:
    """Malformed JSON, schema violations and unknown events are counted by reason; good frames pass."""
    out = _Collect()
    eng = FeedEngine("futures", ("BTCUSDT",), out, session="s")  # type: ignore[arg-type]
    trade = (
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1.10",'
        '"q":"2.000","f":1,"l":2,"T":1,"m":true}}'
    )
    for text in (
        "{not json",
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":"x"}}',
        '{"stream":"btcusdt@ticker_1h","data":{"e":"1hTicker"}}',  # a stream tickpath does not know
        trade,
        trade,
    ):
        eng.on_frame(text, 1_000_000_000, 0, _Conn())
    assert eng.stats.malformed == {"malformed_json": 1, "schema": 1, "unknown_event": 1}
    assert eng.stats.duplicates == 1  # the same trade id twice is published once
    assert len(out.events) == 1
    t = out.events[0]
    assert isinstance(t, Trade) and (t.price, t.qty, t.side, t.seq) == ("1.10", "2.000", "sell", 1)


class _SlowSink(Sink):
    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.batches: list[list[Event]] = []

    async def write(self, batch: Sequence[Event]) -> None:
        await self.gate.wait()
        self.stats.accepted += len(batch)
        self.stats.written += len(batch)
        self.batches.append(list(batch))

    async def write_session(self, session: SessionInfo) -> None:
        pass

    @property
    def buffered(self) -> int:
        return 0

    async def flush(self) -> None:
        pass


def _trade(i: int) -> Trade:
    return Trade(
        session="s",
        venue="spot",
        symbol="X",
        seq=i,
        event_time_ms=1,
        transaction_time_ms=1,
        receipt_ns=1,
        trade_id=i,
        price="1",
        qty="1",
        side="buy",
    )


async def test_pipeline_blocks_when_a_sink_is_slow_and_keeps_order() -> None:
    """A full sink queue makes emit() return an awaitable; memory stays bounded; order and count kept."""
    sink = _SlowSink()
    p = Pipeline([sink], batch_size=2, queue_batches=2, flush_interval_s=10)
    await p.start()
    waits = []
    for i in range(1, 13):
        w = p.emit([_trade(i)])
        if w is not None:
            waits.append(w)
    assert waits, "a blocked sink must push back"
    assert max(p.queue_depths().values()) <= 2
    sink.gate.set()
    await asyncio.gather(*waits)
    await p.close()
    seqs = [e.seq for b in sink.batches for e in b]
    assert seqs == list(range(1, 13))
    assert p.stats.backpressure_waits >= 1


class _BuggySink(_SlowSink):
    """Raises a plain exception (a bug, not a SinkError) on its 2nd batch, before taking it."""

    name = "buggy"

    async def write(self, batch: Sequence[Event]) -> None:
        if len(self.batches) == 1 and not self.gate.is_set():
            self.gate.set()
            raise RuntimeError("oops")
        self.stats.accepted += len(batch)
        self.stats.written += len(batch)
        self.batches.append(list(batch))


async def test_a_sink_that_raises_a_bug_loses_that_batch_loudly_and_the_feed_goes_on() -> None:
    """Not a hang: the failed batch is counted accepted and dropped, later batches and other sinks go on."""
    buggy, other = _BuggySink(), _SlowSink()
    other.gate.set()
    p = Pipeline([buggy, other], batch_size=2, queue_batches=1, flush_interval_s=10)
    await p.start()
    async with asyncio.timeout(5):  # a dead sink worker used to leave emit() waiting for room forever
        for i in range(1, 9):
            w = p.emit([_trade(i)])
            if w is not None:
                await w
        await p.close()
    assert [e.seq for b in buggy.batches for e in b] == [1, 2, 5, 6, 7, 8]
    assert [e.seq for b in other.batches for e in b] == list(range(1, 9))
    assert (buggy.stats.accepted, buggy.stats.written, buggy.stats.dropped, buggy.stats.errors) == (8, 6, 2, 1)


async def test_rest_client_translates_429_418_and_errors() -> None:
    """429/418 become RateLimitedError with Retry-After; 400 with a code becomes ExchangeError."""
    answers = iter(
        [
            web.Response(status=429, headers={"Retry-After": "3"}, text="{}"),
            web.Response(status=418, headers={"Retry-After": "120"}, text="{}"),
            web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400),
            web.json_response({"lastUpdateId": 1, "bids": [], "asks": []}, headers={"x-mbx-used-weight-1m": "42"}),
        ]
    )

    async def handler(_r: web.Request) -> web.Response:
        return next(answers)

    app = web.Application()
    app.router.add_get("/fapi/v1/depth", handler)
    async with serve_app(app) as url, RestClient("futures", url) as c:
        with pytest.raises(RateLimitedError) as e1:
            await c.get("/fapi/v1/depth")
        assert (e1.value.status, e1.value.retry_after) == (429, 3.0)
        with pytest.raises(RateLimitedError) as e2:
            await c.get("/fapi/v1/depth")
        assert (e2.value.status, e2.value.retry_after) == (418, 120.0)
        with pytest.raises(ExchangeError, match="Invalid symbol") as e3:
            await c.get("/fapi/v1/depth")
        assert e3.value.code == -1121
        ok = await c.get("/fapi/v1/depth")
        assert ok.used_weight == 42 and c.used_weight == 42
