"""Bus benchmark: the feed's NATS sink into JetStream, and ``ingest`` from JetStream into DuckDB.

One local ``nats-server`` with JetStream (stream replicas 1, file storage) on loopback. Phase 1 writes
pre-built events (trades, tickers and book deltas of three symbols) through
:class:`~tickpath.sinks.nats.NatsSink` in batches of 1,000, as the feed pipeline does, and times
from the first write until every message is acknowledged by the server. Phase 2 runs
:func:`~tickpath.ingest.run_ingest` from a fresh durable consumer into a new DuckDB file and times
until every message is committed and acknowledged. Both on uvloop, as the CLI runs them.
Targets (issue 5): at least 100,000 messages per second each. Wall clock on a shared machine with
nats-server on the same cores, so figures are noisy.

The yardsticks are the server's own ceilings on this machine at this moment, measured in the same
run by bare socket clients that do almost no work per message. Publish: the same number of
pre-rendered ``HPUB`` frames (same headers, similar payload) written with at most 8,192
unacknowledged, into a second stream of the same server. Pull (issue 17's yardstick for ingest): the
stream phase 1 wrote, read by a fresh durable with ingest's own consumer settings
(:func:`~tickpath.ingest.consumer.consumer_config`: explicit acks) in pull requests of the same
size as ingest's, every delivery acknowledged with its own ``+ACK`` written with the next request;
nothing is decoded. It runs once before and once after ingest, and ``ingest_ratio`` is ingest's rate
over their mean (target >= 0.60).

``BENCH_BUS_PHASES`` (comma-separated, of ``publish``, ``ingest``, ``ceiling``; all three by
default) picks phases; ``publish`` always runs, since the others read what it wrote:
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
TARGET_INGEST_RATIO = 0.60  # issue 17: ingest at least this share of the server's pull ceiling
MESSAGES = 200_000
BATCH = 1000  # events per sink write, as the feed pipeline writes them
INGEST_BATCH = 10_000  # messages per pull request, for ingest and the pull ceiling alike
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


async def _raw_connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare protocol connection (headers on), subscribed to the ceiling clients' reply subjects."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    await reader.readline()  # INFO
    writer.write(
        b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
        b'"protocol":1}\r\nSUB _RAWACK.* 1\r\nSUB _RAWPULL.* 2\r\nPING\r\n'
    )
    while not (await reader.readline()).startswith(b"PONG"):
        pass
    return reader, writer


async def _publish_ceiling(url: str, n: int, window: int = 8192) -> float:
    """Publish rate (msg/s) of a client that does almost nothing per message, into its own stream."""
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name="RAWCEILING", subjects=["rawceiling.>"], storage="file")
    await nc.close()
    reader, writer = await _raw_connect(url)
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
    writer.close()
    return n / (time.perf_counter() - t0)


async def _pull_ceiling(url: str, n: int, batch: int, durable: str, ack_all: bool = False) -> float:
    """Pull rate (msg/s) of a bare client that decodes nothing: the stream ``ingest`` reads, from a
    fresh durable with ingest's own consumer settings (explicit acks), pulled in ``batch``-sized
    requests; every delivery acknowledged with its own ``+ACK``, written with the next request.
    ``ack_all``: the durable acknowledges all up to a sequence, and one ``+ACK`` per batch does."""
    import nats
    from nats.js.api import AckPolicy

    from tickpath.ingest.consumer import consumer_config

    nc = await nats.connect(url)
    cfg = consumer_config(IngestConfig(url, "duckdb:unused.duckdb", batch=batch), durable)
    if ack_all:
        cfg.ack_policy = AckPolicy.ALL
    await nc.jetstream().add_consumer("TICKPATH", cfg)
    await nc.close()
    reader, writer = await _raw_connect(url)
    got, buf, acks = 0, b"", b""
    t0 = time.perf_counter()
    while got < n:
        want = min(batch, n - got)
        body = b'{"batch":%d}' % want
        writer.write(
            acks
            + b"PUB $JS.API.CONSUMER.MSG.NEXT.TICKPATH.%s _RAWPULL.1 %d\r\n%s\r\n" % (durable.encode(), len(body), body)
        )
        replies: list[bytes] = []
        while len(replies) < want:
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
                        replies.append(args[3])
                    pos = end
                else:
                    pos = eol + 2
            buf = buf[pos:]
        got += len(replies)
        acks = b"".join([b"PUB %s 4\r\n+ACK\r\n" % r for r in (replies[-1:] if ack_all else replies)])
    writer.write(acks + b"PING\r\n")
    await writer.drain()
    rate = n / (time.perf_counter() - t0)
    writer.close()
    return rate


async def _publish(url: str, pid: int | None, events: list[Event], work: Path) -> dict[str, Any]:
    """Phase 1: the events through the NATS sink, timed until the server acknowledged every one."""
    n = len(events)
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
    return {
        "publish_msg_s": round(n / publish_s),
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


async def _ingest(url: str, pid: int | None, n: int, work: Path) -> dict[str, Any]:
    """Phase 2: ``run_ingest`` from a fresh durable into a new DuckDB file, until all is committed."""
    c0, s0 = time.process_time(), proc_cpu_s(pid)
    res = await run_ingest(IngestConfig(url, f"duckdb:{work / 'bus.duckdb'}", batch=INGEST_BATCH, max_messages=n))
    ingest_cpu, ingest_server_cpu = time.process_time() - c0, proc_cpu_s(pid) - s0
    return {
        "ingest_msg_s": round(n / res.elapsed_s),
        "ingest_s": round(res.elapsed_s, 3),
        "ingested_rows": res.inserted,
        "ingest_duplicates": res.duplicates,
        "publish_to_ingest_p50_ms": res.publish_to_ingest.summary().to_dict("ms")["p50"],
        "ingest_cpu_s": round(ingest_cpu, 3),
        "ingest_msg_per_cpu_s": round(n / ingest_cpu),
        "ingest_cpu_us_per_msg": round(ingest_cpu / n * 1e6, 2),
        "ingest_server_cpu_us_per_msg": round(ingest_server_cpu / n * 1e6, 2),
    }


async def _pull_ceiling_figure(
    url: str, pid: int | None, n: int, durable: str, ack_all: bool = False
) -> tuple[float, float]:
    """One pull-ceiling run: its rate and nats-server's CPU-us per message meanwhile."""
    s0 = proc_cpu_s(pid)
    rate = await asyncio.wait_for(_pull_ceiling(url, n, INGEST_BATCH, durable, ack_all), 300)
    return rate, (proc_cpu_s(pid) - s0) / n * 1e6


async def _bench(n: int, phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="tickpath-bench-bus-"))
    figures: dict[str, Any] = {"messages": n, "phases": list(phases)}
    async with NatsCluster(1, jetstream=True) as cluster:
        url = cluster.client_urls[0]
        process = cluster.nodes[0].process
        pid = process.pid if process is not None else None
        figures.update(await _publish(url, pid, _events(n), work))  # every other phase reads its stream
        pulls: list[tuple[float, float]] = []
        if "ceiling" in phases:  # the pull ceiling brackets ingest: before and after it, same stream
            pulls.append(await _pull_ceiling_figure(url, pid, n, "ceiling-before"))
        if "ingest" in phases:
            figures.update(await _ingest(url, pid, n, work))
        if "ceiling" in phases:
            pulls.append(await _pull_ceiling_figure(url, pid, n, "ceiling-after"))
            # For reference: what the server allows when one ack settles a whole batch (ack policy
            # all), a policy ingest cannot use (tickpath.ingest.consumer._Puller.ack says why).
            ack_all_rate, ack_all_cpu = await _pull_ceiling_figure(url, pid, n, "ceiling-ackall", ack_all=True)
            s0 = proc_cpu_s(pid)
            raw_publish = await asyncio.wait_for(_publish_ceiling(url, n), 300)
            pull_mean = sum(r for r, _ in pulls) / len(pulls)
            figures.update(
                {
                    "server_ceiling_publish_msg_s": round(raw_publish),
                    "server_ceiling_publish_server_cpu_us_per_msg": round((proc_cpu_s(pid) - s0) / n * 1e6, 2),
                    "server_ceiling_pull_msg_s": round(pull_mean),
                    "server_ceiling_pull_before_after_msg_s": [round(r) for r, _ in pulls],
                    "server_ceiling_pull_server_cpu_us_per_msg": round(sum(c for _, c in pulls) / len(pulls), 2),
                    "server_ceiling_pull_ack_all_msg_s": round(ack_all_rate),
                    "server_ceiling_pull_ack_all_server_cpu_us_per_msg": round(ack_all_cpu, 2),
                    "publish_ratio": round(figures["publish_msg_s"] / raw_publish, 2),
                }
            )
            if "ingest_msg_s" in figures:
                figures["ingest_ratio"] = round(figures["ingest_msg_s"] / pull_mean, 2)
                figures["ingest_ratio_to_ack_all"] = round(figures["ingest_msg_s"] / ack_all_rate, 2)
    return _judge(figures, phases)


def _judge(figures: dict[str, Any], phases: tuple[str, ...]) -> dict[str, Any]:
    """Targets: publish and ingest rates (issue 5), ingest against the pull ceiling (issue 17)."""
    target: dict[str, float] = {"publish_msg_s": TARGET_MSG_S}
    ok = figures["publish_msg_s"] >= TARGET_MSG_S and figures["published"] == figures["messages"]
    if "ingest" in phases:
        target["ingest_msg_s"] = TARGET_MSG_S
        ok = ok and figures["ingest_msg_s"] >= TARGET_MSG_S and figures["ingested_rows"] == figures["messages"]
    if "ingest_ratio" in figures:
        target["ingest_ratio"] = TARGET_INGEST_RATIO
        ok = ok and figures["ingest_ratio"] >= TARGET_INGEST_RATIO
    figures.update(
        {"stream": "replicas 1, file storage, one local nats-server on loopback", "target": target, "ok": ok}
    )
    return figures


def main() -> dict[str, Any]:
    figures = run_async(_bench(MESSAGES, chosen_parts("BENCH_BUS_PHASES", PHASES)), handle_signals=False)
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
            f"in {figures['ingest_s']} s); {figures['ingest_msg_per_cpu_s']:,} msg per CPU second "
            f"({figures['ingest_cpu_us_per_msg']} CPU-us per message; nats-server "
            f"{figures['ingest_server_cpu_us_per_msg']})"
        )
    if "server_ceiling_publish_msg_s" in figures:
        before_after = " / ".join(f"{r:,}" for r in figures["server_ceiling_pull_before_after_msg_s"])
        print(
            f"nats-server ceiling here and now (bare client): publish {figures['server_ceiling_publish_msg_s']:,} "
            f"msg/s (sink ratio {figures['publish_ratio']}); pull with an ack per message, same stream, "
            f"{figures['server_ceiling_pull_msg_s']:,} msg/s (before / after ingest: {before_after}; nats-server "
            f"{figures['server_ceiling_pull_server_cpu_us_per_msg']} CPU-us per message)"
        )
        print(
            f"  pull with one ack-all per batch (a policy ingest cannot use): "
            f"{figures['server_ceiling_pull_ack_all_msg_s']:,} msg/s (nats-server "
            f"{figures['server_ceiling_pull_ack_all_server_cpu_us_per_msg']} CPU-us per message)"
        )
    if "ingest_ratio" in figures:
        print(
            f"ingest / pull ceiling: {figures['ingest_ratio']} (target >= {TARGET_INGEST_RATIO}); "
            f"/ ack-all pull: {figures['ingest_ratio_to_ack_all']}"
        )
    print(f"targets ({', '.join(figures['target'])}): {'met' if figures['ok'] else 'MISSED'}")
    return figures


if __name__ == "__main__":  # pragma: no cover
    main()
