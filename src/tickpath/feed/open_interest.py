"""Open interest: Binance publishes it over REST only (``GET /fapi/v1/openInterest``, weight 1), so the
feed polls each contract in turn, every ``interval_s``, through the same :class:`WeightPacer` as the
depth snapshots: the polls take what the snapshots leave of the minute's budget and never push the
feed over it (a 429 stops both for its ``Retry-After``).

https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Open-Interest
https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api/Open-Interest
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConnectionFailedError, ExchangeError, RateLimitedError
from tickpath.events import Event
from tickpath.feed.snapshots import WeightPacer
from tickpath.logs import log_event
from tickpath.venues.binance.channels import OPEN_INTEREST_WEIGHT, ChannelNormalizer, open_interest_path
from tickpath.venues.binance.processor import ParseError
from tickpath.venues.binance.rest import RestClient

log = logging.getLogger(__name__)
DEFAULT_INTERVAL_S = 10.0  # Binance updates open interest about every few seconds; this is plenty


class OpenInterestPoller:
    """Polls every symbol ``symbols()`` names, one request at a time, each round ``interval_s`` apart.

    ``symbols`` is read live, not once: with ``--symbols all`` it is the feed's current set
    (:mod:`tickpath.feed.listings`), so a new listing is polled from the next round on and a delisted
    symbol is not polled again, not even later in the round it was delisted in."""

    def __init__(
        self,
        rest: RestClient,
        symbols: Callable[[], Sequence[str]],
        normalizer: ChannelNormalizer,
        emit: Callable[[list[Event]], Awaitable[None] | None],
        *,
        pacer: WeightPacer,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Clock = DEFAULT_CLOCK,
    ) -> None:
        self.rest = rest
        self.path = open_interest_path(rest.venue)
        self.symbols = symbols
        self.normalizer = normalizer
        self.emit = emit
        self.pacer = pacer
        self.interval_ns = int(interval_s * 1e9)
        self.clock = clock
        self.errors = 0
        self.polled: dict[str, int] = {}  # requests per symbol

    async def poll(self, symbol: str) -> None:
        """One request; its event goes to ``emit`` (none when Binance's time has not moved)."""
        await self.pacer.acquire(OPEN_INTEREST_WEIGHT)
        try:
            resp = await self.rest.get(self.path, {"symbol": symbol})
            events = self.normalizer.open_interest(resp.body, resp.receipt_wall_ns)
        except RateLimitedError as exc:
            self.pacer.block_for(exc.retry_after)
            self.errors += 1
            return
        except (ConnectionFailedError, ExchangeError, ParseError) as exc:  # the next round tries again
            self.errors += 1
            log_event(log, logging.WARNING, "open_interest_failed", symbol=symbol, error=exc)
            return
        self.pacer.observe(resp.used_weight)
        wait = self.emit(events) if events else None
        if wait is not None:
            await wait

    async def run(self) -> None:
        """Poll round after round until cancelled."""
        while True:
            start = self.clock.monotonic_ns()
            for symbol in list(self.symbols()):
                if symbol in self.symbols():  # still followed (a poll takes time; listings move)
                    await self.poll(symbol)
                    self.polled[symbol] = self.polled.get(symbol, 0) + 1
            await self.clock.sleep_until_ns(start + self.interval_ns)
