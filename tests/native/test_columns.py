"""The columnar path: native events as Arrow tables equal the reference's events in tickpath.tables' layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.native.harness import Pair
from tests.native.test_differential import CAPTURES, _replay
from tickpath.sinks.duckdb import arrow_tables
from tickpath.venues.binance.processor import HANDOFF, NativeProcessor


class _Tee(Pair):
    """A Pair whose inputs also go to a third, columnar native processor."""

    columnar: NativeProcessor
    handed: list[Any]  # events of frames the core handed back (klines...): the event path, as in the feed

    def frame(self, raw: bytes | str, receipt_ns: int) -> Any:
        if self.columnar.feed(raw, receipt_ns) == HANDOFF:
            try:
                self.handed.extend(self.columnar.handoff(raw, receipt_ns))
            except Exception:  # the pair compares rejections
                pass
        return super().frame(raw, receipt_ns)

    def snapshot(self, symbol: str, body: bytes | str, receipt_ns: int) -> Any:
        try:
            self.columnar.feed_snapshot(symbol, body, receipt_ns)
        except Exception:  # the pair compares rejections; here only accepted events matter
            pass
        return super().snapshot(symbol, body, receipt_ns)

    def reset(self, symbol: str, reason: str, receipt_ns: int) -> Any:
        self.columnar.core.reset(symbol, reason, receipt_ns)
        return super().reset(symbol, reason, receipt_ns)


@pytest.mark.parametrize("venue", ["futures", "spot"])
@pytest.mark.parametrize("depth", [None, 3])
def test_tables_equal_the_reference_events(shared_captures: Path, venue: str, depth: int | None) -> None:
    base = Pair.make(venue, depth=depth)
    tee = _Tee(base.pure, base.native)
    tee.columnar = NativeProcessor(venue, session="s", depth=depth)  # type: ignore[arg-type]
    tee.handed = []
    _replay(tee, shared_captures, CAPTURES[venue])
    tee.reset("SUSHIUSDT" if venue == "futures" else "NKNUSDT", "connection_lost", 1)  # a reset row too
    want = arrow_tables(tee.events)
    got = tee.columnar.take_tables() | arrow_tables(tee.handed)
    assert {"l2", "trades", "tickers"} <= set(got) == set(want)
    for table, t in got.items():
        assert t.schema == want[table].schema
        assert t.equals(want[table]), table
    assert "reset" in got["l2"]["kind"].to_pylist()
    assert tee.columnar.take_tables() == {}  # taken once
