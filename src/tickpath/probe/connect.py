"""The ``tcp``, ``tls``, ``rest`` and ``ws`` sample operations, one per resolved IP.

Each factory returns a :data:`~tickpath.probe.schedule.SampleOp`: given a sample index and a
target (``ip:port`` or ``ip``) it performs one measurement and returns the monotonic time it
completed. Where a sample includes setup that is not what it measures (the TCP connect before a
TLS handshake, a reconnect after the peer closed a kept-alive link), the completion time is moved
back by the setup time, so the latency from the intended time still counts any lateness but not
the unrelated work.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable

from tickpath.clock import Clock
from tickpath.errors import ConnectionFailedError, ExchangeError, HandshakeError
from tickpath.probe.config import Endpoint
from tickpath.probe.schedule import SampleOp
from tickpath.probe.wire import WireProtocol, open_wire, tcp_connect, ws_upgrade


def target_name(ip: str, port: int | None = None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def host_header(ep: Endpoint) -> str:
    default = 443 if ep.tls else 80
    return ep.host if ep.port == default else f"{ep.host}:{ep.port}"


def tcp_op(clock: Clock) -> SampleOp:
    """Connect time to ``ip:port``; the socket is closed straight after."""

    async def op(_i: int, target: str) -> int:
        ip, port = split_target(target)
        sock = await tcp_connect(ip, port)
        done = clock.monotonic_ns()
        sock.close()
        return done

    return op


def tls_op(clock: Clock, server_name: str, ctx: ssl.SSLContext) -> SampleOp:
    """Full TLS handshake time (no session resumption) with SNI ``server_name``; TCP excluded."""
    loop_protocol = asyncio.Protocol

    async def op(_i: int, target: str) -> int:
        ip, port = split_target(target)
        t0 = clock.monotonic_ns()
        sock = await tcp_connect(ip, port)
        tcp_ns = clock.monotonic_ns() - t0
        try:
            transport, _ = await asyncio.get_running_loop().create_connection(
                loop_protocol, sock=sock, ssl=ctx, server_hostname=server_name
            )
        except ssl.SSLError as exc:
            sock.close()
            raise HandshakeError(f"TLS handshake with {server_name} at {target} failed: {exc.reason or exc}") from exc
        except (ConnectionError, OSError) as exc:
            sock.close()
            raise ConnectionFailedError(f"TLS handshake with {server_name} at {target} failed: {exc}") from exc
        done = clock.monotonic_ns()
        transport.abort()
        return done - tcp_ns

    return op


class ConnectionPool:
    """Kept-alive connections per IP (``slots`` of them each), opened lazily, re-opened when closed."""

    def __init__(
        self,
        clock: Clock,
        ep: Endpoint,
        ctx: ssl.SSLContext | None,
        setup: Callable[[WireProtocol], Awaitable[None]] | None = None,
        *,
        slots: int = 1,
    ) -> None:
        self.clock = clock
        self.ep = ep
        self.ctx = ctx if ep.tls else None
        self.setup = setup
        self.slots = max(1, slots)
        self.conns: dict[tuple[str, int], WireProtocol] = {}
        self.idle: dict[str, list[WireProtocol]] = {}  # request/response connections not in use
        self.extra: list[WireProtocol] = []
        self.reconnects = 0

    def is_open(self, ip: str) -> bool:
        return any(key[0] == ip for key in self.conns)

    async def get(self, ip: str, slot: int = 0) -> tuple[WireProtocol, int]:
        """The open connection ``slot`` to ``ip`` and the ns spent (re)connecting for this call."""
        key = (ip, slot % self.slots)
        proto = self.conns.get(key)
        if proto is not None and proto.transport is not None and not proto.transport.is_closing():
            return proto, 0
        if proto is not None:
            self.reconnects += 1
        t0 = self.clock.monotonic_ns()
        proto = await open_wire(self.clock, ip, self.ep.port, tls=self.ctx, server_hostname=self.ep.host)
        try:
            if self.setup is not None:
                await self.setup(proto)
        except BaseException:
            proto.close()
            raise
        self.conns[key] = proto
        return proto, self.clock.monotonic_ns() - t0

    async def open_all(self, ips: list[str], timeout: float) -> dict[str, Exception]:
        """Open every slot to every IP up front; returns the IPs that failed with why."""
        failed: dict[str, Exception] = {}
        for ip in ips:
            for slot in range(self.slots):
                try:
                    await asyncio.wait_for(self.get(ip, slot), timeout)
                except TimeoutError:
                    failed[ip] = ConnectionFailedError(f"no connection to {ip}:{self.ep.port} within {timeout:g} s")
                    break
                except (ConnectionFailedError, ExchangeError, OSError) as exc:
                    failed[ip] = exc
                    break
        return failed

    async def acquire(self, ip: str) -> tuple[WireProtocol, int]:
        """An idle kept-alive connection to ``ip`` for one request (a new one when all are busy),
        and the ns spent opening it."""
        idle = self.idle.get(ip)
        if idle is None:
            idle = self.idle[ip] = [p for (i, _), p in self.conns.items() if i == ip]
        while idle:
            proto = idle.pop()
            if proto.transport is not None and not proto.transport.is_closing():
                return proto, 0
            self.reconnects += 1
        t0 = self.clock.monotonic_ns()
        proto = await open_wire(self.clock, ip, self.ep.port, tls=self.ctx, server_hostname=self.ep.host)
        self.extra.append(proto)
        return proto, self.clock.monotonic_ns() - t0

    def release(self, ip: str, proto: WireProtocol) -> None:
        if proto.transport is not None and not proto.transport.is_closing():
            self.idle.setdefault(ip, []).append(proto)

    @property
    def opened(self) -> int:
        return len(self.conns) + len(self.extra)

    def close(self) -> None:
        for proto in [*self.conns.values(), *self.extra]:
            with contextlib.suppress(Exception):
                proto.close()
        self.conns.clear()
        self.extra.clear()
        self.idle.clear()


def rest_op(pool: ConnectionPool, path: str) -> SampleOp:
    """Round trip of ``GET path`` on a kept-alive connection to the target IP (one request per
    connection at a time; more connections are opened when answers are slower than the schedule)."""
    host = host_header(pool.ep)

    async def op(_i: int, ip: str) -> int:
        proto, setup_ns = await pool.acquire(ip)
        try:
            resp = await proto.request("GET", path, host)
        except BaseException:
            proto.close()  # a cancelled or failed request leaves the connection in an unknown state
            raise
        pool.release(ip, proto)
        if resp.status != 200:
            raise ExchangeError(
                f"GET {path} answered HTTP {resp.status}: {resp.body[:200].decode(errors='replace')}",
                status=resp.status,
            )
        return resp.done_ns - setup_ns

    return op


def ws_setup(ep: Endpoint, path: str) -> Callable[[WireProtocol], Awaitable[None]]:
    host = host_header(ep)

    async def setup(proto: WireProtocol) -> None:
        await ws_upgrade(proto, host, ep.path + path)

    return setup


def ws_ping_op(pool: ConnectionPool, n_targets: int) -> SampleOp:
    """WebSocket ping/pong round trip on an open connection; the payload is the sample index.

    Consecutive samples to one IP rotate over the pool's slots, so no single connection exceeds
    the venue's incoming-message limit (a ping frame counts as a message; Binance disconnects
    above 5/s on spot and 10/s on futures).
    """

    async def op(i: int, ip: str) -> int:
        proto, setup_ns = await pool.get(ip, (i // n_targets) % pool.slots)
        done = await proto.ping(i.to_bytes(8, "big"))
        return done - setup_ns

    return op
