"""REST endpoints: depth, time, ping, exchangeInfo, with Binance's request-weight accounting.

Weight is counted per client IP and venue in fixed one-minute windows (Binance's
``REQUEST_WEIGHT`` / ``x-mbx-used-weight-1m``). Past the budget a request is answered 429 with
``Retry-After`` (seconds to the end of the window); a client that sends more than
``ban_after_429`` requests while limited is banned with 418 for ``ban_s`` seconds, doubling on
each repeat, as Binance escalates bans "from 2 minutes to 3 days".
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from tickpath.sim import payloads
from tickpath.sim.channels import open_interest_body
from tickpath.sim.context import CTX, ListenerContext
from tickpath.sim.latency import sleep_delay
from tickpath.sim.market import KNOWN_QUOTES, spec_for
from tickpath.venues.binance.channels import OPEN_INTEREST_WEIGHT, is_derivatives, open_interest_path
from tickpath.venues.binance.endpoints import validate_depth_limit

_JSON = "application/json;charset=UTF-8"


@dataclass
class _ClientWeight:
    minute: int = -1
    used: int = 0
    limited_requests: int = 0
    ban_until: float = 0.0
    bans: int = 0


class WeightLedger:
    """Request weight used per client IP in the current minute, for one venue."""

    def __init__(self, budget: int, ban_after_429: int, ban_s: float) -> None:
        self.budget = budget
        self.ban_after = ban_after_429
        self.ban_s = ban_s
        self.clients: dict[str, _ClientWeight] = {}
        self.answered_429 = 0  # over the whole run, every client (tests: "never a 429")
        self.answered_418 = 0

    def charge(self, ip: str, weight: int, now_s: float) -> tuple[int, int, float]:
        """Charge ``weight``; returns (HTTP status to answer, weight used this minute, retry-after s)."""
        st = self.clients.setdefault(ip, _ClientWeight())
        if st.ban_until > now_s:
            self.answered_418 += 1
            return 418, st.used, st.ban_until - now_s
        minute = int(now_s // 60)
        if minute != st.minute:
            st.minute, st.used, st.limited_requests = minute, 0, 0
        st.used += weight
        if st.used <= self.budget:
            return 200, st.used, 0.0
        st.limited_requests += 1
        if st.limited_requests > self.ban_after:
            st.bans += 1
            st.ban_until = now_s + self.ban_s * 2 ** (st.bans - 1)
            self.answered_418 += 1
            return 418, st.used, st.ban_until - now_s
        self.answered_429 += 1
        return 429, st.used, (minute + 1) * 60 - now_s

    def used(self, ip: str) -> int:
        st = self.clients.get(ip)
        return st.used if st else 0


def _answer(ctx: ListenerContext, status: int, body: bytes, used: int, retry_after: float = 0.0) -> web.Response:
    headers = {"x-mbx-used-weight-1m": str(used)}
    if ctx.ep.rules == "spot":  # the spot-family APIs also send the legacy un-suffixed header
        headers["x-mbx-used-weight"] = str(used)
    if status in (418, 429):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return web.Response(status=status, body=body, content_type=None, headers={**headers, "Content-Type": _JSON})


def _err(code: int, msg: str) -> bytes:
    return orjson.dumps({"code": code, "msg": msg})


async def _metered(request: web.Request, weight: int) -> tuple[ListenerContext, int, web.Response | None]:
    """Inbound delay, then weight accounting; returns a ready 429/418 answer when limited."""
    ctx = request.app[CTX]
    sampler = ctx.sampler("rest")
    await sleep_delay(sampler)
    ip = request.remote or "?"
    loop_now = asyncio.get_running_loop().time()
    forced = ctx.faults.rate_limited_until.get(ctx.venue, 0.0)
    if forced > loop_now:
        return (
            ctx,
            ctx.weights.used(ip),
            _answer(ctx, 429, _err(-1003, "Too many requests (simulated)."), ctx.weights.used(ip), forced - loop_now),
        )
    status, used, retry = ctx.weights.charge(ip, weight, ctx.clock.wall_ns() / 1e9)
    if status == 429:
        msg = (
            f"Too many requests; current limit of IP({ip}) request weight per minute is "
            f"{ctx.weights.budget}. Please use WebSocket Streams for live updates to avoid polling the API."
        )
        return ctx, used, _answer(ctx, 429, _err(-1003, msg), used, retry)
    if status == 418:
        msg = f"Way too many requests; IP({ip}) banned until {int((ctx.clock.wall_ns() / 1e9 + retry) * 1000)}."
        return ctx, used, _answer(ctx, 418, _err(-1003, msg), used, retry)
    return ctx, used, None


async def _reply(request: web.Request, ctx: ListenerContext, status: int, body: bytes, used: int) -> web.Response:
    await sleep_delay(ctx.sampler("rest-out"))
    return _answer(ctx, status, body, used)


async def handle_depth(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    q = request.rel_url.query
    raw_limit = q.get("limit")
    limit = ctx.ep.depth_default_limit
    limit_error: bytes | None = None
    if raw_limit is not None:
        if not raw_limit.isdigit() or len(raw_limit) > 20:
            limit_error = _err(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
        else:
            try:
                limit = validate_depth_limit(ctx.ep.venue, int(raw_limit))
            except ValueError:
                limit_error = _err(-1130, "Data sent for parameter 'limit' is not valid.")
    ctx, used, limited = await _metered(request, ctx.ep.depth_weight(limit))
    if limited is not None:
        return limited
    if limit_error is not None:
        return await _reply(request, ctx, 400, limit_error, used)
    symbol = q.get("symbol", "")
    if not symbol:
        return await _reply(
            request,
            ctx,
            400,
            _err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
            used,
        )
    if ctx.replay is not None:
        body = ctx.replay.snapshot_body(symbol)
        if body is None:
            return await _reply(request, ctx, 400, _err(-1121, "Invalid symbol."), used)
    else:
        assert ctx.hub is not None
        market = ctx.hub.markets.get(symbol)
        if market is None:
            return await _reply(request, ctx, 400, _err(-1121, "Invalid symbol."), used)
        if ctx.faults.take_snapshot_failure(ctx.venue):
            return await _reply(
                request,
                ctx,
                500,
                _err(-1001, "Internal error; unable to process your request. Please try again."),
                used,
            )
        snap = market.snapshot(limit, ctx.playback.uid_now(symbol) if ctx.playback is not None else None)
        now_ms = ctx.exchange_ms()
        body = payloads.depth_snapshot(
            ctx.ep.venue, snap.last_update_id, snap.bids, snap.asks, now_ms, now_ms, symbol=market.spec.symbol
        )
    extra = ctx.faults.snapshot_delay_s.get(ctx.venue, 0.0)
    if extra > 0:
        await asyncio.sleep(extra)
    return await _reply(request, ctx, 200, body, used)


async def handle_time(request: web.Request) -> web.Response:
    ctx, used, limited = await _metered(request, request.app[CTX].ep.time_weight)
    if limited is not None:
        return limited
    return await _reply(request, ctx, 200, orjson.dumps({"serverTime": ctx.exchange_ms()}), used)


async def handle_ping(request: web.Request) -> web.Response:
    ctx, used, limited = await _metered(request, request.app[CTX].ep.ping_weight)
    if limited is not None:
        return limited
    return await _reply(request, ctx, 200, b"{}", used)


async def handle_exchange_info(request: web.Request) -> web.Response:
    ctx, used, limited = await _metered(request, request.app[CTX].ep.exchange_info_weight)
    if limited is not None:
        return limited
    symbols = []
    names = list(ctx.hub.markets) if ctx.hub is not None else (ctx.replay.symbols if ctx.replay else [])
    if ctx.ep.exchange_info_symbols_param is not None:  # spot filters by symbol= or symbols=[...]
        wanted, error = _wanted_symbols(request.rel_url.query)
        if error is None and wanted is not None and not set(wanted) <= set(names):
            error = _err(-1121, "Invalid symbol.")
        if error is not None:
            return await _reply(request, ctx, 400, error, used)
        names = names if wanted is None else list(dict.fromkeys(wanted))
    for sym in names:
        spec = spec_for(ctx.ep.venue, sym)
        pair = sym.split("_", 1)[0]  # COIN-M: BTCUSD_PERP's pair BTCUSD; others: the symbol
        quote = next((q for q in KNOWN_QUOTES if pair.endswith(q)), pair[-4:])
        tick = spec.fmt_price(1)
        step = spec.fmt_qty(1)
        symbols.append(
            payloads.symbol_info(
                ctx.ep.venue, sym, pair[: -len(quote)], quote, tick, step, spec.price_decimals, spec.qty_decimals
            )
        )
    _universe_fields(ctx, symbols)
    body = payloads.exchange_info(ctx.ep.venue, ctx.exchange_ms(), symbols, ctx.weights.budget)
    return await _reply(request, ctx, 200, body, used)


def _universe_fields(ctx: ListenerContext, symbols: list[dict[str, object]]) -> None:
    """A ``--universe`` hub knows each symbol's status (TRADING/BREAK) and assets: say them."""
    from tickpath.sim.universe import UniverseHub

    hub = ctx.hub
    if not isinstance(hub, UniverseHub):
        return
    for info in symbols:
        u = hub.info.get(str(info["symbol"]))
        if u is None:
            continue
        info["status"] = hub.statuses.get(u.symbol, u.status)
        if "contractStatus" in info:
            info["contractStatus"] = info["status"]
        if u.quote:
            info["baseAsset"], info["quoteAsset"] = u.base, u.quote


def _wanted_symbols(query: Mapping[str, str]) -> tuple[list[str] | None, bytes | None]:
    """Spot exchangeInfo's ``symbol=X`` or ``symbols=["X","Y"]``: (the symbols or None for all, error)."""
    if "symbol" in query and "symbols" in query:
        return None, _err(-1128, "Combination of optional parameters invalid.")
    if "symbol" in query:
        return [query["symbol"]], None
    if "symbols" not in query:
        return None, None
    try:
        wanted = orjson.loads(query["symbols"])
    except orjson.JSONDecodeError:
        wanted = None
    if not isinstance(wanted, list) or not wanted or not all(isinstance(w, str) for w in wanted):
        return None, _err(
            -1100,
            "Illegal characters found in parameter 'symbols'; legal range is "
            '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
        )
    return wanted, None


async def handle_open_interest(request: web.Request) -> web.Response:
    """Futures open interest (weight 1), from the live market; the replay has none."""
    ctx, used, limited = await _metered(request, OPEN_INTEREST_WEIGHT)
    if limited is not None:
        return limited
    body = open_interest_body(ctx.hub, request.rel_url.query.get("symbol", ""), ctx.exchange_ms()) if ctx.hub else None
    if body is None:
        return await _reply(request, ctx, 400, _err(-1121, "Invalid symbol."), used)
    return await _reply(request, ctx, 200, body, used)


def add_routes(app: web.Application, ctx: ListenerContext) -> None:
    ep = ctx.ep
    if is_derivatives(ep.venue):
        app.router.add_get(open_interest_path(ep.venue), handle_open_interest)
    app.router.add_get(ep.depth_path, handle_depth)
    app.router.add_get(ep.time_path, handle_time)
    app.router.add_get(ep.ping_path, handle_ping)
    app.router.add_get(ep.exchange_info_path, handle_exchange_info)
