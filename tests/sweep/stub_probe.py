"""Test double of ``tickpath probe --json`` for orchestrator tests (never used by the product).

``stub_probe.py ZONE SLEEP_S 'zone=delay_ms,...'`` sleeps, then prints a probe-shaped document whose
latencies are the zone's delay (ws round trip = 2 x delay). A delay of ``fail`` exits 3; ``hang``
never finishes (the orchestrator must time it out).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    zone, sleep_s, table = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    delays = dict(item.split("=") for item in table.split(","))
    delay = delays[zone]
    if delay == "hang":
        time.sleep(3600)
    time.sleep(sleep_s)
    if delay == "fail":
        print("stub probe: connection refused", file=sys.stderr)
        return 3
    ms = float(delay)
    rtt_us = 2 * ms * 1000
    doc = {
        "methods": {
            "ws": {"summary": {"p50": rtt_us, "p90": rtt_us * 1.1, "p99": rtt_us * 1.3, "count": 10, "losses": 0}},
            "tcp": {"summary": {"p50": rtt_us * 0.9, "p90": rtt_us, "p99": rtt_us * 1.2, "count": 10, "losses": 0}},
        }
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
