"""Streams spread over connections within Binance's per-connection limits.

The limit is the venue table's (``endpoints.py``: 1024 on spot and USD-M, 200 on COIN-M). All streams of one
symbol go on the same connection, so a symbol's depth, trades and ticker share one ordered byte
stream and a reconnect affects whole symbols. Symbols are packed in the order given, so a plan is
deterministic and a restart subscribes the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tickpath.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    """The streams of one connection and the symbols they belong to."""

    index: int
    symbols: tuple[str, ...]
    streams: tuple[str, ...]


def plan_shards(streams_by_symbol: Mapping[str, Sequence[str]], max_streams: int) -> list[Shard]:
    """Pack symbols' streams into connections of at most ``max_streams`` streams each."""
    if max_streams < 1:
        raise ConfigError(f"streams per connection must be at least 1, got {max_streams}")
    shards: list[Shard] = []
    syms: list[str] = []
    streams: list[str] = []
    for symbol, names in streams_by_symbol.items():
        if len(names) > max_streams:
            raise ConfigError(f"{symbol} needs {len(names)} streams but a connection takes {max_streams}")
        if len(streams) + len(names) > max_streams:
            shards.append(Shard(len(shards), tuple(syms), tuple(streams)))
            syms, streams = [], []
        syms.append(symbol)
        streams.extend(names)
    if streams:
        shards.append(Shard(len(shards), tuple(syms), tuple(streams)))
    return shards
