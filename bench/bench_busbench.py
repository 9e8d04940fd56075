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
"""

from __future__ import annotations

import shutil
from typing import Any

from tickpath import runtime
from tickpath.busbench.config import BenchConfig
from tickpath.busbench.local import LocalConfig, local_cluster, run_many
from tickpath.busbench.results import BenchResult

RUNS = ((1_000, 10.0), (10_000, 5.0), (100_000, 3.0))  # (rate, measured seconds)
RATE_TARGETS = {1_000: 0.995, 10_000: 0.995, 100_000: 0.99}
LATENCY_TARGETS_US = {(1_000, 50): 120.0, (1_000, 99): 600.0, (10_000, 50): 170.0}


async def _measure() -> list[BenchResult]:
    local = LocalConfig()
    async with local_cluster(local) as (cluster, _settings):
        configs = [BenchConfig(cluster.client_urls[0], cluster.client_urls[1], size=256, rate=rate,
                               duration=seconds, warmup=1.0) for rate, seconds in RUNS]
        return await run_many(configs, servers=local.server_settings())


def main() -> dict[str, Any]:
    if shutil.which("nats-server") is None and shutil.which("/usr/sbin/nats-server") is None:
        print("busbench: nats-server not installed, skipped")
        return {"skipped": "nats-server not installed", "ok": None}
    results = runtime.run(_measure(), handle_signals=False)
    figures: dict[str, Any] = {"clock": "CLOCK_MONOTONIC, one process", "size": 256,
                               "servers": results[0].servers if results else None, "runs": {}}
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
        figures["runs"][str(rate)] = row
        want = RATE_TARGETS[rate]
        targets[f"rate_ratio_{rate}"] = f">= {want}"
        ok &= row["rate_ratio"] >= want and r.lost == 0
        for (trate, p), limit in LATENCY_TARGETS_US.items():
            if trate == rate:
                targets[f"p{p}_intended_{rate}_us"] = f"<= {limit}"
                ok &= row[f"p{p}_intended_us"] <= limit
        print(f"busbench 256 B @ {rate:>7,}/s: achieved {row['rate_ratio']:.2%}, lost {r.lost}, "
              f"p50/p99 from intended {row['p50_intended_us']}/{row['p99_intended_us']} µs, "
              f"from actual {row['p50_actual_us']}/{row['p99_actual_us']} µs; client {r.wait_mode}, "
              f"servers {r.servers}")
    figures["target"] = targets
    figures["ok"] = ok
    return figures


if __name__ == "__main__":
    main()
