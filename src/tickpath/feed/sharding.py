"""Which symbols a shard (one machine, ``--shard i/N``) and a worker (one process, ``--workers W``) own.

The hash is CRC-32 (zlib's, the IEEE polynomial) of the symbol's UTF-8 bytes: ``h = crc32(symbol)``.
Machine shard ``i`` of ``N`` owns the symbols with ``h % N == i``; inside it, worker ``k`` of ``W``
owns those with ``(h // N) % W == k``. CRC-32 is the same on every machine, Python version and
language (``hash()`` is salted per process), so the same symbol always lands on the same shard and
worker for the same N and W, a restarted worker gets back exactly its symbols, and a listing only
ever adds a symbol to one place. Using ``h // N`` for the worker keeps the two levels independent:
with ``h % W`` and N == W every symbol of shard ``i`` would land on worker ``i``.

An all-market stream (``!miniTicker@arr``: one stream carrying every symbol) has exactly one owner,
so it is stored once: machine shard 0, worker ``all_market_worker`` (0 unless the supervisor says
otherwise: it picks its first worker that owns a symbol). Every other shard and worker leaves it out.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from tickpath.errors import ConfigError

_SPEC_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def symbol_hash(symbol: str) -> int:
    """The stable hash every placement uses: CRC-32 of the UTF-8 symbol (upper case, as Binance spells it)."""
    return zlib.crc32(symbol.encode("utf-8"))


@dataclass(frozen=True)
class ShardSpec:
    """Machine shard ``index`` of ``count`` and, inside it, worker ``worker`` of ``workers``."""

    index: int = 0
    count: int = 1
    worker: int = 0
    workers: int = 1
    all_market_worker: int = 0  # which worker of shard 0 subscribes the all-market streams

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: use i/N with 0 <= i < N, e.g. --shard 0/2")
        if self.workers < 1 or not 0 <= self.worker < self.workers:
            raise ConfigError(f"worker {self.worker}/{self.workers}: use k/W with 0 <= k < W")

    @property
    def trivial(self) -> bool:
        """True when it owns every symbol (one shard, one worker)."""
        return self.count == 1 and self.workers == 1

    @property
    def owns_all_market(self) -> bool:
        """True for the one process that subscribes the all-market streams."""
        return self.index == 0 and self.worker == self.all_market_worker

    def owns(self, symbol: str) -> bool:
        h = symbol_hash(symbol)
        return h % self.count == self.index and (h // self.count) % self.workers == self.worker

    def select(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """The symbols this shard/worker owns, in the order given."""
        return tuple(s for s in symbols if self.owns(s))

    def with_worker(self, worker: int, workers: int, *, all_market_worker: int = 0) -> ShardSpec:
        return ShardSpec(self.index, self.count, worker, workers, all_market_worker)

    def label(self) -> str:
        machine = f"{self.index}/{self.count}"
        return machine if self.workers == 1 else f"{machine} worker {self.worker}/{self.workers}"


def parse_shard(text: str) -> ShardSpec:
    """``"1/4"`` -> ShardSpec(index=1, count=4); anything else is a one-line ConfigError."""
    m = _SPEC_RE.match(text)
    if m is None:
        raise ConfigError(f"--shard {text!r}: use i/N (this machine's index and the number of machines), e.g. 0/2")
    return ShardSpec(int(m.group(1)), int(m.group(2)))


def plan_workers(symbols: Iterable[str], spec: ShardSpec, workers: int) -> list[tuple[str, ...]]:
    """The symbols of each of ``workers`` workers inside ``spec``'s machine shard (some may be empty)."""
    syms = tuple(symbols)
    return [spec.with_worker(k, workers).select(syms) for k in range(workers)]
