"""Test double of ``tickpath probe --json`` for orchestrator tests (never used by the product).

``stub_probe.py ZONE SLEEP_S 'zone=delay_ms,...' [INSTANCE]`` sleeps, then prints a probe-shaped
document whose latencies are the zone's delay (ws round trip = 2 x delay), with the summaries and
encoded HdrHistograms the real probe writes. A delay may be given per instance (``zone=4/1/2``:
instance 0 at 4 ms, 1 at 1 ms, 2 at 2 ms). A delay of ``fail`` exits 3; ``hang`` never finishes (the
orchestrator must time it out).
"""

from __future__ import annotations

import json
import sys
import time

from tickpath.stats import LatencyRecorder


def _method(rtt_us: float, spread: tuple[float, ...]) -> dict[str, object]:
    rec = LatencyRecorder("stub")
    rec.record_many([round(rtt_us * f * 1000) for f in spread])
    return {"summary": rec.summary().to_dict("us"), "histogram": rec.encode()}


def main() -> int:
    zone, sleep_s, table = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    instance = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    delays = dict(item.split("=") for item in table.split(","))
    per_instance = delays[zone].split("/")
    delay = per_instance[min(instance, len(per_instance) - 1)]
    if delay == "hang":
        time.sleep(3600)
    time.sleep(sleep_s)
    if delay == "fail":
        print("stub probe: connection refused", file=sys.stderr)
        return 3
    rtt_us = 2 * float(delay) * 1000
    spread = tuple(1.0 + i / 100 for i in range(20))  # 20 samples, 1.00x to 1.19x the round trip
    doc = {"methods": {"ws": _method(rtt_us, spread), "tcp": _method(rtt_us * 0.9, spread)}}
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
