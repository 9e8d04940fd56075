"""busbench on a local two-server NATS cluster, 256-byte messages at 1k, 10k and 100k msg/s.

Targets (issue 8): achieved rate >= 99.5% of target at 1,000 and 10,000 msg/s and >= 99% at
100,000; p50 <= 120 µs and p99 <= 600 µs at 1,000 msg/s; p50 <= 170 µs at 10,000 msg/s (a compiled
reference client measured ~113/554 µs and 157 µs on this machine class). Latency targets are
judged on the latency from the intended send time (coordinated-omission-free, the stricter
figure); the latency from the actual send time is reported next to it. Skips (ok=None) when
nats-server is not installed.

The cluster and client use what ``tickpath busbench local`` uses by default: GOMAXPROCS of each
server = cores / servers, and the client's wait mode by rate (busy-polling up to 5,000 msg/s);
both are printed and returned with the figures.

Just before and just after the 1,000 msg/s run the benchmark measures the route's floor in the same
cluster: a bare socket client (no tickpath code, no event loop, no thread) publishes one 256-byte
message on A and busy-reads it from B, once per millisecond. Its p50 is what any client measures
through these servers at that moment; the host's wake-up latency moves it by tens of µs from one
minute to the next, so the client's p50 minus the mean of the two floors is the client's own
overhead, and is printed.
"""

from __future__ import annotations

import shutil
import socket
import time
from typing import Any

from tickpath import runtime
from tickpath.busbench.config import BenchConfig
from tickpath.busbench.local import LocalConfig, local_cluster, run_many
from tickpath.busbench.results import BenchResult
from tickpath.stats import LatencyRecorder

RUNS = ((1_000, 10.0), (10_000, 5.0), (100_000, 3.0))  # (rate, measured seconds)
RATE_TARGETS = {1_000: 0.995, 10_000: 0.995, 100_000: 0.99}
LATENCY_TARGETS_US = {(1_000, 50): 120.0, (1_000, 99): 600.0, (10_000, 50): 170.0}


FLOOR_SECONDS, FLOOR_WARMUP = 5.0, 1.0


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
    buf = b""
    while b"PONG\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"{url} closed the connection")
        buf += chunk
    return s


def _route_floor(pub_url: str, sub_url: str, size: int = 256, interval_s: float = 0.001) -> LatencyRecorder:
    """Publish on A, busy-read from B, one message per ``interval_s``, closed loop: the route's own
    latency (client send + server A + route + server B + client receive), with nothing else in the way."""
    a, b = _connect(pub_url), _connect(sub_url)
    try:
        b.sendall(b"SUB floor.x 1\r\nPING\r\n")
        b.recv(65536)  # PONG: B has the subscription
        pub = b"PUB floor.x %d\r\n%s\r\n" % (size, b"x" * size)
        frame = len(b"MSG floor.x 1 %d\r\n" % size) + size + 2
        b.setblocking(False)
        buf = b""
        deadline = time.monotonic() + 10
        while True:  # until the interest has crossed the route, publish and look
            a.sendall(pub)
            time.sleep(0.01)
            try:
                buf += b.recv(1 << 20)
            except BlockingIOError:
                pass
            if b"MSG floor.x" in buf:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the subscription never crossed the route")
        time.sleep(0.05)
        try:
            b.recv(1 << 20)
        except BlockingIOError:
            pass
        rec = LatencyRecorder("route floor")
        step = int(interval_s * 1e9)
        now = time.monotonic_ns
        start = now()
        warm_until = start + int(FLOOR_WARMUP * 1e9)
        n = int((FLOOR_SECONDS + FLOOR_WARMUP) / interval_s)
        for i in range(n):
            intended = start + i * step
            while now() < intended:
                pass
            t0 = now()
            a.sendall(pub)
            got = b""
            while len(got) < frame:
                try:
                    got += b.recv(65536)
                except BlockingIOError:
                    continue
                if got.startswith(b"PING"):
                    b.sendall(b"PONG\r\n")
                    got = got[6:]
            t1 = now()
            if t0 >= warm_until:
                rec.record(t1 - t0)
        return rec
    finally:
        a.close()
        b.close()


async def _measure() -> tuple[list[BenchResult], list[LatencyRecorder]]:
    local = LocalConfig()
    async with local_cluster(local) as (cluster, _settings):
        urls = cluster.client_urls[0], cluster.client_urls[1]
        configs = [BenchConfig(*urls, size=256, rate=rate, duration=seconds, warmup=1.0) for rate, seconds in RUNS]
        floors = [_route_floor(*urls)]
        results = await run_many(configs[:1], servers=local.server_settings())
        floors.append(_route_floor(*urls))
        return results + await run_many(configs[1:], servers=local.server_settings()), floors


def main() -> dict[str, Any]:
    if shutil.which("nats-server") is None and shutil.which("/usr/sbin/nats-server") is None:
        print("busbench: nats-server not installed, skipped")
        return {"skipped": "nats-server not installed", "ok": None}
    results, floors = runtime.run(_measure(), handle_signals=False)
    floor_rows = [
        {"p50_us": round(f.percentile(50) / 1e3, 1), "p99_us": round(f.percentile(99) / 1e3, 1), "samples": f.count}
        for f in floors
    ]
    floor_p50 = round(sum(f["p50_us"] for f in floor_rows) / len(floor_rows), 1)
    figures: dict[str, Any] = {
        "clock": "CLOCK_MONOTONIC, one process",
        "size": 256,
        "servers": results[0].servers if results else None,
        "runs": {},
        "route_floor_1000": {"before": floor_rows[0], "after": floor_rows[1]},
    }
    for when, f in zip(("before", "after"), floor_rows, strict=True):
        print(
            f"route floor {when} the 1,000/s run (bare socket client, pub A -> sub B, 1 per ms): "
            f"p50 {f['p50_us']} µs, p99 {f['p99_us']} µs, {f['samples']} samples"
        )
    ok = True
    targets: dict[str, Any] = {}
    for r in results:
        rate = int(r.rate)
        row: dict[str, Any] = {
            "achieved_rate": round(r.achieved_rate, 1),
            "rate_ratio": round(r.achieved_rate / r.rate, 5),
            "lost": r.lost,
            "p50_intended_us": round(r.intended.percentile(50) / 1e3, 1),
            "p99_intended_us": round(r.intended.percentile(99) / 1e3, 1),
            "p50_actual_us": round(r.actual.percentile(50) / 1e3, 1),
            "p99_actual_us": round(r.actual.percentile(99) / 1e3, 1),
            "max_intended_us": round(r.intended.percentile(100) / 1e3, 1),
            "send_lag_p99_us": round(r.send_lag.percentile(99) / 1e3, 1),
            "wait_mode": r.wait_mode,
        }
        if rate == 1_000:
            row["p50_over_floor_us"] = round(row["p50_intended_us"] - floor_p50, 1)
        figures["runs"][str(rate)] = row
        want = RATE_TARGETS[rate]
        targets[f"rate_ratio_{rate}"] = f">= {want}"
        ok &= row["rate_ratio"] >= want and r.lost == 0
        for (trate, p), limit in LATENCY_TARGETS_US.items():
            if trate == rate:
                targets[f"p{p}_intended_{rate}_us"] = f"<= {limit}"
                ok &= row[f"p{p}_intended_us"] <= limit
        print(
            f"busbench 256 B @ {rate:>7,}/s: achieved {row['rate_ratio']:.2%}, lost {r.lost}, "
            f"p50/p99 from intended {row['p50_intended_us']}/{row['p99_intended_us']} µs, "
            f"from actual {row['p50_actual_us']}/{row['p99_actual_us']} µs; client {r.wait_mode}, "
            f"servers {r.servers}"
            + (f"; p50 over the route floor {row['p50_over_floor_us']} µs" if rate == 1_000 else "")
        )
    figures["target"] = targets
    figures["ok"] = ok
    return figures


if __name__ == "__main__":
    main()
