"""Randomized node kills: a 3-node JetStream cluster (streams at replicas 3) under ``tickpath feed``
(against ``tickpath sim``) and ``tickpath ingest``, while a seeded driver SIGKILLs and restarts nodes,
the stream leader (as the cluster names it) half of the time. The checks: DuckDB holds exactly the
events the feed accepted (its own summary), none twice, every stream's seq 1..n."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.drivers import Proc, feed_args, gaps, ingest_args, session_rows, start_sim, store_keys, stream_leader
from tickpath.natsserver import NatsCluster


@dataclass
class NodeKillReport:
    seed: int
    kills: int = 0
    leader_kills: int = 0
    leader_changes: int = 0
    accepted: int = 0
    rows: int = 0
    duplicates: int = 0  # rows stored twice (must be 0)
    gaps: list[str] = field(default_factory=list)
    publish_retries: int = 0
    dedup_drops: int = 0  # publishes the server recognised as already stored (Nats-Msg-Id)
    spooled: int = 0
    ingest_redeliveries: int = 0
    ingest_duplicates: int = 0
    sessions_closed: bool = False
    duration_s: float = 0.0
    feed: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "feed"}


class _LeaderWatch:
    """Polls the stream's leader and counts changes (an election: one leader replaced by another)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.current: str | None = None
        self.changes = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            leader = await stream_leader(self.urls)
            if leader is not None:
                if self.current is not None and leader != self.current:
                    self.changes += 1
                self.current = leader
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _chaos(c: NatsCluster, rng: random.Random, kills: int, report: NodeKillReport) -> None:
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.4, 1.2))
        leader = await stream_leader(c.client_urls) if rng.random() < 0.5 else None
        names = [f"{c.cluster_name}-n{i}" for i in range(c.n)]
        target = names.index(leader) if leader in names else rng.randrange(c.n)
        report.leader_kills += leader is not None
        await c.kill(target)
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        await c.restart(target)
        report.kills += 1


async def run_node_kills(work: Path, seed: int, kills: int, rate: float = 50.0) -> NodeKillReport:
    """One run; raises AssertionError (with the seed) on a process failure, returns the figures."""
    report = NodeKillReport(seed)
    rng = random.Random(seed)
    began = time.monotonic()
    db = work / "ticks.duckdb"
    async with NatsCluster(3, jetstream=True, workdir=work / "nats") as c:
        hosts = ",".join(u.removeprefix("nats://") for u in c.client_urls)
        sim, ws, rest = await start_sim(rate, seed)
        feed = ingest = last = None
        watch = _LeaderWatch(c.client_urls)
        try:
            sink = f"nats://{hosts}?replicas=3&spool={work / 'spool'}&ack_timeout_s=1"
            feed = await Proc.start("feed", *feed_args(ws, rest, sink))
            await feed.wait_line("book_synced", 30)
            # No --idle-exit while nodes die: the feed cannot publish through an outage, and an ingest
            # that found the stream drained after 3 quiet seconds would rightly exit (a 20-kill run
            # once ended with 357 of 7,349 rows stored that way). It is stopped, and a last one drains.
            ingest = await Proc.start("ingest", *ingest_args(hosts, db))
            await ingest.wait_line("ingest_started", 30)
            watch.start()
            await _chaos(c, rng, kills, report)
            await asyncio.sleep(1.0)
            assert await feed.stop(60) == 130 and feed.stdout, feed.lines[-10:]  # stopped by SIGTERM
            assert await ingest.stop(60) == 130, ingest.lines[-10:]
            last = await Proc.start("ingest", *ingest_args(hosts, db, "--idle-exit", "3"))
            code = await last.finish(120)
            assert code == 0, f"ingest exited {code}: {last.lines[-10:]} stdout {last.stdout[-800:]!r}"
        finally:
            await watch.stop()
            for p in (feed, ingest, last, sim):
                if p is not None and p.proc.returncode is None:
                    await p.kill9()
            for p in (feed, ingest, last):
                if p is not None:  # their stderr, for a run read after (bench/soak_faults.py --keep)
                    (work / f"{p.name}-{id(p)}.log").write_text("\n".join(p.lines) + "\n")
    _fill(report, feed.summary(), [ingest.summary(), last.summary()], db, watch.changes)
    report.duration_s = round(time.monotonic() - began, 1)
    return report


def _fill(report: NodeKillReport, fs: dict[str, Any], ins: list[dict[str, Any]], db: Path, changes: int) -> None:
    nats = fs["sinks"]["nats"]
    report.feed = fs
    report.accepted = nats["accepted"]
    report.publish_retries = nats.get("retried", 0)
    report.dedup_drops = nats.get("duplicates", 0)
    report.spooled = nats.get("spooled", 0)
    report.leader_changes = changes
    keys = store_keys(db)
    report.rows = len(set(keys))
    report.duplicates = len(keys) - len(set(keys))
    report.gaps = gaps(keys)
    report.ingest_redeliveries = sum(i.get("redeliveries", 0) for i in ins)
    report.ingest_duplicates = sum(i.get("duplicates", 0) for i in ins)
    report.sessions_closed = all(v is not None for v in session_rows(db).values())
