"""kill -9 anywhere: ``tickpath feed`` and, separately, ``tickpath ingest`` SIGKILLed at seeded random
moments and restarted, against ``tickpath sim`` (slow snapshots, so the snapshot phase is wide
enough to hit) and a real JetStream ``nats-server``.

Each kill aims at a phase and is named by what was true at the kill: feed ``snapshot`` (no
``book_synced`` line yet), ``mid_batch`` (its /metrics, scraped just before, had NATS publishes
awaiting their ack), ``streaming``, ``spool_drain`` (aimed two ways: the server killed and restarted,
the kill as soon as the feed says ``nats_reconnected``; or a feed resuming a spool, killed once the
spool's cursor file shows drained batches committed. It counts only if the spool left is not empty,
no ``nats_spool_drained`` came, and a resumed spool was partly sent); ingest ``startup`` (no
``ingest_started`` yet), ``mid_commit`` (its /metrics said a batch was received and not
acknowledged, scraped just before the kill), ``between_batches``. The feed's sink drains 2 records per
acked round trip, so a drain is wide enough to aim at. After every kill: the DuckDB file opens and
holds no fewer rows than before, none twice; a restarted feed logs ``nats_spool_resumed`` with exactly
the records the dead one left (and, unless killed first, a new session); at the end the store holds
every event the stream holds (read back through a consumer of its own), each once.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Callable
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
    metrics_port,
    scrape,
    session_rows,
    spool_ids,
    start_sim,
    store_keys,
)
from tickpath.natsserver import NatsCluster


@dataclass
class Kill9Report:
    seed: int
    feed_aims: Counter[str] = field(default_factory=Counter)  # the phase each feed kill aimed at
    feed_kills: Counter[str] = field(default_factory=Counter)  # the phase it hit, by what was true then
    ingest_kills: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    unclosed_sessions: int = 0
    feeds: int = 0  # feed processes started
    feeds_started: int = 0  # of which logged feed_started (a new session) before they were killed or stopped
    # kills aimed at a spool drain, by route (a drain after a NATS outage, or of the spool resumed at
    # start), and those that hit one (the spool left non-empty, no nats_spool_drained; resumed: partly sent)
    drain_aims: Counter[str] = field(default_factory=Counter)
    drain_kills: Counter[str] = field(default_factory=Counter)
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
        d["feed_aims"], d["feed_kills"], d["ingest_kills"] = map(
            dict, (self.feed_aims, self.feed_kills, self.ingest_kills)
        )
        d["drain_aims"], d["drain_kills"] = dict(self.drain_aims), dict(self.drain_kills)
        d["spooled_records"] = len(self.spooled_ids)
        return d


class _Rig:
    """The running pieces: one JetStream node, the simulator, and the feed's spool."""

    def __init__(self, work: Path, c: NatsCluster, ws: str, rest: str) -> None:
        self.work, self.c = work, c
        self.host = c.client_urls[0].removeprefix("nats://")
        self.spool = work / "spool"
        self.db = work / "ticks.duckdb"
        # drain_batch=2: a drain of a hundred spooled records takes fifty acked round trips, a phase
        # wide enough to aim a kill at (the default 1,024 sends it in one)
        self.sink = f"nats://{self.host}?spool={self.spool}&ack_timeout_s=0.5&drain_batch=2"
        self.ws, self.rest = ws, rest
        self.sessions: list[str] = []  # of feeds that logged feed_started
        self.feeds = 0

    async def feed(self, started: bool = True) -> Proc:
        """A new feed; ``started``: wait until it says so, with a session it has not had before."""
        # --snapshot-limit 100 (weight 5, not spot's 250): feeds restarted every few seconds would
        # spend the per-IP 6,000 a minute that every feed's pacer counts from x-mbx-used-weight-1m;
        # the next one waited for the minute to roll over and dq rightly called its L2, trailing
        # trades by 8-14 s, a stall (seen in 3 of 5 short soak runs)
        args = (*feed_args(self.ws, self.rest, self.sink), "--metrics-port", "0", "--snapshot-limit", "100")
        p = await Proc.start("feed", *args)
        self.feeds += 1
        if started:
            await self.said_started(p)
        return p

    async def said_started(self, p: Proc) -> None:
        line = await p.wait_line("feed_started", 30)
        session = re.search(r"session=(\w+)", line)
        assert session is not None and session[1] not in self.sessions, line  # a new session, said so
        self.sessions.append(session[1])

    def keep_log(self, p: Proc) -> None:
        """The feed's stderr, in the work directory (feed-N.log), for a run that has to be read after."""
        (self.work / f"feed-{self.feeds}.log").write_text("\n".join(p.lines) + "\n")

    async def ingest(self, *extra: str) -> Proc:
        return await Proc.start("ingest", *ingest_args(self.host, self.db, *extra))


FEED_AIMS = ("snapshot", "mid_batch", "streaming", "spool_drain")
INGEST_AIMS = ("startup", "mid_commit", "between_batches")
_INFLIGHT = r'tickpath_feed_sink_pending\{sink="nats",state="inflight"\}'
_ACKS_PENDING = r"tickpath_ingest_acks_pending\{[^}]*\}"


@dataclass
class _FeedAt:
    """A feed about to be killed and what the harness knows of the moment."""

    feed: Proc
    aim: str
    before: list[str]  # the spool it started with
    restart: asyncio.Task[None] | None = None  # a NATS restart under way (the reconnect route)
    drain_from: int = 0  # the line from which a drain of the spool is under way
    inflight: float = 0.0  # the sink's publishes awaiting their ack, last scraped


def aims(rng: random.Random, phases: tuple[str, ...], n: int) -> list[str]:
    """``n`` phases to aim at: every one once in a seeded shuffled order, then drawn at random (so
    even a short run aims at each)."""
    first = rng.sample(phases, len(phases))
    return (first + [rng.choice(phases) for _ in range(n - len(first))])[:n]


async def _feed_round(rig: _Rig, rng: random.Random, report: Kill9Report, aim: str) -> None:
    """Start the feed, kill it in the phase ``aim``, check the spool it leaves."""
    report.feed_aims[aim] += 1
    before = spool_ids(rig.spool)  # what the last feed left: this one drains it first
    if aim == "spool_drain" and before:
        # the spool it resumes drains 2 records at a time as soon as it connects, before feed_started
        report.drain_aims["resume"] += 1
        at = _FeedAt(await rig.feed(started=False), aim, before)
        await at.feed.wait_line("nats_spool_resumed", 30)
        await _cursor_moved(rig.spool, rng.randint(1, 3))
        return await _kill_feed(rig, at, report)
    at = _FeedAt(await rig.feed(), aim, before)
    port = await metrics_port(at.feed)
    if aim == "snapshot":
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # snapshots take 0.8 s (sim --snapshot-delay-ms)
    else:
        await at.feed.wait_line("book_synced", 30)
        await asyncio.sleep(rng.uniform(0.05, 0.8))
        if aim == "mid_batch":
            at.inflight = await _scrape_until(port, _INFLIGHT, lambda n: n > 0, rng.uniform(1.0, 3.0))
        elif aim == "spool_drain":
            report.drain_aims["reconnect"] += 1
            at.restart, at.drain_from = await _outage_then_reconnect(rig, at.feed, rng)
    await _kill_feed(rig, at, report)


async def _kill_feed(rig: _Rig, at: _FeedAt, report: Kill9Report) -> None:
    """SIGKILL the feed, then name the phase it was in by what was true at the kill."""
    synced, drained = at.feed.seen("book_synced"), at.feed.seen("nats_spool_drained", at.drain_from)
    await at.feed.kill9()
    rig.keep_log(at.feed)
    report.spool_resumed.append(_resumed(at.feed))
    if at.restart is not None:
        await at.restart
    left = spool_ids(rig.spool)  # read only once the feed is dead: opening a spool may repair its tail
    sent = len(set(at.before) - set(left))  # of the spool it resumed, what this feed got acknowledged
    resumed_midway = 0 < sent < len(at.before)
    if at.aim == "spool_drain" and left and not drained and (at.restart is not None or resumed_midway):
        phase = "spool_drain"
        report.drain_kills["reconnect" if at.restart is not None else "resume"] += 1
    elif not synced:
        phase = "snapshot"
    else:
        phase = "mid_batch" if at.inflight > 0 else "streaming"
    report.feed_kills[phase] += 1
    report.spool_left.append(len(left))
    report.spooled_ids.update(left)


async def _cursor_moved(spool: Path, times: int, timeout: float = 5.0) -> None:
    """Return once the spool's ``cursor`` file (rewritten, by rename, on each commit of a drained
    batch) has changed ``times`` times: the drain is under way, by the sink's own record of it."""
    cursor = spool / "cursor"

    def read() -> str:
        try:
            return cursor.read_text()
        except OSError:
            return ""

    last, deadline = read(), time.monotonic() + timeout
    while times > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
        now = read()
        times -= now != last
        last = now


async def _scrape_until(port: int, pattern: str, want: Callable[[float], bool], budget_s: float) -> float:
    """Scrape ``pattern`` from /metrics until ``want(value)``, up to ``budget_s``; the last value
    read (what was true just before a kill that follows at once)."""
    deadline, value = time.monotonic() + budget_s, 0.0
    while time.monotonic() < deadline:
        got = await scrape(port, pattern)
        value = got if got is not None else value
        if got is not None and want(got):
            break
    return value


async def _outage_then_reconnect(rig: _Rig, feed: Proc, rng: random.Random) -> tuple[asyncio.Task[None], int]:
    """Kill the server long enough for the feed to spool, start it again, and return as soon as the
    feed says it reconnected (its drain of the spool starts then): the restart (still waiting for
    the node to be ready) and the index of the line from which the drain runs."""
    await rig.c.kill(0)
    await asyncio.sleep(rng.uniform(1.0, 2.0))  # acks time out (0.5 s): the feed spools
    mark = len(feed.lines)
    restart = asyncio.create_task(rig.c.restart(0))
    await feed.wait_line("nats_reconnected", 30, since=mark)
    return restart, mark


async def _ingest_round(rig: _Rig, rng: random.Random, report: Kill9Report, before: int, aim: str) -> int:
    """Start ingest, kill it in a chosen phase; the store must open with no fewer rows, none twice."""
    ingest = await rig.ingest("--metrics-port", "0")
    if aim != "startup":
        port = await metrics_port(ingest)
        await ingest.wait_line("ingest_started", 30)
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        # mid-commit: a batch received and not yet acknowledged (acked only after its DuckDB commit)
        want: Callable[[float], bool] = (lambda n: n > 0) if aim == "mid_commit" else (lambda n: n == 0)
        pending = await _scrape_until(port, _ACKS_PENDING, want, rng.uniform(0.2, 1.0))
        phase = "mid_commit" if pending > 0 else "between_batches"
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
            for aim in aims(rng, FEED_AIMS, feed_kills):
                await _feed_round(rig, rng, report, aim)
            feed = await rig.feed()  # a last feed: drains the spool, keeps publishing while ingest dies
            report.spool_resumed.append(_resumed(feed))
            report.feeds, report.feeds_started = rig.feeds, len(rig.sessions)
            rows = 0
            for aim in aims(rng, INGEST_AIMS, ingest_kills):
                rows = await _ingest_round(rig, rng, report, rows, aim)
            if report.spool_left and report.spool_left[-1]:
                await feed.wait_line("nats_spool_drained", 30)
            assert await feed.stop(60) == 130, feed.lines[-10:]
            rig.keep_log(feed)
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
