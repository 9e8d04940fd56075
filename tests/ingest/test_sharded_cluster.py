"""Across machines: two ``--shard i/2`` feeds publish to a 3-node JetStream cluster (replicas 3), two
``ingest`` members share one durable pull consumer, one NATS node is SIGKILLed mid-run; the two DuckDB
outputs merged (:func:`merge_members`) hold every accepted event exactly once, with every stream's
seq contiguous (a lost ack can make the other member commit a batch again: the merge drops it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.feed.helpers import all_synced, feed_config
from tests.ingest.support import nats_cluster
from tickpath.feed import Feed
from tickpath.feed.sharding import ShardSpec
from tickpath.ingest import IngestConfig, run_ingest
from tickpath.ingest.group import merge_members
from tickpath.sim import SimConfig, Simulator

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
_KEYS = " UNION ALL ".join(f"SELECT session, '{t}' AS tbl, symbol, seq FROM {t}" for t in ("trades", "tickers", "l2"))


def _keys(db: Path) -> list[tuple[str, str, str, int]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(_KEYS).fetchall()
    finally:
        con.close()


async def _until_consuming(url: str, members: list[asyncio.Task[object]]) -> None:
    """Until the group's durable exists and has delivered messages (the kill is to hit a running group,
    not a consumer being created: that failure is ingest's exit 4 and a restart by its unit)."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        async with asyncio.timeout(15):
            while True:
                assert not any(m.done() for m in members), [m.result() for m in members if m.done()]
                try:
                    info = await js.consumer_info("TICKPATH", "group")
                    if info.delivered.stream_seq > 0 and (info.num_waiting or 0) >= 1:
                        return
                except Exception:
                    pass
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def _until(ok: Callable[[], bool], feeds: list[Feed], tasks: Sequence[asyncio.Task[Any]], what: str) -> None:
    """Until ``ok()``; a feed that ended is its own failure, and a timeout says where each feed got to."""
    deadline = asyncio.get_running_loop().time() + 30
    while not ok():
        for t in tasks:
            if t.done():
                raise AssertionError(f"a feed ended while waiting for {what}: {t.exception() or t.result()!r}")
        if asyncio.get_running_loop().time() > deadline:
            state = [(f.engine is not None and all_synced(f), f.pipeline.stats.emitted) for f in feeds]
            raise AssertionError(f"no {what} after 30 s; (all synced, emitted) per feed: {state}")
        await asyncio.sleep(0.05)


async def test_two_shards_two_ingest_members_one_node_killed(tmp_path: Path) -> None:
    sim = Simulator(SimConfig(venues=("spot",), symbols=SYMBOLS, seed=5, rate=200.0, book_levels=20))
    async with nats_cluster(3) as c, sim:
        ep = sim.endpoint("spot")
        hosts = ",".join(u.removeprefix("nats://") for u in c.client_urls)
        feeds = [
            Feed(
                feed_config(
                    ep,
                    "spot",
                    SYMBOLS,
                    shard=ShardSpec(i, 2),
                    sinks=(f"nats://{hosts}?replicas=3&spool={tmp_path / f'spool{i}'}&ack_timeout_s=1",),
                )
            )
            for i in range(2)
        ]
        assert sorted(s for f in feeds for s in f.config.symbols) == sorted(SYMBOLS)
        feed_tasks = [asyncio.create_task(f.run()) for f in feeds]
        await _until(
            lambda: all(f.engine is not None and all_synced(f) and f.pipeline.stats.emitted > 300 for f in feeds),
            feeds,
            feed_tasks,
            "synced books and 300 events from each feed",
        )
        dbs = [tmp_path / f"ingest-{k}.duckdb" for k in range(2)]
        source = f"nats://{hosts}?durable=group"
        members = [
            asyncio.create_task(
                run_ingest(
                    IngestConfig(
                        source,
                        f"duckdb:{db}",
                        batch=200,
                        idle_exit_s=2.0,
                        fetch_timeout_s=0.2,
                        ack_wait_s=4.0,
                        connect_timeout_s=20.0,
                    )
                )
            )
            for db in dbs
        ]
        await _until_consuming(c.client_urls[0], members)
        await c.kill(2)
        emitted_at_kill = [f.pipeline.stats.emitted for f in feeds]
        await _until(
            lambda: all(f.pipeline.stats.emitted > e + 300 for f, e in zip(feeds, emitted_at_kill, strict=True)),
            feeds,
            feed_tasks,
            "300 more events from each feed after the kill",
        )
        for t in feed_tasks:
            t.cancel()
        summaries = [s for s in await asyncio.gather(*feed_tasks, return_exceptions=True)]
        results = await asyncio.wait_for(asyncio.gather(*members), 40)
    emitted = 0
    for f, s in zip(feeds, summaries, strict=True):
        snap = f.snapshot()  # a cancelled run's summary is its snapshot at the end
        nats = snap.sinks["nats"]
        assert nats.dropped == 0 and nats.written == snap.pipeline.emitted, (s, nats)
        emitted += snap.pipeline.emitted
    raw = [k for db in dbs for k in _keys(db)]
    assert set(raw) == set(_keys(dbs[0])) | set(_keys(dbs[1]))
    merged = tmp_path / "group.duckdb"
    res = merge_members(merged, dbs)
    keys = _keys(merged)
    assert len(keys) == len(set(keys)) == emitted  # none lost, none twice, across both members
    assert sum(res.duplicates.values()) == len(raw) - len(set(raw))  # lost acks redelivered to the other
    assert all(r.rejected == 0 for r in results)
    assert sum(r.messages for r in results) >= emitted
    streams: dict[tuple[str, str, str], list[int]] = {}
    for session, tbl, symbol, seq in keys:
        streams.setdefault((session, tbl, symbol), []).append(seq)
    for key, seqs in streams.items():
        seqs.sort()
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{key} has a gap"
