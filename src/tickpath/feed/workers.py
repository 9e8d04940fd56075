"""One worker process of ``tickpath feed --workers N``, and where each worker writes.

The supervisor (:mod:`tickpath.feed.supervisor`) starts ``python -m tickpath.feed.workers`` with the
worker's frozen :class:`FeedConfig` pickled on stdin (same code on both sides, so no argument
re-parsing can drift), and reads JSON lines on its stdout: ``{"type": "status", "summary": ...}``
every second and ``{"type": "summary", ...}`` at the end. The worker is an ordinary feed: its own
connections, books and sink writers; SIGTERM flushes its sinks like a single-process feed's.

DuckDB allows one writer per file, so with several workers ``duckdb:PATH`` becomes per-worker Parquet
files under ``PATH.parts/`` (the Parquet sink's files are named by session, so workers never collide)
and ``PATH`` itself a DuckDB file of views over them (:func:`write_views`, written as the workers
start), which ``tickpath dq`` and any DuckDB client read as the usual tables while the feed runs and
after it stopped or was killed. Why Parquet rather than one writer fed by the workers:
docs/performance.md, "Feed workers" (measured by bench/bench_workers.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import sys
from pathlib import Path
from typing import TextIO

import duckdb
import pyarrow.parquet as pq

from tickpath.errors import ConfigError, InterruptedRunError, TickpathError
from tickpath.feed.config import FeedConfig
from tickpath.feed.snapshot import FeedSummary
from tickpath.runtime import run as run_async
from tickpath.runtime import streaming_gc
from tickpath.tables import SCHEMAS

STATUS_PERIOD_S = 1.0
_SPOOL_RE = re.compile(r"([?&]spool=)([^&]+)")


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
            out.append(
                f"parquet:{parts_dir(_duckdb_file(rest))}?label=duckdb"
            )  # named as the target in stats and /metrics
        elif scheme == "jsonl":
            if rest in ("", "-"):
                raise ConfigError("--sink jsonl:- needs --workers 1 (several workers cannot share stdout)")
            out.append(f"jsonl:{rest}.w{worker}")
        elif scheme == "nats" and _SPOOL_RE.search(url):
            # one spool directory per worker: two processes must not append to and drain one spool;
            # a restarted worker k resumes its own
            out.append(_SPOOL_RE.sub(lambda m: f"{m.group(1)}{m.group(2).rstrip('/')}/w{worker}", url, count=1))
        else:  # parquet (files named by session), nats, pubsub: shared safely by every worker
            out.append(url)
    return tuple(out)


# Sinks whose store a run of N workers leaves just as one process would (N sessions instead of one):
# there ``--workers`` defaults to the number of cores. Elsewhere it stays 1, for the reason given.
NOT_BY_DEFAULT = {
    "duckdb": "an explicit symbol list into duckdb: stays one DuckDB file (workers would make it views over "
    "per-worker Parquet; --symbols all or a filter does, unless PATH already holds a single-process store)",
    "jsonl": "jsonl: output is split into one file per worker (and stdout cannot be shared)",
    "nats": "a NATS spool is per worker, so a run with another worker count would not resume it",
}


def default_workers(config: FeedConfig, cores: int | None = None) -> tuple[int, str]:
    """``(workers, why)`` for a feed given no ``--workers``: the number of cores when every sink is
    safe to split (Parquet, Pub/Sub) and nothing is recorded, else ``(1, the reason)``.

    A ``duckdb:`` target is split for a whole-exchange selection (``--symbols all`` or a filter: the
    capture that needs the cores) into views over per-worker Parquet, unless its path already holds
    a single-process store, which views would replace; an explicit list stays one DuckDB file."""
    for url in config.sinks:
        scheme, _, rest = url.strip().partition(":")
        why = NOT_BY_DEFAULT.get(scheme.lower())
        if scheme.lower() == "duckdb" and config.selection is not None:
            path = _duckdb_file(rest)
            if not _single_process_store(path):
                continue
            why = f"{path} holds a single-process store (views over per-worker Parquet would replace it)"
        if why is not None:
            return 1, why
    if config.record_dir is not None:
        return 1, "--record writes one capture set per worker"
    return max(1, cores if cores is not None else os.cpu_count() or 1), ""


def _single_process_store(path: str) -> bool:
    """Whether ``path`` is a DuckDB file with tables of rows (not absent, not a workers' views file).
    A file that cannot be opened (a feed holds its lock) counts as one: it is not ours to replace."""
    if not path or not Path(path).exists():
        return False
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error:
        return True
    try:
        return bool(_tables_with_rows(con)[1])
    finally:
        con.close()


def sink_labels(sinks: tuple[str, ...]) -> list[str]:
    """The name each sink URL has in a one-process feed's summary (its scheme, ``name#i`` when two
    share one, as :meth:`Pipeline.sink_stats` names them). A worker's ``duckdb:`` is a Parquet sink,
    so its own names differ; the merged summary uses these, by position."""
    names = [u.strip().partition(":")[0].lower() for u in sinks]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def duckdb_targets(sinks: tuple[str, ...]) -> list[str]:
    """The paths of the ``duckdb:`` sinks (the files that get views over the workers' Parquet)."""
    return [_duckdb_file(u.strip().partition(":")[2]) for u in sinks if u.strip().lower().startswith("duckdb:")]


SCHEMA_FILE = "_schema.parquet"  # the "_" prefix: pyarrow's dataset discovery skips it


def _table_dir(parts: Path, table: str) -> Path:
    return parts / "feed_sessions" if table == "feed_sessions" else parts / "venue=*" / f"channel={table}" / "date=*"


def _schema_file(parts: Path, table: str) -> Path:
    """An empty file of ``table``'s schema that the view's glob matches: DuckDB's ``read_parquet``
    fails on a glob matching nothing (1.x and 2.0 alike), so every view has one file from the start."""
    if table == "feed_sessions":
        return parts / "feed_sessions" / SCHEMA_FILE
    return parts / "venue=_schema" / f"channel={table}" / "date=_schema" / SCHEMA_FILE


def _view_sql(table: str, parts: Path) -> str:
    """The view of ``table`` over every Parquet file of it under ``parts`` (read at query time, so
    files the workers add later are in the next query)."""
    glob = _table_dir(parts, table) / "*.parquet"
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


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else 0


def _tables_with_rows(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """The file's tables (not views), and those of them holding rows (a single-process store's)."""
    names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()]
    return names, sorted(t for t in names if _rows(con, t))


def _duckdb_file(target: str) -> str:
    """The file of a ``duckdb:`` target, without the writer's options (``?memory_limit=``)."""
    return target.partition("?")[0]


def write_views(path: str) -> list[str]:
    """Make ``path`` a DuckDB file whose tables are views over ``PATH.parts/`` (each with an empty
    schema file there, so every view answers before any worker wrote a row). Written when the workers
    start, so a supervisor killed at any moment leaves a readable store. A ``path`` holding tables
    (a single-process run's store) is refused rather than replaced. Returns the tables."""
    parts = parts_dir(path).resolve()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for table, schema in SCHEMAS.items():
        f = _schema_file(parts, table)
        if not f.exists():
            f.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(schema.empty_table(), f.with_suffix(".tmp"))
            os.replace(f.with_suffix(".tmp"), f)
    try:
        con = duckdb.connect(path)
    except duckdb.Error as exc:
        raise ConfigError(f"cannot write the views file {path}: {str(exc).splitlines()[0]}") from None
    try:
        names, full = _tables_with_rows(con)
        if full:
            raise ConfigError(
                f"{path} holds tables with rows ({', '.join(full)}), a single-process run's store: give "
                "--workers a new duckdb: path (its views would replace them)"
            )
        for table in names:  # an earlier version's stand-in for a table with no file yet
            con.execute(f"DROP TABLE {table}")
        for table in SCHEMAS:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {_view_sql(table, parts)}")
    finally:
        con.close()
    return list(SCHEMAS)


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
