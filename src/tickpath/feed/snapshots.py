"""Depth snapshots fetched within the venue's request-weight budget, and the start-up clock offset.

Binance counts request weight per IP per minute (spot 6000, USD-M 2400) and answers 429 when it is
exceeded, then 418 (a ban of minutes, escalating) if the client keeps going. Hundreds of symbols
starting at once would each ask for a snapshot (spot ``limit=5000`` weighs 250), so the fetcher:

- asks one snapshot at a time, after :class:`WeightPacer` grants its weight: the pacer counts what it
  spent this minute, trusts the venue's ``x-mbx-used-weight-1m`` when that is higher (other clients
  on the same IP), and keeps a safety margin below the budget;
- on 429/418 stops all requests for ``Retry-After`` seconds and queues the symbol again;
- on transport or exchange errors backs off exponentially (with jitter) and retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConnectionFailedError, ExchangeError, RateLimitedError
from tickpath.logs import log_event
from tickpath.probe.clock_offset import OffsetEstimate, OffsetSample, estimate_offset
from tickpath.venues.binance.rest import DepthApi, RestClient, RestResponse, TimeApi

log = logging.getLogger(__name__)

MINUTE_NS = 60_000_000_000


class WeightPacer:
    """Grants request weight so that the per-minute budget (times ``safety``) is never exceeded.

    Binance's window is the calendar minute of its clock; ours is the local wall minute, and the
    safety margin absorbs the difference.
    """

    def __init__(self, budget_per_minute: int, *, safety: float = 0.8, clock: Clock = DEFAULT_CLOCK) -> None:
        self.limit = max(1, int(budget_per_minute * safety))
        self.clock = clock
        self.used = 0
        self._window = clock.wall_ns() // MINUTE_NS
        self._blocked_until_mono = 0
        self.waits = 0
        self.waited_ns = 0

    def _roll(self) -> None:
        window = self.clock.wall_ns() // MINUTE_NS
        if window != self._window:
            self._window = window
            self.used = 0

    def observe(self, used_weight: int | None) -> None:
        """Take the venue's view of the weight used this minute (``x-mbx-used-weight-1m``)."""
        if used_weight is not None:
            self._roll()
            self.used = max(self.used, used_weight)

    def block_for(self, seconds: float) -> None:
        """Stop granting weight for ``seconds`` (a 429/418 ``Retry-After``)."""
        until = self.clock.monotonic_ns() + int(seconds * 1e9)
        self._blocked_until_mono = max(self._blocked_until_mono, until)

    async def _sleep_ns(self, delay_ns: int) -> None:
        self.waits += 1
        self.waited_ns += delay_ns
        await self.clock.sleep_until_ns(self.clock.monotonic_ns() + delay_ns)

    async def acquire(self, weight: int) -> None:
        """Wait until ``weight`` fits in this minute's budget, then count it as used."""
        if weight > self.limit:
            weight = self.limit  # a single request heavier than the budget still has to go out
        while True:
            now = self.clock.monotonic_ns()
            if now < self._blocked_until_mono:
                await self._sleep_ns(self._blocked_until_mono - now)
                continue
            self._roll()
            if self.used + weight <= self.limit:
                self.used += weight
                return
            wall = self.clock.wall_ns()
            await self._sleep_ns((wall // MINUTE_NS + 1) * MINUTE_NS - wall + 1_000_000)


@dataclass
class SnapshotStats:
    requested: int = 0
    fetched: int = 0
    rate_limited: int = 0
    errors: int = 0
    weight_waits: int = 0
    last_error: str = ""
    fetch_ns: list[int] = field(default_factory=list)


SnapshotHandler = Callable[[str, RestResponse], Awaitable[None] | None]


class SnapshotFetcher:
    """A queue of symbols that need a snapshot, served one at a time within the weight budget."""

    def __init__(
        self,
        client: RestClient,
        on_snapshot: SnapshotHandler,
        *,
        limit: int,
        pacer: WeightPacer | None = None,
        clock: Clock = DEFAULT_CLOCK,
        retry_base_s: float = 0.2,
        retry_max_s: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.client = client
        self.depth = DepthApi(client)
        self.limit = self.depth.check_limit(limit)
        self.weight = self.depth.weight(self.limit)
        self.pacer = pacer or WeightPacer(client.endpoints.weight_budget_per_minute, clock=clock)
        self.clock = clock
        self.on_snapshot = on_snapshot
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.stats = SnapshotStats()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: set[str] = set()
        self._rng = random.Random(seed)
        self._failures: dict[str, int] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def request(self, symbol: str) -> bool:
        """Queue ``symbol`` unless it is already waiting; True when newly queued."""
        if symbol in self._pending:
            return False
        self._pending.add(symbol)
        self.stats.requested += 1
        self._queue.put_nowait(symbol)
        return True

    async def _backoff(self, symbol: str) -> None:
        n = self._failures.get(symbol, 0) + 1
        self._failures[symbol] = n
        cap = min(self.retry_max_s, self.retry_base_s * 2.0 ** (n - 1))
        delay = self._rng.uniform(cap / 2, cap)  # "equal jitter": never zero, never synchronised
        await self.clock.sleep_until_ns(self.clock.monotonic_ns() + int(delay * 1e9))

    async def run(self) -> None:
        """Serve the queue forever (cancel to stop)."""
        while True:
            symbol = await self._queue.get()
            waits = self.pacer.waits
            await self.pacer.acquire(self.weight)
            self.stats.weight_waits += self.pacer.waits - waits
            try:
                resp = await self.depth.get(symbol, self.limit)
            except RateLimitedError as exc:
                self.stats.rate_limited += 1
                self.pacer.block_for(exc.retry_after)
                log_event(
                    log,
                    logging.WARNING,
                    "snapshot_rate_limited",
                    symbol=symbol,
                    status=exc.status,
                    retry_after_s=exc.retry_after,
                )
                self._queue.put_nowait(symbol)
                continue
            except (ConnectionFailedError, ExchangeError) as exc:
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                log_event(log, logging.WARNING, "snapshot_failed", symbol=symbol, error=exc)
                await self._backoff(symbol)
                self._queue.put_nowait(symbol)
                continue
            self.pacer.observe(resp.used_weight)
            self._pending.discard(symbol)
            self._failures.pop(symbol, None)
            self.stats.fetched += 1
            self.stats.fetch_ns.append(resp.receipt_ns - resp.sent_ns)
            if len(self.stats.fetch_ns) > 1000:
                del self.stats.fetch_ns[:500]
            result = self.on_snapshot(symbol, resp)
            if result is not None:
                await result


async def measure_clock_offset(client: RestClient, *, samples: int = 10) -> OffsetEstimate | None:
    """Exchange clock minus local clock from ``samples`` server-time requests (min-RTT midpoint).

    Uses the estimator of :mod:`tickpath.probe.clock_offset`; None when the venue does not answer
    (the feed still runs; ``feed_sessions`` then records no offset).
    """
    api = TimeApi(client)
    clock = client.clock
    mono_ref, wall_ref = clock.monotonic_ns(), clock.wall_ns()
    out: list[OffsetSample] = []
    for _ in range(samples):
        try:
            server_ms, resp = await api.get()
        except (ConnectionFailedError, ExchangeError) as exc:
            log_event(log, logging.INFO, "clock_offset_sample_failed", error=exc)
            continue
        out.append(OffsetSample(wall_ref + resp.sent_ns - mono_ref, wall_ref + resp.receipt_ns - mono_ref, server_ms))
    return estimate_offset(out) if out else None
