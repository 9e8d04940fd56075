"""``tickpath ingest``: load a NATS JetStream stream into DuckDB or Parquet, exactly once (thin shell
over :mod:`tickpath.ingest`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tickpath.errors import ConfigError, InterruptedRunError
from tickpath.ingest import IngestConfig, IngestResult, run_ingest
from tickpath.runtime import run as run_async

DESCRIPTION = """\
Consume the events `tickpath feed --sink nats://...` published and commit them into DuckDB or
Parquet. The JetStream consumer is durable: each batch is committed first and acknowledged after,
and rows are de-duplicated on the event key (session, venue, channel, symbol, seq), so a crash,
a restart or a re-delivery never loses or duplicates an event. Rows get publish_ns (when the feed
published) and ingest_ns (when this commit happened) next to event_time_ms and receipt_ns.
"""

EPILOG = """\
source (--from): nats://HOST:PORT[,HOST:PORT...][?stream=TICKPATH&durable=tickpath-ingest&prefix=tickpath]
target (--to):   duckdb:PATH | parquet:DIR

examples:
  tickpath ingest --from nats://127.0.0.1:4222 --to duckdb:./data/bus.duckdb
  tickpath ingest --from 'nats://n1:4222,n2:4222,n3:4222?stream=MD' --to parquet:lake --idle-exit 10
  tickpath ingest --from nats://127.0.0.1:4222 --to duckdb:x.duckdb --max-messages 1000000 --json
  tickpath ingest --from nats://127.0.0.1:4222 --to duckdb:x.duckdb --metrics-port 9465   # Prometheus

Stop with Ctrl-C: the batch being committed finishes and is acknowledged first. Several ingest
processes with the same durable name form a group that shares the stream, each writing its own file;
`tickpath ingest --merge A.duckdb --merge B.duckdb --to duckdb:all.duckdb` then gives the group's
exactly-once store (a batch whose ack was lost can be committed again by another member).
The source is checked (server reachable, JetStream enabled, stream present) before the
target is opened; a run that fails before its first commit leaves no new file or directory behind
(a missing parent directory of duckdb:PATH is created, as the duckdb sink does, and removed again).
A stream that does not exist yet (ingest started before the feed) or a cluster that does not answer
(a node killed, a leader re-election) is retried with backoff, one log line per attempt
(ingest_waiting_for_stream). Without --idle-exit, ingest waits for its stream and a lost server forever
(a service); with --idle-exit S, a server that is gone or does not answer for max(S, --connect-timeout,
30) seconds ends the run with exit 4, every batch committed so far kept. --wait-stream S sets that bound
(0: the old fail-fast, exit 2 for a missing stream). The first connection is bounded by --connect-timeout.
The summary gives messages, rows inserted, duplicates skipped, rejected messages and
publish->ingest / receipt->ingest latency percentiles (wall clocks of the two hosts, sampled per batch).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="load a NATS JetStream stream into DuckDB/Parquet, exactly once",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="source", default=None, metavar="URL", help="nats://... JetStream source")
    p.add_argument(
        "--merge",
        action="append",
        default=None,
        metavar="FILE",
        help="instead of consuming: merge these group members' DuckDB files into --to duckdb:NEW, one row "
        "per event key (repeat per member; docs/deploy.md)",
    )
    p.add_argument("--to", dest="target", required=True, metavar="TARGET", help="duckdb:PATH or parquet:DIR")
    _add_timing(p)
    _add_output(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=main)


def _add_timing(p: argparse.ArgumentParser) -> None:
    """Batching, waits and bounds of the consumer."""
    p.add_argument("--batch", type=int, default=5000, help="messages per fetch and commit (default: 5000)")
    p.add_argument(
        "--fetch-timeout",
        type=float,
        default=1.0,
        metavar="S",
        help="how long one fetch waits for messages when the stream is idle (default: 1)",
    )
    p.add_argument(
        "--ack-wait",
        type=float,
        default=30.0,
        metavar="S",
        help="re-delivery delay of unacknowledged messages, for a new consumer (default: 30)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="give up connecting to NATS after about S seconds (default: 5)",
    )
    p.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="S",
        help="exit once S seconds pass without messages and the consumer has nothing "
        "left to deliver or re-deliver (default: run until stopped)",
    )
    p.add_argument(
        "--wait-stream",
        type=float,
        default=None,
        metavar="S",
        help="retry a stream that does not exist yet, or a cluster that does not answer (a node lost, a "
        "re-election), for at most S seconds, then exit 2 or 4; 0 = fail at once (default: forever; with "
        "--idle-exit at least 30 s)",
    )


def _add_output(p: argparse.ArgumentParser) -> None:
    """When to stop, and what is shown while it runs."""
    p.add_argument("--max-messages", type=int, default=None, metavar="N", help="exit after N messages")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="P",
        help="serve Prometheus /metrics on 127.0.0.1:P (0 = any free port)",
    )
    p.add_argument("--metrics-host", default="127.0.0.1", help="address for /metrics (default: 127.0.0.1)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr after each commit: a live line on a terminal, else a plain "
        "line at most once a second (default: on when stderr is a terminal and not --json)",
    )


def _print_summary(res: IngestResult) -> None:
    d = res.as_dict()
    print(
        f"ingest into {d['target']}: {d['messages']} messages, {d['inserted']} rows inserted, "
        f"{d['duplicates']} duplicates skipped, {d['rejected']} rejected, "
        f"{d['messages_per_s']:.0f} msg/s"
    )
    for name in ("publish_to_ingest", "receipt_to_ingest"):
        s = d["latency"][name]
        if s["count"]:
            print(
                f"  {name:<18} p50 {s['p50']:.0f} us  p99 {s['p99']:.0f} us  max {s['max']:.0f} us "
                f"(n={s['count']}, sampled)"
            )
    print(f"  clocks: {d['latency']['clock']}")


def main(args: argparse.Namespace) -> int:
    if args.merge:
        return _merge(args)
    if args.source is None:
        raise ConfigError("ingest needs --from nats://... (or --merge FILE ... to merge a group's files)")
    config = IngestConfig(
        source=args.source,
        target=args.target,
        batch=args.batch,
        fetch_timeout_s=args.fetch_timeout,
        ack_wait_s=args.ack_wait,
        idle_exit_s=args.idle_exit,
        max_messages=args.max_messages,
        connect_timeout_s=args.connect_timeout,
        wait_stream_s=args.wait_stream,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    config.nats()  # validate the URL before connecting
    tty = sys.stderr.isatty()
    show = args.progress if args.progress is not None else (tty and not args.json)
    result: list[IngestResult] = []

    async def go() -> IngestResult:
        def keep(r: IngestResult) -> None:
            result[:] = [r]  # so an interrupted run can still print what it committed

        if not show:
            return await run_ingest(config, progress=keep)
        if not tty:  # asked for explicitly, but no terminal for a live line: plain lines
            last = [0.0]

            def plain(r: IngestResult) -> None:
                keep(r)
                if time.monotonic() - last[0] >= 1.0:
                    last[0] = time.monotonic()
                    print(_progress_text(r), file=sys.stderr, flush=True)

            res = await run_ingest(config, progress=plain)
            print(_progress_text(res), file=sys.stderr, flush=True)
            return res
        from rich.progress import Progress, SpinnerColumn, TextColumn

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as bar:
            task = bar.add_task("ingest: waiting for messages", total=None)

            def progress(r: IngestResult) -> None:
                keep(r)
                bar.update(task, description=_progress_text(r))

            return await run_ingest(config, progress=progress)

    try:
        res = run_async(go())
    except InterruptedRunError:
        # What was committed (nothing, when the signal came before the first commit), then exit 130.
        _emit(result[0] if result else IngestResult(target=config.target), args.json, interrupted=True)
        raise
    _emit(res, args.json)
    return 0


def _progress_text(r: IngestResult) -> str:
    return f"ingest: {r.messages} messages, {r.inserted} inserted, {r.duplicates} duplicates"


def _emit(res: IngestResult, as_json: bool, *, interrupted: bool = False) -> None:
    if as_json:
        print(json.dumps({**res.as_dict(), **({"interrupted": True} if interrupted else {})}), flush=True)
    else:
        _print_summary(res)


def _merge(args: argparse.Namespace) -> int:
    from tickpath.ingest.group import merge_members
    from tickpath.ingest.store import parse_target

    kind, path = parse_target(args.target)
    if kind != "duckdb" or args.source is not None:
        raise ConfigError("--merge takes member DuckDB files and --to duckdb:NEW, no --from")
    res = merge_members(path, args.merge)
    if args.json:
        print(json.dumps({"target": args.target, **res.as_dict()}), flush=True)
    else:
        dups = sum(res.duplicates.values())
        print(f"merged {len(args.merge)} members into {path}: {res.rows} rows, {dups} duplicate rows dropped")
    return 0
