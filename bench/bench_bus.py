"""Bus benchmark: the feed's NATS sink into JetStream, and ``ingest`` from JetStream into DuckDB.

One local ``nats-server`` with JetStream (stream replicas 1, file storage) on loopback. Phase 1 writes
pre-built events (trades, tickers and book deltas of three symbols) through
:class:`~tickpath.sinks.nats.NatsSink` in batches of 1,000, as the feed pipeline does, and times
from the first write until every message is acknowledged by the server. Phase 2 runs
:func:`~tickpath.ingest.run_ingest` from a fresh durable consumer into a new DuckDB file and times
until every message is committed and acknowledged. Both on uvloop, as the CLI runs them.
Targets (issue 5): at least 100,000 messages per second each. Wall clock on a shared machine with
nats-server on the same cores, so figures are noisy.

Phase 0 measures the server's own ceiling on this machine at this moment, so the Python figures
can be read against it: the same number of pre-rendered ``HPUB`` frames (same headers, similar
payload) written on a bare socket with at most 8,192 unacknowledged, into a second stream of the
same server, then pulled back in batches of 10,000 and acknowledged with one ack-all per batch.
Its client does almost no work per message, so its rate is what nats-server (sharing the cores)
allows.

``BENCH_BUS_PHASES=publish`` (comma-separated, of ``publish``, ``ingest``, ``ceiling``; all three by
default; ``ingest`` reads what ``publish`` wrote, so it runs that too) runs only some phases:
``publish,ceiling`` measures the sink against the server's ceiling in half the time. Each phase
also reports nats-server's own CPU per message (``/proc/<pid>/stat``, user + system, all its
threads): the server and the Python process share the two cores, so the sum of both costs bounds
the rate (the server's figure grows when it has idle cores to spin on, as in the ceiling phase).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import chosen_parts, proc_cpu_s
from tickpath.events import BookDelta, Event, Ticker, Trade
from tickpath.ingest import IngestConfig, run_ingest
from tickpath.natsserver import NatsCluster
from tickpath.runtime import run as run_async
from tickpath.sinks.nats import NatsSink

TARGET_MSG_S = 100_000.0
MESSAGES = 200_000
BATCH = 1000
PHASES = ("publish", "ingest", "ceiling")


def _events(n: int) -> list[Event]:
    out: list[Event] = []
    syms = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    seqs: dict[tuple[int, str], int] = {}
    for i in range(n):
        sym, kind = syms[i % 3], (i // 3) % 3
        seq = seqs[(kind, sym)] = seqs.get((kind, sym), 0) + 1
        common: dict[str, Any] = dict(
            session="bench",
            venue="futures",
            symbol=sym,
            seq=seq,
            event_time_ms=1_700_000_000_000 + i,
            transaction_time_ms=1_700_000_000_000 + i,
            receipt_ns=time.time_ns(),
        )
        if kind == 0:
            out.append(Trade(**common, trade_id=i, price="64000.10", qty="0.005", side="buy"))
        elif kind == 1:
            out.append(
                Ticker(**common, update_id=i, bid_price="64000.0", bid_qty="1.2", ask_price="64000.1", ask_qty="0.7")
            )
        else:
            out.append(
                BookDelta(
                    **common,
                    first_update_id=i,
                    final_update_id=i,
                    prev_final_update_id=i - 1,
                    bids=[("64000.0", "1.2")],
                    asks=[("64000.2", "0")],
                )
            )
    return out


_RAW_PAYLOAD = (
    b'{"type":"trade","session":"bench","venue":"futures","symbol":"BTCUSDT","seq":1,'
    b'"event_time_ms":1700000000000,"transaction_time_ms":1700000000000,'
    b'"receipt_ns":1700000000000000000,"trade_id":1,"first_trade_id":null,"last_trade_id":null,'
    b'"price":"64000.10","qty":"0.005","side":"buy","channel":"trades"}'
)


_ACK_MARK = b"MSG _RAWACK."


async def _server_ceiling(url: str, n: int, window: int = 8192) -> tuple[float, float]:
    """Publish and pull rates (msg/s) of a client that does almost nothing per message."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="RAWCEILING", subjects=["rawceiling.>"], storage="file")
    await js.add_consumer(
        "RAWCEILING", ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.ALL, max_ack_pending=100_000)
    )
    await nc.close()
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    await reader.readline()  # INFO
    writer.write(
        b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
        b'"protocol":1}\r\nSUB _RAWACK.* 1\r\nSUB _RAWPULL.* 2\r\nPING\r\n'
    )
    while not (await reader.readline()).startswith(b"PONG"):
        pass
    frames = []
    for i in range(n):
        hdr = b"NATS/1.0\r\nNats-Msg-Id: raw.%d\r\nTickpath-Publish-Ns: 1700000000000000000\r\n\r\n" % i
        frames.append(
            b"HPUB rawceiling.x _RAWACK.%d %d %d\r\n%s%s\r\n"
            % (i, len(hdr), len(hdr) + len(_RAW_PAYLOAD), hdr, _RAW_PAYLOAD)
        )
    acked, sent, tail = 0, 0, b""
    t0 = time.perf_counter()
    while acked < n:
        if sent < n and sent - acked < window:
            k = min(window - (sent - acked), n - sent, 2048)
            writer.write(b"".join(frames[sent : sent + k]))
            sent += k
            continue
        data = tail + await reader.read(1 << 20)
        acked += data.count(_ACK_MARK)
        tail = data[1 - len(_ACK_MARK) :]  # too short to hold a counted marker; completes a cut one
    publish = n / (time.perf_counter() - t0)
    got, buf = 0, b""
    t0 = time.perf_counter()
    while got < n:
        want = min(10_000, n - got)
        body = b'{"batch":%d}' % want
        writer.write(b"PUB $JS.API.CONSUMER.MSG.NEXT.RAWCEILING.raw _RAWPULL.1 %d\r\n%s\r\n" % (len(body), body))
        last, k = b"", 0
        while k < want:
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise ConnectionError("nats-server closed the connection")
            buf += chunk
            pos = 0
            while (eol := buf.find(b"\r\n", pos)) >= 0:
                args = buf[pos:eol].split()
                if args and args[0] in (b"MSG", b"HMSG"):
                    end = eol + 2 + int(args[-1]) + 2
                    if end > len(buf):
                        break
                    if len(args) == (6 if args[0] == b"HMSG" else 5):  # op subject sid reply [hdr] total
                        last, k = args[3], k + 1
                    pos = end
                else:
                    pos = eol + 2
            buf = buf[pos:]
        got += k
        writer.write(b"PUB %s 4\r\n+ACK\r\n" % last)
    pull = n / (time.perf_counter() - t0)
    writer.close()
    return publish, pull


async def _bench(n: int, phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    events = _events(n)
    work = Path(tempfile.mkdtemp(prefix="tickpath-bench-bus-"))
    figures: dict[str, Any] = {"messages": n, "phases": list(phases)}
    ok = True
    async with NatsCluster(1, jetstream=True) as cluster:
        url = cluster.client_urls[0]
        process = cluster.nodes[0].process
        pid = process.pid if process is not None else None
        if "publish" in phases or "ingest" in phases:
            sink = NatsSink.from_url(f"{url}?replicas=1&storage=file&max_inflight=8192", spool=str(work / "spool"))
            await sink.start()
            t0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu_s(pid)
            for i in range(0, n, BATCH):
                await sink.write(events[i : i + BATCH])
            await sink.flush()
            publish_s, publish_cpu = time.perf_counter() - t0, time.process_time() - c0
            publish_server_cpu = proc_cpu_s(pid) - s0
            await sink.close()
            stats = sink.stats.as_dict()
            publish_rate = n / publish_s
            figures.update(
                {
                    "publish_msg_s": round(publish_rate),
                    "publish_s": round(publish_s, 3),
                    "published": stats["published"],
                    "retried": stats["retried"],
                    "spooled": stats["spooled"],
                    "dropped": stats["dropped"],
                    # This process's CPU seconds (all threads; nats-server's own CPU not included): what the
                    # rate would be with a core to itself, since the shared machine's wall clock is noisy.
                    "publish_cpu_s": round(publish_cpu, 3),
                    "publish_msg_per_cpu_s": round(n / publish_cpu),
                    "publish_cpu_us_per_msg": round(publish_cpu / n * 1e6, 2),
                    "publish_server_cpu_us_per_msg": round(publish_server_cpu / n * 1e6, 2),
                }
            )
            ok = ok and publish_rate >= TARGET_MSG_S and stats["published"] == n
        if "ingest" in phases:
            c0, s0 = time.process_time(), proc_cpu_s(pid)
            res = await run_ingest(IngestConfig(url, f"duckdb:{work / 'bus.duckdb'}", batch=10_000, max_messages=n))
            ingest_cpu, ingest_server_cpu = time.process_time() - c0, proc_cpu_s(pid) - s0
            ingest_rate = n / res.elapsed_s
            lat = res.publish_to_ingest.summary().to_dict("ms")
            figures.update(
                {
                    "ingest_msg_s": round(ingest_rate),
                    "ingest_s": round(res.elapsed_s, 3),
                    "ingested_rows": res.inserted,
                    "ingest_duplicates": res.duplicates,
                    "publish_to_ingest_p50_ms": lat["p50"],
                    "ingest_cpu_s": round(ingest_cpu, 3),
                    "ingest_msg_per_cpu_s": round(n / ingest_cpu),
                    "ingest_server_cpu_us_per_msg": round(ingest_server_cpu / n * 1e6, 2),
                }
            )
            ok = ok and ingest_rate >= TARGET_MSG_S and res.inserted == n
        if "ceiling" in phases:
            s0 = proc_cpu_s(pid)
            raw_publish, raw_pull = await asyncio.wait_for(_server_ceiling(url, n), 300)
            figures.update(
                {
                    "server_ceiling_publish_msg_s": round(raw_publish),
                    "server_ceiling_pull_msg_s": round(raw_pull),
                    "server_ceiling_server_cpu_us_per_msg": round((proc_cpu_s(pid) - s0) / n * 1e6, 2),
                }
            )
    figures.update(
        {
            "stream": "replicas 1, file storage, one local nats-server on loopback",
            "target": {p: TARGET_MSG_S for p in ("publish_msg_s", "ingest_msg_s") if p.split("_")[0] in phases},
            "ok": ok,
        }
    )
    return figures


def main() -> dict[str, Any]:
    figures = run_async(_bench(MESSAGES, chosen_parts("BENCH_BUS_PHASES", PHASES)), handle_signals=False)
    if "publish_msg_s" in figures:
        print(
            f"feed -> JetStream: {figures['publish_msg_s']:,} msg/s ({figures['messages']:,} messages in "
            f"{figures['publish_s']} s; retried {figures['retried']}, spooled {figures['spooled']}, "
            f"dropped {figures['dropped']}); {figures['publish_msg_per_cpu_s']:,} msg per CPU second "
            f"({figures['publish_cpu_us_per_msg']} CPU-us per message; nats-server "
            f"{figures['publish_server_cpu_us_per_msg']})"
        )
    if "ingest_msg_s" in figures:
        print(
            f"JetStream -> ingest -> DuckDB: {figures['ingest_msg_s']:,} msg/s ({figures['ingested_rows']:,} rows "
            f"in {figures['ingest_s']} s); {figures['ingest_msg_per_cpu_s']:,} msg per CPU second"
        )
    if "server_ceiling_publish_msg_s" in figures:
        print(
            f"nats-server ceiling here and now (bare client, pre-rendered frames): publish "
            f"{figures['server_ceiling_publish_msg_s']:,} msg/s, pull {figures['server_ceiling_pull_msg_s']:,} msg/s"
        )
    print(
        f"target {TARGET_MSG_S:,.0f} msg/s each ({', '.join(figures['target']) or 'none measured'}): "
        f"{'met' if figures['ok'] else 'MISSED'}"
    )
    return figures


if __name__ == "__main__":  # pragma: no cover
    main()
