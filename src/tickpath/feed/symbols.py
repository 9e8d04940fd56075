"""Check the feed's symbols against the venue's exchangeInfo before anything is opened.

Binance accepts a WebSocket subscription to a symbol it does not list and then sends nothing for it,
and answers its depth snapshot with -1121 "Invalid symbol." for ever: a typo would otherwise show up
only as a book that never syncs. One exchangeInfo request at start turns it into a clear error.
The check is advisory when it cannot be made (venue unreachable, rate limited, a REST proxy without
exchangeInfo): the feed says so and goes on, since its own reconnects and resyncs cope with that.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tickpath.errors import TickpathError
from tickpath.feed.universe import unknown_symbols_error
from tickpath.logs import log_event
from tickpath.venues.binance.rest import TRADING, ExchangeInfoApi, RestClient

log = logging.getLogger(__name__)


async def check_symbols(
    rest: RestClient, symbols: Sequence[str], api: ExchangeInfoApi | None = None
) -> dict[str, str] | None:
    """Raise :class:`UnknownSymbolError` for symbols the venue does not list (naming the nearest
    listed ones); warn for listed ones not trading (their streams may be silent). Returns each
    symbol's status, or None when the venue could not be asked. ``api`` (default: a new one over
    ``rest``) keeps what exchangeInfo said, its weight limit included."""
    api = api or ExchangeInfoApi(rest)
    try:
        statuses = await api.statuses(symbols)
    except TickpathError as exc:
        log_event(log, logging.WARNING, "symbol_check_skipped", venue=rest.venue, error=str(exc))
        return None
    unknown = [s.upper() for s in symbols if s.upper() not in statuses]
    if unknown:
        try:  # one more request, on the error path only: the whole list, for the nearest names
            listed: list[str] = list(await api.listing())
        except TickpathError:
            listed = []
        raise unknown_symbols_error(
            unknown,
            listed,
            f" on Binance {rest.venue} (exchangeInfo at {rest.base_url}); check the spelling and the venue "
            "(spot and USD-M futures list different symbols)",
        )
    for sym, status in statuses.items():
        if status and status != TRADING:
            log_event(log, logging.WARNING, "symbol_not_trading", venue=rest.venue, symbol=sym, status=status)
    return statuses
