"""WebSocket connections: paths, live SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, pings, limits.

Data frames bypass aiohttp's per-message writer: each event is framed once by the hub and the
same bytes are written to every subscriber's transport (no compression is negotiated, so a server
frame is just header + payload). Control answers, pings and closes go through the same ordered,
delayed queue, so a client sees them in the order and with the latency of its zone.

Behaviour chosen where Binance documents the rule but not the wire detail (see docs/sim.md):
bad requests are answered ``{"error":{"code":2,"msg":...},"id":N}`` and the connection is kept;
too many incoming messages per second, too many streams, or no pong within the timeout close the
connection with code 1008; the lifetime limit closes it with code 1000.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from tickpath.errors import UnknownSymbolError
from tickpath.logs import log_event
from tickpath.sim import payloads
from tickpath.sim.context import CTX, ListenerContext
from tickpath.sim.latency import OrderedDelivery

log = logging.getLogger(__name__)

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_SLOW_CONSUMER_BYTES = 64 * 1024 * 1024


def _error(code: int, msg: str, req_id: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "msg": msg}, "id": req_id})


class WsConnection:
    """One client connection: its subscriptions, delivery queue, timers and counters."""

    def __init__(self, ctx: ListenerContext, ws: web.WebSocketResponse, request: web.Request, combined: bool) -> None:
        self.ctx = ctx
        self.ws = ws
        self.combined = combined
        self.peer = request.remote or "?"
        self.path = request.path_qs
        transport = request.transport
        assert transport is not None
        self.transport = transport
        self.streams: list[str] = []
        self.delivery = OrderedDelivery(ctx.sampler("ws"), self._write)
        self.corrupt: deque[str] = deque()
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        self.last_alive = self.opened
        self.ping_payloads: deque[bytes] = deque(maxlen=16)
        self.incoming: deque[float] = deque()
        self.closing = False
        self.close_code: int | None = None
        self.frames_in = 0
        self._timers: list[asyncio.TimerHandle] = []
        self._close_task: asyncio.Future[bool] | None = None

    # ---- output -----------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(data)

    def push(self, frame: bytes) -> None:
        if self.corrupt:
            frame = _corrupt(frame, self.corrupt.popleft())
        self.delivery.push(frame)

    def flush(self) -> None:
        self.delivery.flush()
        if self.transport.get_write_buffer_size() > _SLOW_CONSUMER_BYTES and not self.closing:
            log_event(log, logging.WARNING, "sim_slow_consumer_closed", peer=self.peer, path=self.path)
            self.close(1008, "slow consumer")

    def send_json(self, body: bytes) -> None:
        self.push(payloads.ws_frame(body))
        self.flush()

    def close(self, code: int, reason: str) -> None:
        """Close cleanly after everything already queued has been delivered."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code

        def _do() -> None:
            self.delivery.closed = True
            self._close_task = asyncio.ensure_future(self.ws.close(code=code, message=reason.encode()))
            # The peer gets two seconds to answer the close frame, then the link is cut.
            self.loop.call_later(2.0, self.abort)

        self.delivery.call(_do)

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (the 'drop' fault)."""
        self.closing = True
        self.delivery.close()
        if not self.transport.is_closing():
            self.transport.abort()

    # ---- timers -----------------------------------------------------------------------------------
    def start_timers(self) -> None:
        lim = self.ctx.limits
        self._timers.append(self.loop.call_later(lim.ping_interval_s, self._ping))
        self._timers.append(self.loop.call_later(min(lim.pong_timeout_s, lim.ping_interval_s) / 4, self._check_pong))
        self._timers.append(self.loop.call_later(lim.max_lifetime_s, self._lifetime))

    def stop_timers(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()

    def _ping(self) -> None:
        if self.closing:
            return
        payload = str(self.ctx.exchange_ms()).encode()
        self.ping_payloads.append(payload)
        self.push(payloads.ws_frame(payload, opcode=0x9))
        self.flush()
        self._timers.append(self.loop.call_later(self.ctx.limits.ping_interval_s, self._ping))

    def _check_pong(self) -> None:
        if self.closing:
            return
        lim = self.ctx.limits
        if self.loop.time() - self.last_alive > lim.pong_timeout_s:
            log_event(log, logging.INFO, "sim_pong_timeout", peer=self.peer, path=self.path)
            self.close(1008, "Pong timeout")
            return
        self._timers.append(self.loop.call_later(min(lim.pong_timeout_s, lim.ping_interval_s) / 4, self._check_pong))

    def _lifetime(self) -> None:
        self.close(1000, "Connection lifetime expired")

    # ---- input ------------------------------------------------------------------------------------
    def _count_incoming(self) -> bool:
        """Count one incoming message; False when the per-second limit is exceeded."""
        now = self.loop.time()
        q = self.incoming
        q.append(now)
        # Binance's rule: at most the limit in any 1 s window. Times are when this loop got to a
        # message, not when it arrived, so a client paced right at the limit can be closed when the
        # simulator reads late: the feed keeps a margin (feed/connection.py paces at 1.25x the interval).
        while q and q[0] <= now - 1.0:
            q.popleft()
        return len(q) <= self.ctx.limits.max_incoming_per_s

    def on_pong(self, payload: bytes) -> None:
        # Futures and Binance.US allow unsolicited pongs; spot wants the ping's payload echoed back.
        if self.ctx.ep.unsolicited_pong_keeps_alive or payload in self.ping_payloads or not self.ping_payloads:
            self.last_alive = self.loop.time()

    def on_text(self, text: str) -> None:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.send_json(_error(3, f"Invalid JSON: {exc}", None))
            return
        if not isinstance(req, dict):
            self.send_json(_error(3, "Invalid JSON: expected an object", None))
            return
        req_id = req.get("id")
        if req_id is not None and (not isinstance(req_id, int) or isinstance(req_id, bool) or req_id < 0):
            self.send_json(_error(2, "Invalid request: request ID must be an unsigned integer", None))
            return
        method = req.get("method")
        if not isinstance(method, str):
            self.send_json(_error(2, "Invalid request: missing field `method`", req_id))
            return
        if method not in _METHODS:
            variants = ", ".join(f"`{m}`" for m in _METHODS)
            self.send_json(
                _error(2, f"Invalid request: unknown variant `{method}`, expected one of {variants}", req_id)
            )
            return
        for key in req:
            if key not in ("method", "params", "id"):
                self.send_json(_error(0, "Unknown property", req_id))
                return
        params = req.get("params", [])
        if not isinstance(params, list):
            self.send_json(_error(2, "Invalid request: params must be an array", req_id))
            return
        if method == "LIST_SUBSCRIPTIONS":
            self.send_json(orjson.dumps({"result": list(self.streams), "id": req_id}))
        elif method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            self._subscribe(params, req_id, method == "SUBSCRIBE")
        elif method == "GET_PROPERTY":
            if params != ["combined"]:
                self.send_json(_error(2, "Invalid request: unknown property", req_id))
            else:
                self.send_json(orjson.dumps({"result": self.combined, "id": req_id}))
        else:  # SET_PROPERTY
            if len(params) != 2 or params[0] != "combined":
                self.send_json(_error(2, "Invalid request: unknown property", req_id))
            elif not isinstance(params[1], bool):
                self.send_json(_error(1, "Invalid value type: expected Boolean", req_id))
            else:
                self.combined = params[1]
                self.send_json(orjson.dumps({"result": None, "id": req_id}))

    def _subscribe(self, params: list[Any], req_id: Any, add: bool) -> None:
        if not all(isinstance(p, str) for p in params):
            self.send_json(_error(2, "Invalid request: stream names must be strings", req_id))
            return
        source = self.ctx.playback or self.ctx.hub or self.ctx.replay
        assert source is not None
        try:
            for name in params:
                source.validate(name)
        except UnknownSymbolError:
            self.send_json(_error(2, "Invalid request: invalid stream", req_id))
            return
        if add:
            new = [p for p in dict.fromkeys(params) if p not in self.streams]
            if len(self.streams) + len(new) > self.ctx.limits.max_streams:
                self.close(1008, f"Too many streams: at most {self.ctx.limits.max_streams} per connection")
                return
            self.send_json(orjson.dumps({"result": None, "id": req_id}))
            for name in new:
                self.streams.append(name)
                source.subscribe(self, name)
        else:
            for name in params:
                if name in self.streams:
                    self.streams.remove(name)
                    source.unsubscribe(self, name)
            self.send_json(orjson.dumps({"result": None, "id": req_id}))


def _corrupt(frame: bytes, kind: str) -> bytes:
    """A data frame made malformed (invalid JSON) or truncated (cut mid-payload), still well framed."""
    n = frame[1] & 0x7F
    head = 2 if n < 126 else 4 if n == 126 else 10
    payload = frame[head:]
    if frame[0] & 0x0F != 0x1:
        return frame
    bad = payload[: max(1, len(payload) // 2)] if kind == "truncated" else b"{" + payload[1:-1] + b"]]"
    return payloads.ws_frame(bad)


def _requested_streams(request: web.Request) -> tuple[list[str], bool]:
    """Stream names from the URL and whether the connection is combined (/stream) or raw (/ws)."""
    path = request.path
    if path.startswith("/stream"):
        query = request.rel_url.query.get("streams", "")
        return [s for s in query.split("/") if s], True
    tail = path[len("/ws") :].lstrip("/")
    return [s for s in tail.split("/") if s], False


async def handle_ws(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    names, combined = _requested_streams(request)
    source = ctx.playback or ctx.hub or ctx.replay
    assert source is not None
    try:
        for name in names:
            source.validate(name)
    except UnknownSymbolError as exc:
        return web.json_response({"error": {"code": 2, "msg": f"Invalid request: {exc}"}}, status=400)
    names = list(dict.fromkeys(names))
    if len(names) > ctx.limits.max_streams:
        return web.json_response(
            {
                "error": {
                    "code": 2,
                    "msg": f"Invalid request: too many streams ({len(names)} > {ctx.limits.max_streams})",
                }
            },
            status=400,
        )
    if ctx.faults.refuse_connections(ctx.venue, ctx.zone.name):
        return web.Response(status=503, text="simulated outage")
    ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20, timeout=2.0, compress=False)
    await ws.prepare(request)
    conn = WsConnection(ctx, ws, request, combined)
    ctx.connections.add(conn)
    for name in names:
        conn.streams.append(name)
        source.subscribe(conn, name)
    conn.start_timers()
    started = ctx.clock.monotonic_ns()
    try:
        await _receive_loop(conn)
    finally:
        conn.stop_timers()
        conn.delivery.close()
        conn.closing = True
        source.drop_subscriber(conn)
        ctx.connections.discard(conn)
        log_event(
            log,
            logging.DEBUG,
            "sim_ws_closed",
            peer=conn.peer,
            path=conn.path,
            seconds=round((ctx.clock.monotonic_ns() - started) / 1e9, 3),
            code=conn.close_code,
        )
    return ws


async def _receive_loop(conn: WsConnection) -> None:
    ws = conn.ws
    inbound = conn.ctx.sampler("ws-in")
    while not ws.closed:
        msg = await ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            break
        conn.frames_in += 1
        if not conn._count_incoming():
            log_event(log, logging.INFO, "sim_ws_rate_limited", peer=conn.peer, path=conn.path)
            conn.close(1008, "Too many requests")
            continue
        delay = inbound.sample_s()
        if delay > 0:  # the client's message crosses the zone's path before the server sees it
            await asyncio.sleep(delay)
        if msg.type == WSMsgType.TEXT:
            conn.on_text(msg.data)
        elif msg.type == WSMsgType.PING:
            conn.push(payloads.ws_frame(msg.data, opcode=0xA))
            conn.flush()
        elif msg.type == WSMsgType.PONG:
            conn.on_pong(msg.data)
        elif msg.type == WSMsgType.BINARY:
            conn.send_json(_error(3, "Invalid JSON: binary frames are not accepted", None))
