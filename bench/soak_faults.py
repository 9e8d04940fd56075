"""Node-loss and kill -9 soak (#18.1, #18.2, long variants; ``make soak``): the harnesses of
tests/faults at the issue's counts, seeded, their figures printed and written as JSON.

    python -m bench.soak_faults [--node-kills 20] [--feed-kills 50] [--ingest-kills 50]
                                [--seed 1801] [--rate 50] [--duration S] [--only nodes|kill9]
                                [--out FILE] [--keep DIR]

**Node kills** (``tests.faults.nodekill.run_node_kills``): a real 3-node JetStream cluster, streams at
replicas 3, ``tickpath sim`` -> ``feed`` -> JetStream -> ``ingest`` -> DuckDB while a seeded driver
SIGKILLs and restarts a node (the stream leader about half the time). Checked: DuckDB rows equal the
events the feed accepted, none twice, every stream's seq 1..n.

**kill -9** (``tests.faults.kill9.run_kill9``, seed + 1): ``feed`` and then ``ingest`` SIGKILLed at
seeded moments (feed: snapshot fetch, mid-batch, streaming, spool drain after an outage or of the
spool it resumed; ingest: start-up, mid-commit, between batches) and restarted. Checked: the store
opens after every kill with no fewer rows, none twice; each feed resumes exactly the spool the last
one left; at the end the store equals the stream's events; dq judges each killed session to its last row.

``--duration S`` (``SOAK_SECONDS``) scales the kill counts down to fit about S seconds (a node kill
takes ~2.5 s, a kill -9 round ~3 s on the shared machine); without it the issue's counts run.
A check that fails is reported in ``failures`` (and the exit is non-zero), not raised: the figures of
the run are the point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.faults.kill9 import Kill9Report, judge_dq, run_kill9
from tests.faults.nodekill import NodeKillReport, run_node_kills

NODE_KILL_S, KILL9_ROUND_S = 2.5, 3.0  # rough seconds per kill, for --duration


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak_faults")
    p.add_argument("--node-kills", type=int, default=20)
    p.add_argument("--feed-kills", type=int, default=50)
    p.add_argument("--ingest-kills", type=int, default=50)
    p.add_argument("--seed", type=int, default=int(os.environ.get("TICKPATH_FAULT_SEED", "1801")))
    p.add_argument("--rate", type=float, default=50.0, help="simulator depth updates/s per symbol (2 symbols)")
    p.add_argument("--duration", type=float, help="scale the kill counts down to about this many seconds")
    p.add_argument("--only", choices=("nodes", "kill9"), help="run one harness")
    p.add_argument("--out", help="write the figures as JSON here too")
    p.add_argument("--keep", help="work in this directory and keep it (stores, spools, cluster logs)")
    a = p.parse_args(argv)
    if a.duration is not None:
        full = a.node_kills * NODE_KILL_S + (a.feed_kills + a.ingest_kills) * KILL9_ROUND_S
        scale = min(1.0, a.duration / full)
        a.node_kills, a.feed_kills, a.ingest_kills = (
            max(2, math.ceil(n * scale)) for n in (a.node_kills, a.feed_kills, a.ingest_kills)
        )
    return a


def node_problems(r: NodeKillReport, kills: int) -> list[str]:
    """What is wrong with a node-kill run (the fast test's checks)."""
    nats = r.feed.get("sinks", {}).get("nats", {})
    bad = [] if r.kills == kills else [f"{r.kills} kills of {kills}"]
    if nats.get("dropped", 0) or nats.get("spool_pending", 0):
        bad.append(f"feed dropped {nats.get('dropped')} / left {nats.get('spool_pending')} spooled")
    if r.duplicates:
        bad.append(f"{r.duplicates} duplicate rows")
    if r.rows != r.accepted or not r.rows:
        bad.append(f"{r.rows} rows for {r.accepted} events accepted ({r.accepted - r.rows} lost)")
    bad += [f"gap {g}" for g in r.gaps[:5]]
    return bad if r.sessions_closed else [*bad, "a session without its close record"]


def kill9_problems(r: Kill9Report, db: Path, feeds: int, ingests: int) -> list[str]:
    """What is wrong with a kill -9 run (the fast test's checks)."""
    bad = []
    if sum(r.feed_kills.values()) != feeds or sum(r.ingest_kills.values()) != ingests:
        bad.append(f"kills {dict(r.feed_kills)} {dict(r.ingest_kills)}")
    if r.spool_resumed[1:] != r.spool_left[:-1]:
        bad.append(f"spool resumed {r.spool_resumed[1:]} != left {r.spool_left[:-1]}")
    if r.spool_left[-1] or r.spooled_missing:
        bad.append(f"{r.spool_left[-1]} left in the spool, {r.spooled_missing} spooled never stored")
    if r.rows_after_ingest_kill != sorted(r.rows_after_ingest_kill):
        bad.append("rows went down after an ingest kill")
    if r.duplicates or r.missing or r.extra or r.rows != r.stream_events or not r.rows:
        bad.append(f"{r.duplicates} duplicated, {r.missing} missing, {r.extra} extra of {r.stream_events}")
    if r.unclosed_sessions != r.sessions - 1:
        bad.append(f"{r.unclosed_sessions} unclosed of {r.sessions} sessions")
    return bad + [f"gap {g}" for g in r.gaps[:5]] + judge_dq(r, db)


async def _nodes(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    r = await run_node_kills(work, a.seed, kills=a.node_kills, rate=a.rate)
    out = r.as_dict()
    out["failures"] = node_problems(r, a.node_kills)
    return out


async def _kill9(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    r = await run_kill9(work, a.seed + 1, feed_kills=a.feed_kills, ingest_kills=a.ingest_kills, rate=a.rate)
    out = r.as_dict()
    out["failures"] = kill9_problems(r, work / "ticks.duckdb", a.feed_kills, a.ingest_kills)
    out["lost"], out["spool_replayed"] = out["missing"], sum(r.spool_resumed)
    return out


async def _run(a: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "condition": "shared 2-core machine (other engineers' builds and tests running)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": a.seed,
        "rate": a.rate,
    }
    began = time.monotonic()
    for name, harness in (("node_kills", _nodes), ("kill9", _kill9)):
        if a.only and not name.startswith(a.only[:4]):
            continue
        with contextlib.ExitStack() as stack:
            if a.keep:
                work = Path(a.keep) / name
                work.mkdir(parents=True, exist_ok=False)
            else:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"soak-{name}-")))
            try:
                figures[name] = await harness(a, work)
            except AssertionError as exc:  # a process did not do what the harness waited for
                figures[name] = {"failures": [f"harness: {str(exc)[:2000]}"]}
    figures["duration_s"] = round(time.monotonic() - began, 1)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse(argv)
    figures = asyncio.run(_run(a))
    if a.out:
        Path(a.out).write_text(json.dumps(figures, indent=1, default=str))
    return figures


if __name__ == "__main__":
    result = main(sys.argv[1:])
    print(json.dumps(result, indent=1, default=str))
    sys.exit(1 if any(v.get("failures") for v in result.values() if isinstance(v, dict)) else 0)
