"""One worker process of ``tickpath feed --workers N``, and where each worker writes.

The supervisor (:mod:`tickpath.feed.supervisor`) starts ``python -m tickpath.feed.workers`` with the
worker's frozen :class:`FeedConfig` pickled on stdin (same code on both sides, so no argument
re-parsing can drift), and reads JSON lines on its stdout: ``{"type": "status", "summary": ...}``
every second and ``{"type": "summary", ...}`` at the end. The worker is an ordinary feed: its own
connections, books and sink writers; SIGTERM flushes its sinks like a single-process feed's.

DuckDB allows one writer per file, so with several workers ``duckdb:PATH`` becomes per-worker Parquet
files under ``PATH.parts/`` (the Parquet sink's files are named by session, so workers never collide)
and ``PATH`` itself a DuckDB file of views over them (:func:`write_views`), which ``tickpath dq`` and
any DuckDB client read as the usual tables. Why Parquet rather than one writer fed by the workers:
docs/performance.md, "Feed workers" (measured by bench/bench_workers.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
from pathlib import Path
from typing import TextIO

import duckdb

from tickpath.errors import ConfigError, InterruptedRunError, TickpathError
from tickpath.feed.config import FeedConfig
from tickpath.feed.snapshot import FeedSummary
from tickpath.runtime import run as run_async
from tickpath.runtime import streaming_gc
from tickpath.tables import SCHEMAS

STATUS_PERIOD_S = 1.0


def parts_dir(duckdb_path: str) -> Path:
    """Where the workers of a ``duckdb:PATH`` target write their Parquet files."""
    return Path(duckdb_path + ".parts")


def worker_sinks(sinks: tuple[str, ...], worker: int, workers: int) -> tuple[str, ...]:
    """Each sink URL as worker ``worker`` of ``workers`` uses it (unchanged for one worker)."""
    if workers == 1:
        return sinks
    out: list[str] = []
    for url in sinks:
        scheme, _, rest = url.strip().partition(":")
        scheme = scheme.lower()
        if scheme == "duckdb":
            out.append(f"parquet:{parts_dir(rest)}")
        elif scheme == "jsonl":
            if rest in ("", "-"):
                raise ConfigError("--sink jsonl:- needs --workers 1 (several workers cannot share stdout)")
            out.append(f"jsonl:{rest}.w{worker}")
        else:  # parquet (files named by session), nats, pubsub: shared safely by every worker
            out.append(url)
    return tuple(out)


def duckdb_targets(sinks: tuple[str, ...]) -> list[str]:
    """The paths of the ``duckdb:`` sinks (the files that get views over the workers' Parquet)."""
    return [u.strip().partition(":")[2] for u in sinks if u.strip().lower().startswith("duckdb:")]


def _view_sql(table: str, parts: Path) -> str | None:
    """The view of ``table`` over the Parquet files under ``parts`` (None while it has no file yet)."""
    if table == "feed_sessions":
        glob = parts / "feed_sessions" / "*.parquet"
    else:
        glob = parts / "venue=*" / f"channel={table}" / "date=*" / "*.parquet"
    if not any(parts.glob(str(glob.relative_to(parts)))):
        return None
    src = f"read_parquet('{glob}', hive_partitioning = false, union_by_name = true"
    if table == "feed_sessions":  # written at start and at stop: the stopped row wins
        return (
            f"SELECT * FROM {src}) QUALIFY row_number() OVER "
            "(PARTITION BY session, venue ORDER BY ended_ns DESC NULLS LAST) = 1"
        )
    # dq orders rows of equal receipt time by DuckDB's rowid, which a view lacks: the write order
    # (file names are part-<session>-<pid>-<n>, n zero-padded) then the row within the file stands in.
    return (
        f"SELECT * EXCLUDE (filename, file_row_number), row_number() OVER (ORDER BY filename, file_row_number) "
        f"- 1 AS rowid FROM {src}, filename = true, file_row_number = true)"
    )


def write_views(path: str) -> list[str]:
    """Make ``path`` a DuckDB file whose tables are views over ``PATH.parts/`` (empty tables for a
    table with no file yet, so a reader sees every table). Returns the tables that are views."""
    parts = parts_dir(path).resolve()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    views: list[str] = []
    con = duckdb.connect(path)
    try:
        for table, schema in SCHEMAS.items():
            sql = _view_sql(table, parts)
            row = con.execute(
                "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table]
            ).fetchone()
            if row is not None:  # refreshing: the empty table of an earlier call, or the view
                con.execute(f"DROP {'VIEW' if row[0] == 'VIEW' else 'TABLE'} {table}")
            if sql is None:
                con.register("_empty", schema.empty_table())
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM _empty")
                con.unregister("_empty")
            else:
                con.execute(f"CREATE VIEW {table} AS {sql}")
                views.append(table)
    finally:
        con.close()
    return views


def _emit(out: TextIO, kind: str, summary: FeedSummary) -> None:
    out.write(json.dumps({"type": kind, "summary": summary.to_dict()}, default=str) + "\n")
    out.flush()


async def _serve(config: FeedConfig, out: TextIO) -> FeedSummary:
    from tickpath.feed.run import Feed

    feed = Feed(config)
    task = asyncio.create_task(feed.run())
    parent = os.getppid()
    try:
        while not task.done():
            await asyncio.wait([task], timeout=STATUS_PERIOD_S)
            if os.getppid() != parent:  # supervisor gone (kill -9): stop and flush, do not linger
                break
            if feed.started.is_set():
                _emit(out, "status", FeedSummary.from_snapshot(feed.snapshot()))
        return task.result()
    finally:
        if not task.done():  # SIGTERM: the feed's own finally flushes every sink
            task.cancel()
            await asyncio.wait([task])
        _emit(out, "summary", FeedSummary.from_snapshot(feed.snapshot()))


def main() -> int:
    """Entry point of a worker process: config on stdin, JSON lines on stdout; exit 0, 130 after a
    signal, or a TickpathError's code (the supervisor judges the merged summary itself)."""
    config: FeedConfig = pickle.loads(sys.stdin.buffer.read())
    out = sys.stdout
    try:
        with streaming_gc():
            run_async(_serve(config, out))
        return 0
    except InterruptedRunError:
        return InterruptedRunError.exit_code
    except TickpathError as exc:
        print(f"tickpath feed worker: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
