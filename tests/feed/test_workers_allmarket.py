"""All-market streams (``!miniTicker@arr``: one stream, every symbol) under ``--workers``/``--shard``:
exactly one process subscribes each, so each row is stored once."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tickpath.errors import ConfigError
from tickpath.feed.config import FeedConfig
from tickpath.feed.run import plan_connections
from tickpath.feed.sharding import ShardSpec
from tickpath.feed.supervisor import Supervisor, worker_configs
from tickpath.feed.universe import parse_selection
from tickpath.sim import SimConfig, Simulator

SYMBOLS = tuple(f"S{i:02d}USDT" for i in range(12))
ALL = "!miniTicker@arr"


def _subscribers(configs: list[FeedConfig]) -> list[int]:
    return [i for i, c in enumerate(configs) if any(ALL in sh.streams for sh in plan_connections(c))]


def test_one_worker_of_one_machine_owns_each_all_market_stream() -> None:
    channels = ("l2", "all_miniTicker")
    for machines in (1, 2, 3):
        configs = [
            c
            for i in range(machines)
            for _, c in worker_configs(
                FeedConfig(venue="spot", symbols=SYMBOLS, channels=channels, shard=ShardSpec(i, machines)), 3
            )
        ]
        assert len(_subscribers(configs)) == 1, machines
        owner = configs[_subscribers(configs)[0]]
        assert owner.shard is not None and owner.shard.index == 0
    single = FeedConfig(venue="spot", symbols=SYMBOLS, channels=channels)
    assert _subscribers([single]) == [0]  # one process: as before


def test_a_worker_the_hash_gives_no_symbol_is_left_out_and_the_next_owns_all_market() -> None:
    owned0 = [s for s in SYMBOLS if ShardSpec().with_worker(0, 2).owns(s)]
    cfg = FeedConfig(venue="spot", symbols=tuple(s for s in SYMBOLS if s not in owned0), channels=("all_miniTicker",))
    placed = worker_configs(cfg, 2)
    assert [k for k, _ in placed] == [1]  # worker 0 would own none: not started (it used to be an error)
    assert _subscribers([c for _, c in placed]) == [0]
    dynamic = FeedConfig(venue="spot", symbols=(), selection=parse_selection("all"), channels=("all_miniTicker",))
    shares = worker_configs(dynamic, 2)
    assert [k for k, _ in shares] == [0, 1]  # listings may give any worker symbols later
    # worker 0 owns the stream even before it has a symbol: a connection of its own
    assert [sh.streams for sh in plan_connections(shares[0][1])] == [(ALL,)]
    assert plan_connections(shares[1][1]) == []


def test_machine_shard_0_owning_none_of_the_list_still_runs_for_the_all_market_streams() -> None:
    """--shard 0/N given none of an explicit list still subscribes the all-market streams (no other
    machine does); without them, or on another shard, owning none stays a one-line error."""
    none0 = tuple(s for s in SYMBOLS if not ShardSpec(0, 2).owns(s))
    alone = FeedConfig(venue="spot", symbols=none0, channels=("l2", "all_miniTicker"), shard=ShardSpec(0, 2))
    assert alone.symbols == () and [sh.streams for sh in plan_connections(alone)] == [(ALL,)]
    placed = worker_configs(
        FeedConfig(venue="spot", symbols=none0, channels=("l2", "all_miniTicker"), shard=ShardSpec(0, 2)), 2
    )
    assert [k for k, _ in placed] == [0] and _subscribers([c for _, c in placed]) == [0]
    with pytest.raises(ConfigError, match="owns none"):
        FeedConfig(venue="spot", symbols=none0, channels=("l2",), shard=ShardSpec(0, 2))
    none1 = tuple(s for s in SYMBOLS if not ShardSpec(1, 2).owns(s))
    with pytest.raises(ConfigError, match="owns none"):
        FeedConfig(venue="spot", symbols=none1, channels=("l2", "all_miniTicker"), shard=ShardSpec(1, 2))


@pytest.mark.integration  # worker processes under a real supervisor
async def test_two_workers_store_each_all_market_row_once(tmp_path: Path) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    db = tmp_path / "ticks.duckdb"
    async with Simulator(SimConfig(venues=("spot",), symbols=symbols, rate=50.0, book_levels=20)) as sim:
        ep = sim.endpoint("spot")
        cfg = FeedConfig(
            venue="spot",
            symbols=symbols,
            channels=("trades", "all_miniTicker"),
            sinks=(f"duckdb:{db}",),
            base_url=ep.ws_url,
            rest_url=ep.rest_url,
            duration_s=4.0,
        )
        sup = Supervisor(cfg, 2)
        assert len(sup.workers) == 2
        merged = await sup.run()
    assert merged["restarts"] == 0
    con = duckdb.connect(str(db), read_only=True)
    by_session = con.execute("SELECT session, count(DISTINCT symbol) FROM mini_tickers GROUP BY session").fetchall()
    dup = con.execute(
        "SELECT count(*) FROM (SELECT symbol, event_time_ms FROM mini_tickers GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    trade_sessions = con.execute("SELECT count(DISTINCT session) FROM trades").fetchone()
    con.close()
    assert trade_sessions == (2,)  # both workers ran
    assert len(by_session) == 1 and by_session[0][1] == len(symbols)  # one worker stored every symbol's
    assert dup == (0,)
