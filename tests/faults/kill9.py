"""kill -9 anywhere: ``tickpath feed`` and, separately, ``tickpath ingest`` SIGKILLed at seeded random
moments and restarted, against ``tickpath sim`` (slow snapshots, so the snapshot phase is wide
enough to hit) and a real JetStream ``nats-server``.

Phases are aimed with the processes' own signals and named by what was true at the kill:
feed ``snapshot`` (no ``book_synced`` line yet), ``streaming`` (books synced, publishing),
``spool_drain`` (the server was killed and restarted, the spool on disk not empty); ingest
``startup`` (no ``ingest_started`` yet), ``mid_commit`` (its /metrics said a batch was received and
not acknowledged, scraped just before the kill), ``between_batches``. After every kill: the DuckDB
file opens and holds no fewer rows than before, none twice; a restarted feed logs a new session and
``nats_spool_resumed`` with exactly the records the dead one left; at the end the store holds every
event the stream holds (read back through a consumer of its own), each once.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.drivers import (
    Key,
    Proc,
    event_id,
    feed_args,
    gaps,
    ingest_args,
    session_rows,
    spool_ids,
    start_sim,
    store_keys,
)
from tickpath.natsserver import NatsCluster


@dataclass
class Kill9Report:
    seed: int
    feed_kills: Counter[str] = field(default_factory=Counter)
    ingest_kills: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    unclosed_sessions: int = 0
    spool_left: list[int] = field(default_factory=list)  # records on disk after each feed kill
    spool_resumed: list[int] = field(default_factory=list)  # what the next feed said it resumed
    spooled_ids: set[str] = field(default_factory=set)
    rows_after_ingest_kill: list[int] = field(default_factory=list)
    stream_events: int = 0
    rows: int = 0
    duplicates: int = 0
    missing: int = 0  # in the stream, not in the store
    extra: int = 0  # in the store, not in the stream
    spooled_missing: int = 0  # left in a dead feed's spool, never reached the store
    gaps: list[str] = field(default_factory=list)
    dq: dict[str, Any] = field(default_factory=dict)  # `tickpath dq --check freshness --json` on the store
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("spooled_ids", "dq")}
        d["feed_kills"], d["ingest_kills"] = dict(self.feed_kills), dict(self.ingest_kills)
        d["spooled_records"] = len(self.spooled_ids)
        return d


class _Rig:
    """The running pieces: one JetStream node, the simulator, and the feed's spool."""

    def __init__(self, work: Path, c: NatsCluster, ws: str, rest: str) -> None:
        self.work, self.c = work, c
        self.host = c.client_urls[0].removeprefix("nats://")
        self.spool = work / "spool"
        self.db = work / "ticks.duckdb"
        self.sink = f"nats://{self.host}?spool={self.spool}&ack_timeout_s=0.5"
        self.ws, self.rest = ws, rest
        self.sessions: list[str] = []

    async def feed(self) -> Proc:
        p = await Proc.start("feed", *feed_args(self.ws, self.rest, self.sink))
        line = await p.wait_line("feed_started", 30)
        session = re.search(r"session=(\w+)", line)
        assert session is not None and session[1] not in self.sessions, line  # a new session, said so
        self.sessions.append(session[1])
        return p

    async def ingest(self, *extra: str) -> Proc:
        return await Proc.start("ingest", *ingest_args(self.host, self.db, *extra))


async def _feed_round(rig: _Rig, rng: random.Random, report: Kill9Report) -> None:
    """Start the feed, kill it in a chosen phase, check the spool it leaves."""
    aim = rng.choice(("snapshot", "streaming", "spool_drain"))
    feed = await rig.feed()
    report.spool_resumed.append(_resumed(feed))
    if aim == "snapshot":
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # snapshots take 0.8 s (sim --snapshot-delay-ms)
    else:
        await feed.wait_line("book_synced", 30)
        await asyncio.sleep(rng.uniform(0.05, 0.8))
    if aim == "spool_drain":
        await _outage_then_reconnect(rig, feed, rng)
    synced = feed.seen("book_synced")
    await feed.kill9()
    left = spool_ids(rig.spool)  # read only once the feed is dead: opening a spool may repair its tail
    phase = "snapshot" if not synced else ("spool_drain" if aim == "spool_drain" and left else "streaming")
    report.feed_kills[phase] += 1
    report.spool_left.append(len(left))
    report.spooled_ids.update(left)


async def _outage_then_reconnect(rig: _Rig, feed: Proc, rng: random.Random) -> None:
    """Kill the server long enough for the feed to spool, start it again, and return just after the
    feed says it reconnected (its drain of the spool starts then)."""
    await rig.c.kill(0)
    await asyncio.sleep(rng.uniform(1.0, 2.0))  # acks time out (0.5 s): the feed spools
    mark = len(feed.lines)
    restart = asyncio.create_task(rig.c.restart(0))
    await feed.wait_line("nats_reconnected", 30, since=mark)
    await asyncio.sleep(rng.uniform(0.0, 0.03))
    await restart


async def _scrape_acks_pending(port: int) -> float | None:
    def get() -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = re.search(r"^tickpath_ingest_acks_pending\{[^}]*\} (\S+)$", text, re.M)
        return float(m[1]) if m else None

    return await asyncio.to_thread(get)


async def _ingest_round(rig: _Rig, rng: random.Random, report: Kill9Report, before: int) -> int:
    """Start ingest, kill it in a chosen phase; the store must open with no fewer rows, none twice."""
    aim = rng.choice(("startup", "mid_commit", "between_batches"))
    ingest = await rig.ingest("--metrics-port", "0")
    phase = "startup"
    if aim != "startup":
        line = await ingest.wait_line("metrics_listening", 30)
        port = int(re.search(r"port=(\d+)", line)[1])  # type: ignore[index]
        await ingest.wait_line("ingest_started", 30)
        deadline = time.monotonic() + rng.uniform(0.2, 1.5)
        phase = "between_batches"
        while time.monotonic() < deadline:
            pending = await _scrape_acks_pending(port)
            if aim == "mid_commit" and pending:
                phase = "mid_commit"
                break
    else:
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        phase = "startup" if not ingest.seen("ingest_started") else "between_batches"
    await ingest.kill9()
    report.ingest_kills[phase] += 1
    if not rig.db.exists():
        return before
    keys = store_keys(rig.db)
    assert len(keys) == len(set(keys)), f"duplicate rows after an ingest kill ({phase})"
    assert len(keys) >= before, f"rows went from {before} to {len(keys)} after an ingest kill ({phase})"
    report.rows_after_ingest_kill.append(len(keys))
    return len(keys)


async def stream_event_ids(url: str) -> list[str]:
    """The ``Nats-Msg-Id`` of every event message the stream holds, read with a consumer of its own."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe("tickpath.>", durable="f1-audit", stream="TICKPATH")
        info = await js.stream_info("TICKPATH")
        out: list[str] = []
        seen = 0
        while seen < info.state.messages:
            msgs = await sub.fetch(1000, timeout=5)
            seen += len(msgs)
            out += [m.headers["Nats-Msg-Id"] for m in msgs if m.headers and m.headers["Nats-Msg-Id"].count(".") == 4]
            for m in msgs:
                await m.ack()
        return out
    finally:
        await nc.close()


async def run_kill9(work: Path, seed: int, feed_kills: int, ingest_kills: int, rate: float = 50.0) -> Kill9Report:
    report = Kill9Report(seed)
    rng = random.Random(seed)
    began = time.monotonic()
    async with NatsCluster(1, jetstream=True, workdir=work / "nats") as c:
        sim, ws, rest = await start_sim(rate, seed, "--snapshot-delay-ms", "800")
        rig = _Rig(work, c, ws, rest)
        try:
            for _ in range(feed_kills):
                await _feed_round(rig, rng, report)
            feed = await rig.feed()  # a last feed: drains the spool, keeps publishing while ingest dies
            report.spool_resumed.append(_resumed(feed))
            rows = 0
            for _ in range(ingest_kills):
                rows = await _ingest_round(rig, rng, report, rows)
            if report.spool_left and report.spool_left[-1]:
                await feed.wait_line("nats_spool_drained", 30)
            assert await feed.stop(60) == 130, feed.lines[-10:]
            ingest = await rig.ingest("--idle-exit", "2")
            assert await ingest.finish(120) == 0, ingest.lines[-10:]
            report.spool_left.append(len(spool_ids(rig.spool)))
            stream = await stream_event_ids(c.client_urls[0])
            dq = await Proc.start("dq", "dq", "--db", str(rig.db), "--check", "freshness", "--json")
            assert await dq.finish(120) in (0, 9), dq.lines[-5:]  # 9: a check failed (judged below)
            report.dq = dq.summary()
        finally:
            await sim.kill9()
    _judge(report, store_keys(rig.db), stream, session_rows(rig.db))
    report.duration_s = round(time.monotonic() - began, 1)
    return report


def _resumed(feed: Proc) -> int:
    m = re.search(r"nats_spool_resumed records=(\d+)", "\n".join(feed.lines))
    return int(m[1]) if m else 0


def judge_dq(report: Kill9Report, db: Path) -> list[str]:
    """What is wrong with dq's freshness verdict on the store: every killed session must be noted as
    ended without its close record, and judged only up to its own last row."""
    import duckdb

    check = next(c for c in report.dq["checks"] if c["name"] == "freshness")
    con = duckdb.connect(str(db), read_only=True)
    try:
        union = " UNION ALL ".join(f"SELECT session, receipt_ns FROM {t}" for t in ("trades", "tickers", "l2"))
        last = dict(con.execute(f"SELECT session, max(receipt_ns) FROM ({union}) GROUP BY session").fetchall())
    finally:
        con.close()
    unclosed = {n["session"]: n["detail"] for n in check["notes"] if n["issue"] == "unclosed_session"}
    bad = [f"stall finding: {f}" for f in check["findings"]]
    if len(unclosed) != report.unclosed_sessions:
        bad.append(f"{len(unclosed)} unclosed-session notes for {report.unclosed_sessions} killed feeds")
    bad += [f"{s}: {d}" for s, d in unclosed.items() if "ended without its close record" not in d]
    bad += [
        f"{m['kind']} {m['session']} {m['symbol']} {m['channel']} judged {m['from_ns']}..{m['to_ns']}, "
        f"past its last row {last[m['session']]}: {m}"
        for m in check["metrics"]
        # ends are exclusive: a session's judged span ends 1 ns after its last row (a stream with no
        # message at all, a feed killed before its first snapshot, included)
        if m["session"] in unclosed and m.get("to_ns") and m["session"] in last and m["to_ns"] > last[m["session"]] + 1
    ]
    return bad


def _judge(report: Kill9Report, keys: list[Key], stream: list[str], sessions: dict[str, int | None]) -> None:
    ids = [event_id(k) for k in keys]
    report.rows = len(set(ids))
    report.duplicates = len(ids) - len(set(ids))
    report.stream_events = len(set(stream))
    report.missing = len(set(stream) - set(ids))
    report.extra = len(set(ids) - set(stream))
    report.spooled_missing = len(report.spooled_ids - set(ids))
    report.gaps = gaps(keys)
    report.sessions = len(sessions)
    report.unclosed_sessions = sum(v is None for v in sessions.values())
