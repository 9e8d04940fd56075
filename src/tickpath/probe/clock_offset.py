"""Offset between the exchange's clock and ours, from the server-time endpoint, with its bound.

For each request the server stamped its time somewhere between our send and our receipt, so
``server - midpoint`` is the offset give or take half the round trip. The samples with the smallest
round trips have the tightest bound, so the estimate is the median offset of the fastest tenth
(at least three), and the bound is half the largest round trip among them plus half a millisecond,
because the exchange reports whole milliseconds (we centre each stamp in its millisecond).

``offset_ns`` is exchange clock minus local clock: an exchange event stamped ``E`` happened at
local time ``E - offset``, so a one-way latency corrected for the offset is ``raw + offset``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import orjson

from tickpath.clock import Clock
from tickpath.errors import ExchangeError, TickpathError
from tickpath.probe.connect import ConnectionPool, host_header

MS = 1_000_000
HALF_MS = 500_000


@dataclass(frozen=True)
class OffsetSample:
    send_wall_ns: int
    recv_wall_ns: int
    server_ms: int

    @property
    def rtt_ns(self) -> int:
        return self.recv_wall_ns - self.send_wall_ns

    @property
    def offset_ns(self) -> int:
        mid = (self.send_wall_ns + self.recv_wall_ns) // 2
        return self.server_ms * MS + HALF_MS - mid


@dataclass(frozen=True)
class OffsetEstimate:
    offset_ns: int
    bound_ns: int
    min_rtt_ns: int
    used: int
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset_us": round(self.offset_ns / 1e3, 3),
            "bound_us": round(self.bound_ns / 1e3, 3),
            "min_rtt_us": round(self.min_rtt_ns / 1e3, 3),
            "used_samples": self.used,
            "samples": self.samples,
            "method": "median offset of the min-RTT samples of the server-time endpoint (midpoint)",
            "sign": "exchange clock minus local clock",
        }


def estimate_offset(samples: list[OffsetSample]) -> OffsetEstimate:
    """Estimate from the fastest tenth of ``samples`` (at least 3, or all if fewer)."""
    if not samples:
        raise ValueError("no server-time samples")
    ranked = sorted(samples, key=lambda s: s.rtt_ns)
    k = min(len(ranked), max(3, len(ranked) // 10))
    best = ranked[:k]
    offset = int(statistics.median(s.offset_ns for s in best))
    bound = max(s.rtt_ns for s in best) // 2 + HALF_MS
    return OffsetEstimate(offset, bound, ranked[0].rtt_ns, k, len(samples))


def parse_server_time(body: bytes) -> int:
    try:
        value = orjson.loads(body)["serverTime"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExchangeError(f"server-time answer without serverTime: {body[:120]!r}") from exc
    if not isinstance(value, int):
        raise ExchangeError(f"serverTime is not an integer: {value!r}")
    return value


async def sample_server_time(clock: Clock, pool: ConnectionPool, ip: str, path: str, count: int) -> list[OffsetSample]:
    """``count`` server-time round trips on the kept-alive connection to ``ip``."""
    host = host_header(pool.ep)
    # Wall time of a monotonic stamp, from one reference pair: the receipt is stamped on the
    # monotonic clock where bytes arrive, and the wall clock must not be read twice per sample.
    mono_ref, wall_ref = clock.monotonic_ns(), clock.wall_ns()
    out: list[OffsetSample] = []
    errors = 0
    for _ in range(count):
        proto, _ = await pool.get(ip)
        send = clock.monotonic_ns()
        try:
            resp = await proto.request("GET", path, host)
        except TickpathError:
            errors += 1
            continue
        if resp.status != 200:
            raise ExchangeError(f"GET {path} answered HTTP {resp.status}", status=resp.status)
        server_ms = parse_server_time(resp.body)
        out.append(OffsetSample(wall_ref + send - mono_ref, wall_ref + resp.done_ns - mono_ref, server_ms))
    if not out:
        raise ExchangeError(f"no server-time sample succeeded ({errors} failed)")
    return out
