"""What a lost shard's log line names: the first few symbols and a count, whatever the shard's size."""

from __future__ import annotations

from tickpath.feed.rollover import symbols_for_log


def test_a_small_shard_is_named_in_full() -> None:
    assert symbols_for_log(("BTCUSDT", "ETHUSDT")) == "BTCUSDT,ETHUSDT"
    assert symbols_for_log(tuple(f"S{i}" for i in range(8))) == "S0,S1,S2,S3,S4,S5,S6,S7"


def test_a_whole_exchange_shard_is_named_by_its_first_eight_and_counted() -> None:
    line = symbols_for_log(tuple(f"S{i:04d}USDT" for i in range(2000)))
    assert line == "S0000USDT,S0001USDT,S0002USDT,S0003USDT,S0004USDT,S0005USDT,S0006USDT,S0007USDT,+1992 more"
