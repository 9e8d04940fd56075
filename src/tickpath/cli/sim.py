"""``tickpath sim``: run the Binance-compatible simulator until Ctrl-C (thin shell over tickpath.sim)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

from tickpath.errors import ConfigError, TickpathError
from tickpath.runtime import run
from tickpath.sim import FaultPlan, ReplayConfig, SimConfig, Simulator, parse_zones
from tickpath.sim.chaos import ChaosConfig, parse_chaos
from tickpath.sim.config import MAX_CLOCK_OFFSET_MS, MAX_RATE
from tickpath.sim.universe import parse_listing
from tickpath.venues.binance.endpoints import VENUES, endpoints

DESCRIPTION = """\
Serve Binance's public market data (spot and USD-M futures) on loopback: WebSocket raw
(/ws/<stream>) and combined (/stream?streams=a/b) paths with live SUBSCRIBE, REST depth/time/
ping/exchangeInfo with request weights, from a seeded simulated market or a recorded capture.
Each zone is a listener of its own with its own one-way latency; every venue gets one port per zone.
"""

EPILOG = """\
zones (--zones):
  NAME:DELAYms[±JITTERms][,spike=PROBxMSms] joined by ';'   ('+-' or '~' may replace '±')
    "a:5ms"                      zone a, 5 ms one-way delay on every frame and REST answer
    "a:5ms±0.5ms;b:1ms"          two zones; a has exponential jitter with mean 0.5 ms
    "far:80ms+-2ms,spike=0.01x50ms"  1% of messages get 50 ms more

examples:
  tickpath sim                                        both venues, BTCUSDT+ETHUSDT, one zone, free ports
  tickpath sim --venue futures --symbols BTCUSDT --rate 1000 --zones "a:5ms;b:1ms" --json
  tickpath sim --clock-offset-ms 250 --port 9000      exchange clock 250 ms ahead; ports 9000, 9001, ...
  tickpath sim --replay ../shared/data/binance/spot.ws.txt --replay-http ../shared/data/binance/spot.http.txt \\
               --speed 10 --venue spot
  tickpath sim --gap-every 5 --drop-every 30 --snapshot-delay-ms 800   faults on a schedule
  tickpath sim --metrics-port 9466 --gap-every 5   Prometheus /metrics: frames, connections, faults
  tickpath sim --chaos 42:2                       every fault kind at random, 2 a second, seed 42
  tickpath sim --venue spot,futures,coinm --universe binance --rate 2 --prerender 120
                                                  the whole exchange rendered once, then sent as bytes

A scheduled fault never piles up while nobody listens: each period leaves at most one pending
fault of its kind (20 s idle with --snapshot-fail-every 1 still means one HTTP 500, then 200).
--stall-for and --rate-limit-for must be shorter than their --stall-every / --rate-limit-every.

Clients connect to the printed ws_url + "/ws/btcusdt@depth@100ms" or + "/stream?streams=...", and
rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000" (spot; every venue on its own path, see docs/sim.md).
--json prints one JSON line with every endpoint, then nothing else, for scripts.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sim",
        help="Binance-compatible exchange simulator on loopback",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_market(p.add_argument_group("market"))
    _add_listeners(p.add_argument_group("listeners"))
    _add_limits(p.add_argument_group("limits (default: Binance's documented values)"))
    _add_replay(p.add_argument_group("replay"))
    _add_faults(p.add_argument_group("faults on a schedule (seconds between occurrences)"))
    p.add_argument("--duration", type=float, help="stop after this many seconds, > 0 (default: until Ctrl-C)")
    p.add_argument("--json", action="store_true", help="print the endpoints as one JSON line (for machines)")
    p.set_defaults(func=main)


def _add_market(g: Any) -> None:
    """The market: venues, symbols, rates, book shape, seed, universe."""
    g.add_argument(
        "--venue",
        default="spot,futures",
        help=f"venues to serve, comma-separated, of {', '.join(VENUES)} (default: spot,futures)",
    )
    g.add_argument(
        "--symbols",
        help="upper-case symbols; each venue serves those in its format "
        "(default: BTCUSDT,ETHUSDT, and BTCUSD_PERP,ETHUSD_PERP for coinm)",
    )
    g.add_argument(
        "--universe",
        choices=("binance",),
        help="serve the whole exchange's symbols instead of --symbols: about 2,000 spot, 400 USD-M, 50 "
        "COIN-M, TRADING and BREAK; --rate is then the mean per symbol, heavy-tailed, with 5x bursts for "
        "10 s (try --rate 2); see docs/sim.md",
    )
    g.add_argument("--universe-size", type=int, metavar="N", help="with --universe: N symbols per venue")
    g.add_argument(
        "--listing",
        action="append",
        default=[],
        metavar="AT:ACTION:SYMBOL[@VENUE]",
        help="with --universe: list, delist, halt or resume a symbol AT seconds in (repeatable), "
        "e.g. 30:list:NEWUSDT 60:delist:ETHBTC@spot",
    )
    g.add_argument(
        "--rate", type=float, default=100.0, help="book updates per second per symbol, > 0 and <= 1e6 (default: 100)"
    )
    g.add_argument("--seed", type=int, default=1, help="market seed; same seed, same books (default: 1)")
    g.add_argument(
        "--clock-offset-ms",
        type=float,
        default=0.0,
        help="exchange clock minus true clock, applied to E/T and serverTime (default: 0)",
    )


def _add_listeners(g: Any) -> None:
    """Where it listens: host, ports, zones, TLS."""
    g.add_argument("--zones", default="local:0ms", help="named listeners with latency (see below)")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    g.add_argument("--port", type=int, default=0, help="first port; 0 = free ports (default: 0)")
    g.add_argument(
        "--tls",
        action="store_true",
        help="serve wss:// and https:// with a generated self-signed certificate (its path is printed as cafile)",
    )
    g.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="P",
        help="serve Prometheus /metrics on 127.0.0.1:P (0 = any free port)",
    )
    g.add_argument("--metrics-host", default="127.0.0.1", help="address for /metrics (default: 127.0.0.1)")


def _add_limits(g: Any) -> None:
    """Binance's limits (connection, message and weight limits)."""
    g.add_argument("--ping-interval", type=float, help="seconds between server pings (spot 20, futures 180)")
    g.add_argument("--pong-timeout", type=float, help="seconds without pong before disconnect (spot 60, futures 600)")
    g.add_argument("--max-lifetime", type=float, help="connection lifetime in seconds (default 86400)")
    g.add_argument("--weight-budget", type=int, help="REST weight per minute per IP (spot 6000, futures 2400)")


def _add_replay(g: Any) -> None:
    """Replaying a capture instead of a live market (and prerendering)."""
    g.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="CAPTURE.ws.txt",
        help="serve this capture instead of the simulated market of its venue (repeatable)",
    )
    g.add_argument(
        "--replay-http",
        action="append",
        default=[],
        metavar="CAPTURE.http.txt",
        help="recorded REST snapshots, paired with --replay in order",
    )
    g.add_argument("--speed", type=float, default=1.0, help="replay speed factor; 0 = as fast as possible")
    g.add_argument(
        "--prerender",
        type=float,
        metavar="SECONDS",
        help="render SECONDS of the simulated market up front and play it back as pre-encoded bytes "
        "(a cheap load generator; --speed scales it, > 0); depth@100ms, trade, aggTrade, bookTicker only",
    )
    g.add_argument(
        "--prerender-wait",
        action="store_true",
        help="with --prerender: start the timeline at the first subscription instead of at start-up, "
        "and again for the next client once it has ended and every client has left",
    )
    g.add_argument(
        "--prerender-warmup",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --prerender: play the timeline's first SECONDS at real time (books sync), then at --speed",
    )


def _add_faults(g: Any) -> None:
    """Faults at scheduled intervals."""
    for flag, what in (
        ("drop", "cut every WebSocket connection"),
        ("gap", "skip a depth event (a gap)"),
        ("dup", "send a depth event twice"),
        ("reorder", "swap two depth events"),
        ("malformed", "send one invalid-JSON frame per connection"),
        ("truncate", "send one truncated frame per connection"),
        ("stall", "hold a symbol's frames for --stall-for seconds"),
        ("snapshot-fail", "answer the next depth request with HTTP 500"),
        ("rate-limit", "answer every REST request 429 for --rate-limit-for seconds"),
    ):
        g.add_argument(f"--{flag}-every", type=float, metavar="S", help=what)
    g.add_argument("--stall-for", type=float, default=2.0, metavar="S", help="stall length (default: 2)")
    g.add_argument("--rate-limit-for", type=float, default=5.0, metavar="S", help="429 period (default: 5)")
    g.add_argument("--snapshot-delay-ms", type=float, default=0.0, help="extra delay of every depth answer")
    g.add_argument(
        "--chaos",
        metavar="SEED[:RATE]",
        help="every fault kind at random from SEED, RATE faults/s on average (default 1); counts in /metrics "
        "(tickpath_sim_faults_total{kind}) and the live status",
    )


_FAULT_FLAGS = ("drop", "gap", "dup", "reorder", "malformed", "truncate", "stall", "snapshot-fail", "rate-limit")


def _number(
    flag: str, value: float | None, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> None:
    """Check one numeric option: finite and within [low, high] (``low_open``: strictly above low)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        bound = "positive" if low_open and low == 0 else f"{'greater than' if low_open else 'at least'} {low:g}"
        raise ConfigError(f"{flag} must be {bound}, got {value:g}")
    if high is not None and value > high:
        raise ConfigError(f"{flag} must be at most {high:g}, got {value:g}")


def check_numbers(args: argparse.Namespace) -> None:
    """Every numeric option of ``tickpath sim`` in range, or a ConfigError naming the option.

    argparse's ``float`` takes "nan", "inf" and "1e999"; NaN passes every comparison and infinity
    overflows the market and fault schedulers, so both are refused here before anything starts.
    """
    _number("--rate", args.rate, low=0, low_open=True, high=MAX_RATE)
    _number("--clock-offset-ms", args.clock_offset_ms, low=-MAX_CLOCK_OFFSET_MS, high=MAX_CLOCK_OFFSET_MS)
    _number("--port", args.port, low=0, high=65535)
    _number("--metrics-port", args.metrics_port, low=0, high=65535)
    for flag in ("ping-interval", "pong-timeout", "max-lifetime", "duration"):
        _number(f"--{flag}", getattr(args, flag.replace("-", "_")), low=0, low_open=True)
    _number("--weight-budget", args.weight_budget, low=1)
    _number("--speed", args.speed, low=0)
    for flag in _FAULT_FLAGS:
        _number(f"--{flag}-every", getattr(args, f"{flag.replace('-', '_')}_every"), low=0, low_open=True)
    _number("--stall-for", args.stall_for, low=0, low_open=True)
    _number("--rate-limit-for", args.rate_limit_for, low=0, low_open=True)
    _number("--snapshot-delay-ms", args.snapshot_delay_ms, low=0)
    for length, period in (("stall_for", "stall_every"), ("rate_limit_for", "rate_limit_every")):
        every = getattr(args, period)
        if every is not None and getattr(args, length) >= every:
            raise ConfigError(
                f"--{length.replace('_', '-')} ({getattr(args, length):g} s) must be shorter than "
                f"--{period.replace('_', '-')} ({every:g} s), or the fault never ends"
            )


def build_config(args: argparse.Namespace) -> tuple[SimConfig, FaultPlan]:
    """The frozen configuration and fault plan from parsed arguments; bad values are ConfigError."""
    check_numbers(args)
    venues = tuple(v.strip().lower() for v in args.venue.split(",") if v.strip())
    if args.symbols is None:  # each venue's two default symbols (COIN-M's are perpetuals)
        symbols = tuple(dict.fromkeys(s for v in venues if v in VENUES for s in endpoints(v).default_symbols))
    else:
        symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    if len(args.replay_http) > len(args.replay):
        raise ConfigError("--replay-http needs a --replay capture to go with it")
    replay = tuple(
        ReplayConfig(Path(ws), Path(args.replay_http[i]) if i < len(args.replay_http) else None, speed=args.speed)
        for i, ws in enumerate(args.replay)
    )
    for rc in replay:
        for path in (rc.ws_path, rc.http_path):
            if path is not None and not path.is_file():
                raise ConfigError(f"capture {path} does not exist")
    cfg = SimConfig(
        venues=venues,
        symbols=symbols,
        seed=args.seed,
        rate=args.rate,
        zones=parse_zones(args.zones),
        clock_offset_ms=args.clock_offset_ms,
        tls=args.tls,
        host=args.host,
        port=args.port,
        ping_interval_s=args.ping_interval,
        pong_timeout_s=args.pong_timeout,
        max_lifetime_s=args.max_lifetime,
        weight_budget=args.weight_budget,
        replay=replay,
        universe=args.universe,
        universe_size=args.universe_size,
        listings=tuple(parse_listing(x, venues) for x in args.listing),
        prerender_s=args.prerender,
        prerender_speed=args.speed if args.prerender is not None else 1.0,
        prerender_wait=args.prerender_wait,
        prerender_warmup_s=args.prerender_warmup,
    )
    plan = FaultPlan(
        drop_every_s=args.drop_every,
        gap_every_s=args.gap_every,
        duplicate_every_s=args.dup_every,
        reorder_every_s=args.reorder_every,
        malformed_every_s=args.malformed_every,
        truncated_every_s=args.truncate_every,
        stall_every_s=args.stall_every,
        stall_s=args.stall_for,
        snapshot_delay_s=args.snapshot_delay_ms / 1000.0,
        snapshot_fail_every_s=args.snapshot_fail_every,
        rate_limit_every_s=args.rate_limit_every,
        rate_limit_s=args.rate_limit_for,
    )
    return cfg, plan


async def serve(
    cfg: SimConfig,
    plan: FaultPlan,
    *,
    as_json: bool,
    duration: float | None,
    metrics: tuple[str, int] | None = None,
    chaos: ChaosConfig | None = None,
) -> int:
    async with Simulator(cfg, fault_plan=plan, chaos=chaos) as sim:
        extra = {}
        if metrics is not None:
            extra["metrics_url"] = (await sim.serve_metrics(*metrics)).url
        eps = [e.as_dict() for e in sim.endpoints()]
        if as_json:
            head: dict[str, Any] = {"endpoints": eps, "seed": cfg.seed, "clock_offset_ms": cfg.clock_offset_ms}
            if chaos is not None:
                head["chaos"] = {"seed": chaos.seed, "mean_interval_s": chaos.mean_interval_s}
            print(json.dumps({**head, **extra}), flush=True)
        else:
            _print_table(sim)
        waiting = asyncio.ensure_future(_wait(sim, duration, live=not as_json and sys.stderr.isatty()))
        failed = asyncio.ensure_future(sim.wait_failed())
        try:
            await asyncio.wait({waiting, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (waiting, failed):
                t.cancel()
        if failed.done() and not failed.cancelled():
            raise TickpathError(
                f"the simulator stopped: a background task crashed ({failed.result()!r}); "
                "its streams would have gone silent (see the log above)"
            )
    return 0


def _print_table(sim: Simulator) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tickpath sim: listening (Ctrl-C to stop)")
    for col in ("venue", "zone", "ws_url", "rest_url", "latency"):
        table.add_column(col)
    for e in sim.endpoints():
        lat = e.latency
        desc = f"{lat.delay_ms:g}ms" + (f"±{lat.jitter_ms:g}ms" if lat.jitter_ms else "")
        table.add_row(e.venue + (" (replay)" if e.replay_path else ""), e.zone, e.ws_url, e.rest_url, desc)
    console = Console()
    console.print(table)
    if sim.tls is not None:
        console.print(f"TLS certificate (trust it as CA): {sim.tls.cafile}")
    if sim.metrics is not None:
        console.print(f"Prometheus metrics: {sim.metrics.url}")
    for e in sim.endpoints():
        if e.replay_path:
            console.print(f"replay of {e.venue}: connect to {e.ws_url}{e.replay_path}")


async def _wait(sim: Simulator, duration: float | None, *, live: bool) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + duration if duration else None
    if not live:
        await asyncio.sleep(duration) if duration else await asyncio.Event().wait()
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("") as status:
        while end is None or loop.time() < end:
            st = sim.stats()
            events = sum(v["events"] for v in st["venues"].values())
            frames = sum(v["frames_sent"] for v in st["venues"].values()) + sum(st["replay_frames_sent"].values())
            line = f"events {events:,}  frames sent {frames:,}  connections {st['connections']}"
            if "chaos" in st:
                line += "  chaos " + " ".join(f"{k} {n}" for k, n in sorted(st["chaos"].items()))
            status.update(line)
            await asyncio.sleep(0.5)


def main(args: argparse.Namespace) -> int:
    cfg, plan = build_config(args)
    chaos = parse_chaos(args.chaos) if args.chaos else None
    metrics = (args.metrics_host, args.metrics_port) if args.metrics_port is not None else None
    return run(serve(cfg, plan, as_json=args.json, duration=args.duration, metrics=metrics, chaos=chaos))
