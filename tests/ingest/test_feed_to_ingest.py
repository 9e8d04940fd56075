"""End to end: the real feed against the simulator publishes to JetStream; ingest loads it exactly once."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.feed.helpers import all_synced, feed_config, run_until
from tests.ingest.support import nats_cluster
from tickpath.feed import Feed
from tickpath.ingest import IngestConfig, run_ingest
from tickpath.sim import SimConfig, Simulator

pytestmark = pytest.mark.integration

_KEYS = (
    "SELECT session, venue, 'trades', symbol, seq FROM trades UNION ALL "
    "SELECT session, venue, 'ticker', symbol, seq FROM tickers UNION ALL "
    "SELECT session, venue, 'l2', symbol, seq FROM l2"
)


def _keys(db: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(_KEYS).fetchall()
    finally:
        con.close()


async def test_every_event_the_feed_accepted_arrives_exactly_once(tmp_path: Path) -> None:
    """Feed -> NATS sink -> JetStream -> ingest -> DuckDB holds exactly the events the feed wrote directly."""
    direct, bus = tmp_path / "direct.duckdb", tmp_path / "bus.duckdb"
    sim = Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT", "ETHUSDT"), seed=11, rate=300.0, book_levels=40))
    async with nats_cluster() as c, sim:
        ep = sim.endpoint("futures")
        nats_url = f"{c.client_urls[0]}?spool={tmp_path / 'spool'}&ack_timeout_s=1"
        feed = Feed(feed_config(ep, "futures", ("BTCUSDT", "ETHUSDT"), sinks=(f"duckdb:{direct}", nats_url)))
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 40)
        res = await run_ingest(
            IngestConfig(c.client_urls[0], f"duckdb:{bus}", batch=500, idle_exit_s=0.5, fetch_timeout_s=0.2)
        )
    nats_stats = summary.sinks["nats"]
    assert nats_stats["dropped"] == 0 and nats_stats["written"] == summary.emitted
    direct_keys, bus_keys = _keys(direct), _keys(bus)
    assert len(bus_keys) == len(set(bus_keys)) == summary.emitted
    assert sorted(bus_keys) == sorted(direct_keys)  # type: ignore[type-var]
    assert res.duplicates == 0 and res.rejected == 0
