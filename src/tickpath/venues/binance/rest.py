"""Binance public REST market data: depth snapshots, server time, exchange info.

One small class per endpoint group, each with the docs link, over one shared :class:`RestClient`
that owns the HTTP session, reads ``x-mbx-used-weight-1m`` from every answer and translates HTTP and
transport failures into tickpath errors where they enter:

- 429 (rate limited) and 418 (IP banned) become :class:`RateLimitedError` with ``retry_after`` from
  the ``Retry-After`` header (seconds);
- other 4xx/5xx become :class:`ExchangeError` with Binance's ``code`` when the body carries one;
- connection failures become :class:`ConnectionFailedError`.

Bodies are returned as bytes; parsing them into wire types is :mod:`tickpath.venues.binance.parse`'s job.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, ConnectionFailedError, ExchangeError, RateLimitedError
from tickpath.transports import AiohttpHttpTransport, HttpTransport
from tickpath.venues.binance.endpoints import Venue, endpoints, validate_depth_limit

WEIGHT_HEADER = "x-mbx-used-weight-1m"
INVALID_SYMBOL = -1121  # Binance's error code for a symbol it does not list
DEFAULT_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class RestResponse:
    """One successful answer: body bytes, the venue's view of weight used this minute, and timing."""

    url: str
    status: int
    body: bytes
    used_weight: int | None
    sent_ns: int  # monotonic, just before the request was written
    receipt_ns: int  # monotonic, when the body was complete
    receipt_wall_ns: int


class RestClient:
    """HTTP GETs against one venue's REST base URL, with weight accounting and error translation.

    ``on_response(url, receipt_wall_ns, body)`` is called for every successful answer (``--record``).
    """

    def __init__(
        self,
        venue: Venue,
        base_url: str | None = None,
        *,
        clock: Clock = DEFAULT_CLOCK,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        on_response: Callable[[str, int, bytes], None] | None = None,
        http: HttpTransport | None = None,
    ) -> None:
        self.venue = venue
        self.endpoints = endpoints(venue)
        self.base_url = (base_url or self.endpoints.rest_base).rstrip("/")
        self.clock = clock
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context  # None: the system's CAs
        self.on_response = on_response
        self.used_weight: int | None = None  # last x-mbx-used-weight-1m seen
        self.requests = 0
        self._http = http or AiohttpHttpTransport(timeout_s, ssl_context)

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> RestResponse:
        """GET ``path``; raises RateLimitedError / ExchangeError / ConnectionFailedError."""
        url = self.base_url + path
        if params:
            url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        sent = self.clock.monotonic_ns()
        self.requests += 1
        try:
            reply = await self._http.get(url)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ConnectionFailedError(f"GET {url} failed: {exc or type(exc).__name__}") from exc
        status, headers, body = reply.status, reply.headers, reply.body
        received = self.clock.monotonic_ns()
        wall = self.clock.wall_ns()
        used = headers.get(WEIGHT_HEADER)
        if used is not None and used.isdigit():
            self.used_weight = int(used)
        if status in (429, 418):
            retry = _retry_after(headers.get("retry-after"))
            what = "rate limited (429)" if status == 429 else "IP banned (418)"
            raise RateLimitedError(f"GET {path}: {what}, retry after {retry:g} s", status=status, retry_after=retry)
        if status >= 400:
            code, msg = _error_body(body)
            raise ExchangeError(
                f"GET {path}: HTTP {status}{f' code {code}' if code is not None else ''}{f': {msg}' if msg else ''}",
                status=status,
                code=code,
            )
        if self.on_response is not None:
            self.on_response(url, wall, body)
        return RestResponse(url, status, body, self.used_weight, sent, received, wall)


def tls_connector(ctx: ssl.SSLContext | None) -> aiohttp.TCPConnector | None:
    """A connector verifying against ``ctx`` (e.g. ``--ca-file``), or None for aiohttp's default."""
    return aiohttp.TCPConnector(ssl=ctx) if ctx is not None else None


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def _error_body(body: bytes) -> tuple[int | None, str]:
    try:
        doc = json.loads(body)
    except ValueError:
        return None, body[:120].decode("utf-8", "replace")
    if isinstance(doc, dict):
        code = doc.get("code")
        return (code if isinstance(code, int) else None), str(doc.get("msg", ""))[:200]
    return None, ""


class DepthApi:
    """Order book snapshot: ``GET /api/v3/depth`` (spot) or ``GET /fapi/v1/depth`` (USD-M).

    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#order-book
    https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Order-Book
    """

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def weight(self, limit: int) -> int:
        return self.client.endpoints.depth_weight(limit)

    def check_limit(self, limit: int) -> int:
        try:
            return validate_depth_limit(self.client.venue, limit)
        except ValueError as exc:
            raise ConfigError(f"{self.client.venue} depth snapshot: {exc}") from None

    async def get(self, symbol: str, limit: int) -> RestResponse:
        return await self.client.get(self.client.endpoints.depth_path, {"symbol": symbol.upper(), "limit": limit})


class TimeApi:
    """Server time: ``GET /api/v3/time`` / ``GET /fapi/v1/time`` -> ``{"serverTime": ms}``.

    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints#check-server-time
    """

    def __init__(self, client: RestClient) -> None:
        self.client = client

    async def get(self) -> tuple[int, RestResponse]:
        resp = await self.client.get(self.client.endpoints.time_path)
        try:
            server_ms = int(json.loads(resp.body)["serverTime"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ExchangeError(f"time endpoint answered without serverTime: {resp.body[:80]!r}") from exc
        return server_ms, resp


TRADING = "TRADING"


@dataclass(frozen=True)
class SymbolInfo:
    """One symbol of exchangeInfo: its status (TRADING, BREAK, ...), assets and (futures) contract type."""

    symbol: str
    status: str
    base: str = ""
    quote: str = ""
    contract_type: str = ""  # PERPETUAL, CURRENT_QUARTER, ...; empty on spot


class ExchangeInfoApi:
    """Symbols and rate limits: ``GET /api/v3/exchangeInfo`` / ``GET /fapi/v1/exchangeInfo``.

    https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints#exchange-information
    """

    def __init__(self, client: RestClient) -> None:
        self.client = client
        self._weight_limit: int | None = None

    @property
    def weight_limit(self) -> int | None:
        """The REQUEST_WEIGHT limit per minute the last answer stated (``rateLimits``), if any."""
        return self._weight_limit

    @property
    def weight(self) -> int:
        """Request weight of the whole list (spot 20, USD-M 1)."""
        return self.client.endpoints.exchange_info_weight

    async def symbols(self) -> list[str]:
        return list(await self._statuses())

    async def listing(self) -> dict[str, SymbolInfo]:
        """Every symbol the venue lists, with its status, assets and contract type."""
        resp = await self.client.get(self.client.endpoints.exchange_info_path)
        try:
            doc = json.loads(resp.body)
            self._weight_limit = _minute_weight_limit(doc.get("rateLimits"))
            return {
                str(s["symbol"]): SymbolInfo(
                    str(s["symbol"]),
                    str(s.get("status") or s.get("contractStatus") or ""),
                    str(s.get("baseAsset", "")),
                    str(s.get("quoteAsset", "")),
                    str(s.get("contractType", "")),
                )
                for s in doc["symbols"]
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise ExchangeError("exchangeInfo answered without a symbols list") from exc

    async def statuses(self, symbols: Sequence[str]) -> dict[str, str]:
        """The trading status (TRADING, BREAK, ...) of each of ``symbols`` the venue lists; a symbol
        it does not list is absent. Spot is asked for just these symbols (weight 20) and, when one
        of them is invalid (-1121, which does not say which), for the whole list; USD-M futures has
        no such filter and always answers with the whole list (weight 1)."""
        wanted = [s.upper() for s in symbols]
        param = self.client.endpoints.exchange_info_symbols_param
        if param is not None:
            try:
                return await self._statuses({param: quote(json.dumps(wanted, separators=(",", ":")))})
            except ExchangeError as exc:
                if exc.code != INVALID_SYMBOL:
                    raise
        listed = await self._statuses()
        return {s: listed[s] for s in wanted if s in listed}

    async def _statuses(self, params: dict[str, Any] | None = None) -> dict[str, str]:
        resp = await self.client.get(self.client.endpoints.exchange_info_path, params)
        try:
            doc = json.loads(resp.body)
            self._weight_limit = _minute_weight_limit(doc.get("rateLimits")) or self._weight_limit
            return {str(s["symbol"]): str(s.get("status") or s.get("contractStatus") or "") for s in doc["symbols"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ExchangeError("exchangeInfo answered without a symbols list") from exc


def _minute_weight_limit(limits: object) -> int | None:
    """REQUEST_WEIGHT per minute from exchangeInfo's ``rateLimits`` (None when absent)."""
    if not isinstance(limits, list):
        return None
    for rl in limits:
        if (
            isinstance(rl, dict)
            and rl.get("rateLimitType") == "REQUEST_WEIGHT"
            and rl.get("interval") == "MINUTE"
            and rl.get("intervalNum", 1) == 1
            and isinstance(rl.get("limit"), int)
        ):
            return int(rl["limit"])
    return None
