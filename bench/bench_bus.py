"""Bus benchmark: the feed's NATS sink into JetStream, and ``ingest`` from JetStream into DuckDB.

One local ``nats-server`` with JetStream (stream replicas 1, file storage) on loopback. Phase 1 writes
pre-built events (trades, tickers and book deltas of three symbols) through
:class:`~tickpath.sinks.nats.NatsSink` in batches of 1,000, as the feed pipeline does, and times
from the first write until every message is acknowledged by the server. Phase 2 runs
:func:`~tickpath.ingest.run_ingest` from a fresh durable consumer into a new DuckDB file and times
until every message is committed and acknowledged. Both on uvloop, as the CLI runs them.
Targets (issue 5): at least 100,000 messages per second each. Wall clock on a shared machine with
nats-server on the same cores, so figures are noisy.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from tickpath.events import BookDelta, Event, Ticker, Trade
from tickpath.ingest import IngestConfig, run_ingest
from tickpath.natsserver import NatsCluster
from tickpath.runtime import run as run_async
from tickpath.sinks.nats import NatsSink

TARGET_MSG_S = 100_000.0
MESSAGES = 200_000
BATCH = 1000


def _events(n: int) -> list[Event]:
    out: list[Event] = []
    syms = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    seqs: dict[tuple[int, str], int] = {}
    for i in range(n):
        sym, kind = syms[i % 3], (i // 3) % 3
        seq = seqs[(kind, sym)] = seqs.get((kind, sym), 0) + 1
        common: dict[str, Any] = dict(session="bench", venue="futures", symbol=sym, seq=seq,
                                      event_time_ms=1_700_000_000_000 + i, transaction_time_ms=1_700_000_000_000 + i,
                                      receipt_ns=time.time_ns())
        if kind == 0:
            out.append(Trade(**common, trade_id=i, price="64000.10", qty="0.005", side="buy"))
        elif kind == 1:
            out.append(Ticker(**common, update_id=i, bid_price="64000.0", bid_qty="1.2", ask_price="64000.1",
                              ask_qty="0.7"))
        else:
            out.append(BookDelta(**common, first_update_id=i, final_update_id=i, prev_final_update_id=i - 1,
                                 bids=[("64000.0", "1.2")], asks=[("64000.2", "0")]))
    return out


async def _bench(n: int) -> dict[str, Any]:
    events = _events(n)
    work = Path(tempfile.mkdtemp(prefix="tickpath-bench-bus-"))
    async with NatsCluster(1, jetstream=True) as cluster:
        url = cluster.client_urls[0]
        sink = NatsSink.from_url(f"{url}?replicas=1&storage=file&max_inflight=8192", spool=str(work / "spool"))
        await sink.start()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, n, BATCH):
            await sink.write(events[i:i + BATCH])
        await sink.flush()
        publish_s, publish_cpu = time.perf_counter() - t0, time.process_time() - c0
        await sink.close()
        stats = sink.stats.as_dict()
        c0 = time.process_time()
        res = await run_ingest(IngestConfig(url, f"duckdb:{work / 'bus.duckdb'}", batch=10_000, max_messages=n))
        ingest_cpu = time.process_time() - c0
    publish_rate = n / publish_s
    ingest_rate = n / res.elapsed_s
    lat = res.publish_to_ingest.summary().to_dict("ms")
    return {
        "messages": n,
        "publish_msg_s": round(publish_rate),
        "publish_s": round(publish_s, 3),
        "published": stats["published"], "retried": stats["retried"], "spooled": stats["spooled"],
        "dropped": stats["dropped"],
        "ingest_msg_s": round(ingest_rate),
        "ingest_s": round(res.elapsed_s, 3),
        "ingested_rows": res.inserted, "ingest_duplicates": res.duplicates,
        "publish_to_ingest_p50_ms": lat["p50"],
        # This process's CPU seconds (all threads; nats-server's own CPU not included): what the
        # rate would be with a core to itself, since the shared machine's wall clock is noisy.
        "publish_cpu_s": round(publish_cpu, 3), "publish_msg_per_cpu_s": round(n / publish_cpu),
        "ingest_cpu_s": round(ingest_cpu, 3), "ingest_msg_per_cpu_s": round(n / ingest_cpu),
        "stream": "replicas 1, file storage, one local nats-server on loopback",
        "target": {"publish_msg_s": TARGET_MSG_S, "ingest_msg_s": TARGET_MSG_S},
        "ok": publish_rate >= TARGET_MSG_S and ingest_rate >= TARGET_MSG_S
        and res.inserted == n and stats["published"] == n,
    }


def main() -> dict[str, Any]:
    figures = run_async(_bench(MESSAGES), handle_signals=False)
    print(f"feed -> JetStream: {figures['publish_msg_s']:,} msg/s ({figures['messages']:,} messages in "
          f"{figures['publish_s']} s; retried {figures['retried']}, spooled {figures['spooled']}, "
          f"dropped {figures['dropped']}); {figures['publish_msg_per_cpu_s']:,} msg per CPU second")
    print(f"JetStream -> ingest -> DuckDB: {figures['ingest_msg_s']:,} msg/s ({figures['ingested_rows']:,} rows "
          f"in {figures['ingest_s']} s); {figures['ingest_msg_per_cpu_s']:,} msg per CPU second")
    print(f"target {TARGET_MSG_S:,.0f} msg/s each: {'met' if figures['ok'] else 'MISSED'}")
    return figures


if __name__ == "__main__":  # pragma: no cover
    main()
