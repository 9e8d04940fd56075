"""``tickpath probe``: thin shell over :func:`tickpath.probe.run_probe`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tickpath.cli.paths import ensure_writable_dir
from tickpath.errors import InterruptedRunError
from tickpath.probe import METHODS, ProbeConfig, ProbeResult, parse_methods
from tickpath.probe.report import print_warnings, render_table, write_outputs
from tickpath.probe.runner import ProbeRun
from tickpath.runtime import run
from tickpath.venues.binance.endpoints import VENUES, endpoints

EPILOG = """\
methods (--method, comma-separated or repeated; 'full' = all):
  dns     every A/AAAA answer, CNAME chain, resolver time; flags CDN/accelerator edges
  tcp     connect time to each resolved IP on the venue's REST and WS ports
  tls     full TLS handshake time per IP, with SNI (TCP connect excluded)
  rest    round trip of the venue's ping endpoint on a kept-alive connection
  ws      WebSocket ping/pong round trip on an open connection
  stream  one-way market-data latency (receipt - exchange event time), raw and corrected
          by a clock-offset estimate from the server-time endpoint, with its error bound
  path    traceroute and MTR per hop (system tools; noted when not installed)

sampling is open loop: sample i is due at i/--rate, and latency counts from when it was due,
so a stall shows as every sample it delayed. Warm-up samples are discarded; timeouts and
failures are counted as losses per method and per IP.

examples:
  tickpath probe --venue futures --method full --samples 1000
  tickpath probe --method tcp,ws --rate 100 --duration 30 --json > probe.json
  tickpath probe --rest-url http://127.0.0.1:8080 --ws-url ws://127.0.0.1:8080 --method rest,ws,stream

exit status is non-zero when any method failed; results measured so far are still written.
Ctrl-C (SIGINT) or SIGTERM stops the run: the methods finished and the samples completed by the
one running are written to every requested output, marked as interrupted, and the exit status is 130.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "probe",
        help="measure every hop to an exchange (DNS, TCP, TLS, REST, WS, stream, path)",
        description="Measure how far, in microseconds and with what tail, this machine is from a venue.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--method",
        "-m",
        action="append",
        default=None,
        metavar="NAMES",
        help=f"methods to run: {', '.join(METHODS)} or full (default: full)",
    )
    p.add_argument(
        "--venue",
        choices=VENUES,
        default="futures",
        help="picks Binance's documented hosts, ports and paths (default: futures)",
    )
    p.add_argument("--host", help="replace the host of both URLs (keeps scheme, port and paths)")
    p.add_argument(
        "--rest-url",
        "--base-url",
        dest="rest_url",
        metavar="URL",
        help=f"REST base URL, e.g. {endpoints('futures').rest_base} or http://127.0.0.1:PORT",
    )
    p.add_argument("--ws-url", metavar="URL", help=f"WebSocket base URL, e.g. {endpoints('futures').ws_base}")
    p.add_argument("--symbol", default="", help="symbol for streams (default: BTCUSDT; BTCUSD_PERP on coinm)")
    p.add_argument("--samples", "-n", type=int, default=1000, help="measured samples per method (default 1000)")
    p.add_argument(
        "--duration",
        type=float,
        help="total seconds instead of --samples, shared by tcp/tls/rest/ws/stream (path comes on top)",
    )
    p.add_argument("--rate", type=float, default=50.0, help="intended samples per second per method (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="leading samples discarded per method (default 10)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds before a sample counts as lost (default 2)")
    p.add_argument("--stream-seconds", type=float, help="how long to listen for stream latency (default samples/rate)")
    p.add_argument("--offset-samples", type=int, default=30, help="server-time round trips for the clock offset")
    p.add_argument("--max-ips", type=int, default=8, help="probe at most this many resolved IPs per host")
    p.add_argument("--port", type=int, action="append", default=[], help="extra TCP port to probe (repeatable)")
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--ca-file", help="CA bundle for TLS verification")
    p.add_argument("--json", action="store_true", help="print the JSON result (schema tickpath.probe/1) on stdout")
    p.add_argument("--output", "-o", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--csv", metavar="FILE", help="write one CSV row per method and target")
    p.add_argument("--hgrm-dir", metavar="DIR", help="write one .hgrm percentile file per histogram")
    p.add_argument("--no-imds", action="store_true", help="do not ask EC2 instance metadata")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or table")
    p.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> ProbeConfig:
    methods = parse_methods(",".join(args.method)) if args.method else METHODS
    return ProbeConfig(
        venue=args.venue,
        methods=methods,
        host=args.host,
        rest_url=args.rest_url,
        ws_url=args.ws_url,
        symbol=args.symbol.upper(),
        samples=args.samples,
        duration=args.duration,
        rate=args.rate,
        warmup=args.warmup,
        timeout=args.timeout,
        stream_duration=args.stream_seconds,
        offset_samples=args.offset_samples,
        max_ips=args.max_ips,
        tcp_ports=tuple(args.port),
        verify_tls=not args.insecure,
        ca_file=args.ca_file,
        imds=not args.no_imds,
    )


def main(args: argparse.Namespace) -> int:
    config = build_config(args)
    # fail before measuring, not after: a result file that cannot be written would lose the run
    for path in (args.output, args.csv):
        if path:
            ensure_writable_dir(Path(path).parent, path)
    if args.hgrm_dir:
        ensure_writable_dir(Path(args.hgrm_dir), args.hgrm_dir)
    err = Console(stderr=True)
    show = not args.quiet
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(method: str, done: int, total: int) -> None:
            if method not in tasks:
                tasks[method] = progress.add_task(method, total=total or None)
            progress.update(tasks[method], completed=done, total=total or None)

        probe = ProbeRun(config, progress=on_progress)
        interrupted: InterruptedRunError | None = None
        try:
            result: ProbeResult = run(probe.run())
        except InterruptedRunError as exc:
            # Stopped by a signal: the runner marked what it had; write it everywhere, then exit 130.
            interrupted, result = exc, probe.result
    if args.json:  # first: if a file cannot be written after all, the figures are still out
        sys.stdout.write(result.to_json() + "\n")
        sys.stdout.flush()
    write_outputs(result, json_path=args.output, csv_path=args.csv, hgrm_dir=args.hgrm_dir)
    if show:
        render_table(result, err if args.json else Console())
    else:
        print_warnings(result, err)
    if interrupted is not None:
        raise interrupted
    return result.exit_code
