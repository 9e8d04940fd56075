"""``tickpath feed``: Binance market data with books in exact sync, into DuckDB (thin shell over
:mod:`tickpath.feed`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tickpath.errors import ConfigError, ConnectionFailedError, InterruptedRunError, SinkError, SyncError
from tickpath.feed.config import DEFAULT_SINK, FeedConfig, parse_channels
from tickpath.feed.memtrim import DEFAULT_TRIM_INTERVAL_S
from tickpath.feed.run import Feed
from tickpath.feed.sharding import ShardSpec, parse_shard
from tickpath.feed.snapshot import FeedSnapshot, FeedSummary
from tickpath.feed.universe import GRAMMAR_HELP, parse_selection
from tickpath.feed.workers import default_workers
from tickpath.runtime import run as run_async
from tickpath.runtime import streaming_gc
from tickpath.transports import DEFAULT_WS_TRANSPORT, WS_TRANSPORTS
from tickpath.transports import ENV as WS_ENV
from tickpath.venues.binance.endpoints import VENUES

DESCRIPTION = """\
Ingest Binance market data (spot, USD-M futures, COIN-M delivery futures, Binance.US, Binance TR):
order books kept in exact sync by Binance's documented rules (snapshot + diff stream; any break
resyncs that symbol only and publishes an explicit reset), trades and best bid/offer, normalized
(docs/schema.md) and written to one or more sinks.
With no --sink it writes a DuckDB file under ./data/, so it works with no server at all.
"""

EPILOG = """\
sinks (--sink, repeatable; all receive every event):
  duckdb:PATH            DuckDB file, one table per channel (default: duckdb:./data/ticks.duckdb)
  parquet:DIR            Parquet files partitioned DIR/venue=/channel=/date=
  jsonl:-  | jsonl:PATH  one JSON event per line to stdout or a file
  nats://HOST:PORT/...   NATS JetStream        pubsub://PROJECT/TOPIC   Google Pub/Sub

examples:
  tickpath feed --venue futures --symbols BTCUSDT,ETHUSDT
  tickpath feed --venue spot --symbols BTCUSDT --channels l2 --depth 20 --sink jsonl:- | jq .
  tickpath feed --venue futures --symbols BTCUSDT --channels kline_1m,kline_1h,markPrice,all_miniTicker
  tickpath feed --venue spot --symbols 'quote=USDT|FDUSD,-USDCUSDT'   # every such TRADING pair, listings followed
  tickpath feed --venue futures --symbols all --sink duckdb:usdm.duckdb
  tickpath feed --venue futures --symbols BTCUSDT --sink duckdb:ticks.duckdb --sink parquet:lake \\
                --metrics-port 9108 --record captures/ --duration 3600
  tickpath sim --venue futures --json &    # then point the feed at the simulator:
  tickpath feed --venue futures --symbols BTCUSDT --base-url ws://127.0.0.1:PORT --rest-url http://127.0.0.1:PORT

Stop with Ctrl-C (or SIGTERM): every sink is flushed before exit. The exit summary (--json for
machines) gives events accepted/written/pending/dropped per sink, resyncs, gaps, reconnects, malformed
frames, and any order book that never synced.

exit codes: 0 every accepted event delivered; 2 bad arguments (a symbol the venue does not list
  among them); 4 the venue was never reached;
  6 an order book never synced (e.g. every snapshot request failed); 7 a sink dropped events, or
  left some undelivered (a NATS spool: the message says where, and the next run sends it first);
  130 stopped by Ctrl-C / SIGTERM after flushing.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "feed",
        help="ingest Binance market data with exact order books",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_what(p.add_argument_group("what"))
    _add_where(p.add_argument_group("where"))
    _add_watching(p.add_argument_group("how long, and watching it"))
    _add_scaling(p.add_argument_group("scaling out (docs/deploy.md)"))
    _add_tuning(p.add_argument_group("connection tuning"))
    p.set_defaults(func=main)


def _add_what(g: Any) -> None:
    """What is captured: venue, symbols, channels, book depth, snapshots."""
    g.add_argument("--venue", required=True, choices=VENUES, help=", ".join(VENUES))
    g.add_argument("--symbols", required=True, help=GRAMMAR_HELP.replace("%", "%%"))
    g.add_argument(
        "--listing-poll",
        type=float,
        default=60.0,
        metavar="S",
        help="with --symbols all or a filter: ask exchangeInfo for listings and delistings every S seconds "
        "(default 60; paced with the snapshots' request weight)",
    )
    g.add_argument(
        "--channels",
        default="l2,trades,ticker",
        help="any of l2 (order book), trades, ticker (best bid/offer) (default: those three), and the "
        "low-rate ones: kline_<interval> (kline_1m,kline_1h,...; 1s on spot), ticker24h, miniTicker; on futures "
        "markPrice, liquidations, openInterest; all-market: all_miniTicker, all_ticker24h, all_markPrice, "
        "all_bookTicker, all_liquidations (docs/schema.md)",
    )
    g.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="publish only the top N levels per side (inserts/deletes as levels enter/leave)",
    )
    g.add_argument(
        "--trade-stream",
        choices=("aggTrade", "trade"),
        default="aggTrade",
        help="Binance trade stream to read (default: aggTrade)",
    )
    g.add_argument(
        "--snapshot-limit",
        type=int,
        default=None,
        help="levels per REST snapshot (default: 5000 on spot, us, tr; 1000 on futures, coinm)",
    )


def _add_where(g: Any) -> None:
    """Where from (hosts, TLS, WebSocket client) and where to (sinks, a raw recording)."""
    g.add_argument(
        "--sink",
        action="append",
        default=None,
        metavar="URL",
        help=f"where events go; repeat for several (default: {DEFAULT_SINK})",
    )
    g.add_argument("--base-url", default=None, help="WebSocket base URL (default: the venue's production host)")
    g.add_argument("--rest-url", default=None, help="REST base URL (default: the venue's production host)")
    g.add_argument(
        "--ca-file",
        type=Path,
        default=None,
        metavar="PEM",
        help="trust this CA bundle for wss:// and https:// instead of the system's (e.g. the "
        "cafile a `tickpath sim --tls` prints)",
    )
    g.add_argument(
        "--ws-transport",
        choices=WS_TRANSPORTS,
        default=None,
        help=f"WebSocket client (default: ${WS_ENV} or {DEFAULT_WS_TRANSPORT}, the fastest measured; "
        "docs/transports.md)",
    )
    g.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write raw frames and snapshots in the capture format (replayable by sim)",
    )


def _add_watching(g: Any) -> None:
    """How long it runs, and /metrics, the status line and the JSON summary."""
    g.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    g.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="P",
        help="serve Prometheus /metrics on 127.0.0.1:P (0 = any free port)",
    )
    g.add_argument("--metrics-host", default="127.0.0.1", help="address for /metrics (default: 127.0.0.1)")
    g.add_argument(
        "--status",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live status line on stderr (default: on when stderr is a terminal and not --json)",
    )
    g.add_argument("--json", action="store_true", help="print the exit summary as one JSON object")
    g.add_argument(
        "--trim-memory",
        type=float,
        default=DEFAULT_TRIM_INTERVAL_S,
        metavar="S",
        help="give freed heap pages back to the system (glibc malloc_trim, on a thread) every S seconds, "
        "so RSS follows what is live rather than the last burst's high-water mark (default %(default)g; 0 = off)",
    )


def _add_scaling(g: Any) -> None:
    """Workers on this machine and this machine's shard."""
    g.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="shard the symbols over N worker processes by a stable hash (CRC-32 of the symbol), each "
        "with its own connections, books and sink writer, under one supervisor that restarts a dead "
        "worker; 'auto' = the number of cores (default: auto when every sink is parquet: or pubsub:, and "
        "into duckdb: for --symbols all or a filter (views over per-worker Parquet; not over a "
        "single-process store already there); 1 for an explicit list into duckdb: (one DuckDB file), "
        "jsonl: (split per worker), nats: (a per-worker spool resumes only under the same count) or "
        "--record; never more than symbols)",
    )
    g.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run machine I's share of N (same hash; every machine gets the same --symbols), e.g. "
        "--shard 0/2 on one machine and --shard 1/2 on the other, publishing to NATS",
    )


def _add_tuning(g: Any) -> None:
    """Streams per connection, subscription style, liveness and rollover, the symbol check."""
    g.add_argument(
        "--streams-per-connection",
        type=int,
        default=None,
        help="streams per WebSocket (default: the venue's limit, 1024)",
    )
    g.add_argument(
        "--subscribe",
        action="store_true",
        help="subscribe with SUBSCRIBE messages instead of listing streams in the URL",
    )
    g.add_argument(
        "--stale-after",
        type=float,
        default=30.0,
        metavar="S",
        help="reconnect a connection silent for S seconds (default: 30)",
    )
    g.add_argument(
        "--rollover-after",
        type=float,
        default=None,
        metavar="S",
        help="open a replacement connection after S seconds (default: 95%% of 24 h)",
    )
    g.add_argument(
        "--no-symbol-check",
        dest="check_symbols",
        action="store_false",
        help="skip the exchangeInfo check of --symbols at start (by default a symbol the venue "
        "does not list is an error, exit 2, before anything is opened)",
    )


def build_config(args: argparse.Namespace) -> FeedConfig:
    """The frozen FeedConfig from parsed arguments (raises ConfigError on bad values)."""
    status = args.status if args.status is not None else (sys.stderr.isatty() and not args.json)
    selection = parse_selection(args.symbols)
    return FeedConfig(
        venue=args.venue,
        symbols=() if selection.dynamic else selection.explicit,
        selection=selection if selection.dynamic else None,
        listing_poll_s=args.listing_poll,
        trim_memory_s=args.trim_memory,
        channels=parse_channels(args.channels),
        depth=args.depth,
        sinks=tuple(args.sink or (DEFAULT_SINK,)),
        base_url=args.base_url,
        rest_url=args.rest_url,
        ca_file=args.ca_file,
        duration_s=args.duration,
        record_dir=args.record,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        snapshot_limit=args.snapshot_limit,
        trade_stream=args.trade_stream,
        streams_per_connection=args.streams_per_connection,
        subscribe=args.subscribe,
        stale_after_s=args.stale_after,
        rollover_after_s=args.rollover_after,
        check_symbols=args.check_symbols,
        status=status,
        shard=args.shard,
    )


def _shard(text: str) -> ShardSpec:
    try:
        return parse_shard(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(text: str) -> int:
    """``--workers``: a positive count, or ``auto`` for the number of cores."""
    if text.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (or 'auto')") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} workers: use at least 1")
    return n


def _print_summary(s: FeedSnapshot) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(stderr=True)
    secs = max((s.ended_ns - s.started_ns) / 1e9, 1e-9)
    conns, books = s.connections, s.books
    con.print(
        f"[bold]feed {s.venue}[/] session {s.session}: {s.pipeline.emitted:,} events in {secs:,.1f} s "
        f"over {conns.planned} connection(s); books: resyncs {books.resyncs}, gaps {books.gaps}; "
        f"reconnects {conns.reconnects}, rollovers {conns.rollovers}, malformed frames {s.frames.malformed_total}"
    )
    t = Table("sink", "accepted", "written", "pending", "dropped", "errors")
    for name, st in s.sinks.items():
        # pending: accepted, not delivered, kept (a NATS spool); written can exceed accepted when a
        # spool from an earlier run was delivered first.
        t.add_row(name, f"{st.accepted:,}", f"{st.written:,}", f"{st.pending:,}", f"{st.dropped:,}", f"{st.errors:,}")
    con.print(t)
    if books.never_synced:
        fetches = s.fetches
        con.print(
            f"[bold red]order book never synced[/]: {', '.join(books.never_synced)} (snapshot errors "
            f"{fetches.errors if fetches else 0}, rate-limited {fetches.rate_limited if fetches else 0}): "
            "no l2 events for it"
        )
    lat = s.latency.enqueue if s.latency is not None else None
    if lat is not None and lat.count:
        con.print(
            f"frame receipt to enqueue: p50 {_us(lat.p50_ns)} us, p99 {_us(lat.p99_ns)} us, max {_us(lat.max_ns)} us "
            f"({lat.count:,} samples, monotonic clock)"
        )


def _us(ns: float) -> float:
    return round(ns / 1e3, 3)


def main(args: argparse.Namespace) -> int:
    if args.ws_transport:  # through the environment, so --workers' processes use it as well
        os.environ[WS_ENV] = args.ws_transport
    config = build_config(args)
    if args.json and any(u.strip() in ("jsonl:-", "jsonl") for u in config.sinks):
        raise ConfigError("--json and --sink jsonl:- both write to stdout; send JSON lines to a file")
    workers = args.workers if args.workers is not None else default_workers(config)[0]
    workers = min(workers, len(config.symbols)) if config.selection is None else workers
    if workers > 1:
        return _supervise(config, workers, as_json=args.json)
    feed = Feed(config)
    try:
        with streaming_gc():
            run_async(feed.run())
    except InterruptedRunError:
        # Stopped by a signal: the feed already flushed every sink; report what it did, then exit 130.
        _report(feed.snapshot(), as_json=args.json)
        raise
    snap = feed.snapshot()
    _report(snap, as_json=args.json)
    if snap.connections.connects == 0 and snap.connections.connect_failures:
        # A service keeps retrying; a run that ended without ever connecting is a failure to say.
        raise ConnectionFailedError(
            f"never connected to {config.ws_base} ({snap.connections.connect_failures} attempts; last "
            f"error: {snap.connections.last_error}); nothing was received"
        )
    return _verdict(snap)


def _verdict(snap: FeedSnapshot) -> int:
    """Exit 0 only when every accepted event was delivered and every book synced at least once."""
    if snap.dropped:
        raise SinkError(f"{snap.dropped:,} accepted events were dropped by a sink (see the table and the log)")
    if snap.undelivered:
        raise SinkError("accepted events not delivered yet: " + "; ".join(snap.undelivered))
    never = snap.books.never_synced
    if never:
        errors = snap.fetches.errors if snap.fetches is not None else 0
        raise SyncError(
            f"order book never synced for {', '.join(never)} ({errors} snapshot errors); no l2 events for it"
        )
    return 0


def _report(snap: FeedSnapshot, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(FeedSummary.from_snapshot(snap).to_dict(), default=str), flush=True)
    else:
        _print_summary(snap)


def _supervise(config: FeedConfig, workers: int, *, as_json: bool) -> int:
    """``--workers N``: the supervisor runs the workers; the merged summary says what they did."""
    from tickpath.feed.supervisor import Supervisor

    sup = Supervisor(config, workers)
    try:
        with streaming_gc():
            run_async(_with_status(sup) if config.status else sup.run())
    except InterruptedRunError:
        _report_workers(sup.summary(), as_json=as_json)
        raise
    merged = sup.summary()
    _report_workers(merged, as_json=as_json)
    if merged.get("dropped"):
        raise SinkError(f"{merged['dropped']:,} accepted events were dropped by a sink (see the log)")
    if merged.get("undelivered"):
        raise SinkError("accepted events not delivered yet: " + "; ".join(merged["undelivered"]))
    bad = [c for w in merged["workers"] for c in w["exit_codes"][-1:] if c not in (0, 130)]
    return max(bad) if bad else 0


async def _with_status(sup: Any) -> Any:
    import asyncio

    from tickpath.feed.status import run_workers_status

    status = asyncio.create_task(run_workers_status(sup.summary))
    try:
        return await sup.run()
    finally:
        status.cancel()


def _report_workers(merged: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(merged, default=str), flush=True)
        return
    from rich.console import Console

    con = Console(stderr=True)
    con.print(
        f"[bold]feed {merged.get('venue')}[/] {len(merged['workers'])} workers: {merged.get('emitted', 0):,} events; "
        f"resyncs {merged.get('resyncs', 0)}, gaps {merged.get('gaps', 0)}, reconnects {merged.get('reconnects', 0)}, "
        f"worker restarts {merged['restarts']}"
    )
    for w in merged["workers"]:
        con.print(
            f"  worker {w['worker']}: {len(w['symbols'])} symbols, restarts {w['restarts']}, exits {w['exit_codes']}"
        )
