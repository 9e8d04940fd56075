"""Every low-rate channel end to end: simulator -> feed (default path: native core, columnar DuckDB)
-> DuckDB tables, one per channel, with contiguous seq per stream and the all-market arrays covering
every simulated symbol."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pytest

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.feed import Feed
from tickpath.feed.open_interest import OpenInterestPoller
from tickpath.feed.snapshots import WeightPacer
from tickpath.sim import SimConfig, Simulator
from tickpath.venues.binance.channels import ChannelNormalizer
from tickpath.venues.binance.rest import RestClient

from .helpers import feed_config, run_until

SYMS = ("BTCUSDT", "ETHUSDT")
SPOT = ("l2", "kline_1s", "kline_1m", "ticker24h", "miniTicker", "all_miniTicker")
FUTURES = (
    "l2",
    "kline_1m",
    "ticker24h",
    "miniTicker",
    "markPrice",
    "liquidations",
    "openInterest",
    "all_miniTicker",
    "all_ticker24h",
    "all_markPrice",
    "all_bookTicker",
)
TABLES = {
    "candles": "candles",
    "ticker24h": "tickers_24h",
    "mini_ticker": "mini_tickers",
    "mark_price": "mark_prices",
    "ticker": "tickers",
    "open_interest": "open_interest",
}


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(("venue", "channels"), [("spot", SPOT), ("futures", FUTURES)])
@virtual_time
async def test_every_channel_lands_in_its_table(
    virtual_clock: VirtualClock, venue: str, channels: tuple[str, ...], tmp_path: Path
) -> None:
    db = tmp_path / "t.duckdb"
    cfg = dict(venues=(venue,), symbols=SYMS, seed=3, rate=50.0, book_levels=40)
    async with Simulator(SimConfig(**cfg), clock=virtual_clock) as sim:  # type: ignore[arg-type]
        feed = Feed(
            feed_config(sim.endpoint(venue), venue, SYMS, channels=channels, sinks=(f"duckdb:{db}",)),
            clock=virtual_clock,
        )
        assert feed.engine is None or feed.engine.columnar  # the default path

        def enough(f: Feed) -> bool:
            by = f.pipeline.stats.by_channel
            fut = ["mark_price"] if venue == "futures" else []
            want = ["candles", "ticker24h", "mini_ticker", *fut]
            polled = venue == "spot" or by.get("open_interest", 0) >= len(SYMS)
            return (
                polled and all(by.get(c, 0) >= 8 for c in want) and (venue == "futures" or by.get("candles", 0) >= 12)
            )

        summary = await run_until(feed, enough, timeout_s=20.0, min_s=2.5)
    assert summary.malformed == 0
    for channel, table in TABLES.items():
        if channel in ("mark_price", "ticker", "open_interest") and venue == "spot":  # futures only
            continue
        per_stream = _rows(db, f"SELECT symbol, count(*), min(seq), max(seq) FROM {table} GROUP BY symbol")
        assert {r[0] for r in per_stream} == set(SYMS), table
        assert all(n == mx and mn == 1 for _, n, mn, mx in per_stream), f"{table}: seq not contiguous"
    mini_per_symbol = dict(_rows(db, "SELECT symbol, count(*) FROM mini_tickers GROUP BY symbol"))
    assert all(int(n) >= 2 for n in mini_per_symbol.values())  # the per-symbol stream and the array
    kline = _rows(db, "SELECT interval, closed, open, high, low, close, open_time_ms, close_time_ms FROM candles")
    assert {r[0] for r in kline} >= ({"1s", "1m"} if venue == "spot" else {"1m"})
    for _, _, o, h, lo, c, t, ct in kline:
        assert float(lo) <= min(float(o), float(c)) <= max(float(o), float(c)) <= float(h) and t < ct  # type: ignore[arg-type]
    if venue == "spot":  # 1 s candles close during the run, one after the other
        closed = _rows(db, "SELECT open_time_ms FROM candles WHERE interval = '1s' AND closed AND symbol = 'BTCUSDT'")
        opens = sorted(int(r[0]) for r in closed)  # type: ignore[call-overload]
        assert len(opens) >= 2 and all(b - a == 1000 for a, b in itertools.pairwise(opens))
    else:
        marks = _rows(db, "SELECT mark_price, index_price, funding_rate, next_funding_time_ms FROM mark_prices")
        assert marks and all(r[2] is not None and int(r[3]) % (8 * 3_600_000) == 0 for r in marks)  # type: ignore[call-overload]


async def test_open_interest_polls_are_paced_by_the_shared_weight_budget() -> None:
    """Each poll takes weight 1 from the pacer the snapshots use; the simulator's weight header agrees,
    and a symbol it does not list is an error counted, not a crash."""
    events: list[object] = []
    sim_cfg = SimConfig(venues=("futures",), symbols=SYMS, seed=3, rate=20.0, book_levels=20)
    async with (
        Simulator(sim_cfg) as sim,
        RestClient("futures", sim.endpoint("futures").rest_url) as rest,
    ):
        pacer = WeightPacer(2400)
        poller = OpenInterestPoller(
            rest, lambda: [*SYMS, "NOPEUSDT"], ChannelNormalizer("futures", session="s"), events.extend, pacer=pacer
        )
        for s in (*SYMS, "NOPEUSDT"):
            await poller.poll(s)
    assert [e.symbol for e in events] == list(SYMS)  # type: ignore[attr-defined]
    assert pacer.used == 3 and rest.used_weight == 3 and poller.errors == 1
