"""``tickpath dq``: prove the data is good, on the DuckDB store or on BigQuery."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rich.console import Console

from tickpath.clock import SystemClock
from tickpath.dq.checks import CHECKS, Thresholds, check_per_stream, limit_problem
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, Engine, check_names, render_sql, run_dq
from tickpath.errors import CheckFailedError, ConfigError

DEFAULT_DB = "./data/ticks.duckdb"

EPILOG = """\
checks (all by default, pick with --check):
  latency       receipt minus exchange time per message (not per level): count, mean, p50, p99,
                p99.9, max per venue/symbol/channel; clock-offset corrected where the feed measured it
  sequence      Binance's own rules (futures pu == previous u, spot U == previous u + 1, the first
                event after a snapshot straddles it), tickpath's contiguous seq; gaps, resets and
                resyncs with their time ranges; top-N filtering is not a gap
  freshness     longest silence per stream and session, and how far L2 trails trades/tickers,
                judged against the subscribed cadence (a quiet market is not a stall); dead trades
                or ticker streams (silent while the symbol is busy) and frozen tickers (frames keep
                coming, values do not change); sessions without their close record (a killed
                feed) are named and, once over, judged up to their last row
  integrity     crossed/locked books, non-positive prices or quantities, duplicate trade ids,
                timestamps going backwards
  completeness  depth messages per minute against the active cadence slots (@depth@100ms owes one
                message per 100 ms in which the book changed) and against the cadence's maximum

The window is local receipt time; on BigQuery it also prunes event_date partitions (never a full scan).
Times: ISO 8601 (2026-11-22T15:00:00Z), Unix seconds (not milliseconds), or an age like 30m, 2h, 1d.
Thresholds are finite numbers >= 0 (counts: whole numbers); nan or inf would switch a check off.

examples:
  tickpath dq                                  last hour of ./data/ticks.duckdb
  tickpath dq --since 6h --junit dq.xml        CI: JUnit XML, exit 9 when a check fails
  tickpath dq --bigquery my-proj.tickpath --since 2026-11-21 --until 2026-11-22
  tickpath dq --bigquery my-proj.tickpath --print-sql --check sequence
  tickpath dq --dead-after trades=300 --dead-after futures/ticker=10 --frozen-after ticker=120

exit codes: 0 all passed, 9 a check failed its threshold, 2 bad arguments or no data in the window
"""

_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NS = 10**9
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_NS = 2**63 - 1  # receipt_ns is a BIGINT: 2262-04-11
# A number that, read in one of these units, lands between 2000 and 2100 was almost surely pasted in
# that unit (an event time in ms, a receipt time in ns) rather than meant as seconds.
_PLAUSIBLE_S = (946_684_800, 4_102_444_800)
_FINER_UNITS = (("milliseconds", 10**3), ("microseconds", 10**6), ("nanoseconds", 10**9))


def _in_range(ns: int, text: str, what: str) -> int:
    if not 0 <= ns <= MAX_NS:
        raise ConfigError(
            f"{what} {text!r} is outside 1970-01-01 .. 2262-04-11 (Unix seconds, ISO 8601 or an age like 30m)"
        )
    return ns


def _from_seconds(seconds: Decimal, text: str, what: str) -> int:
    if not seconds.is_finite():
        raise ConfigError(f"{what} {text!r} is not a time: give Unix seconds, ISO 8601 or an age like 30m")
    if seconds * _NS > MAX_NS:
        for unit, per_s in _FINER_UNITS:
            as_s = seconds / per_s
            if _PLAUSIBLE_S[0] <= as_s <= _PLAUSIBLE_S[1]:
                raise ConfigError(
                    f"{what} {text!r} looks like {unit} since 1970; give seconds "
                    f"({as_s.quantize(Decimal('0.001')).normalize():f})"
                )
    return _in_range(int(seconds * _NS), text, what)


def parse_time(text: str, now_ns: int, what: str = "time") -> int:
    """ISO 8601, Unix seconds, or an age (``30m``) before ``now_ns``; returns Unix nanoseconds.

    ``what`` names the option in errors. A number in milliseconds (or finer) is refused with the
    unit it looks like, since taken as seconds it would be a date thousands of years away.
    """
    t = text.strip()
    m = _AGE_RE.match(t)
    if m:
        return _in_range(now_ns - int(Decimal(m.group(1)) * _UNIT_S[m.group(2)] * _NS), text, what)
    try:
        seconds = Decimal(t)
    except InvalidOperation:
        pass
    else:
        return _from_seconds(seconds, text, what)
    try:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        since_epoch = when - _EPOCH
    except (ValueError, OverflowError):
        raise ConfigError(f"cannot read {what} {text!r}: use ISO 8601, Unix seconds or an age like 30m") from None
    ns = ((since_epoch.days * 86_400 + since_epoch.seconds) * 10**6 + since_epoch.microseconds) * 1_000
    return _in_range(ns, text, what)


# Threshold options: (argparse dest, option, whole number?). A limit must be a finite number >= 0:
# argparse's float() takes "nan" and "inf", and either would switch a check off while it reports ok.
_LIMITS = (
    ("p99_ms", "--p99-ms", False),
    ("p999_ms", "--p999-ms", False),
    ("max_gaps", "--max-gaps", True),
    ("max_resets", "--max-resets", True),
    ("max_session_silence", "--max-session-silence", False),
    ("l2_lag_cadences", "--l2-lag-cadences", False),
    ("min_completeness", "--min-completeness", False),
    ("dead_after_cadences", "--dead-after-cadences", False),
    ("frozen_min_frames", "--frozen-min-frames", True),
    ("min_busy_share", "--min-busy-share", False),
)


def _check_limits(args: argparse.Namespace) -> None:
    for dest, option, whole in _LIMITS:
        value = getattr(args, dest)
        if value is None and dest == "p999_ms":
            continue
        problem = limit_problem(value, whole=whole)
        if problem:  # Thresholds would say the same, naming its field rather than the option
            raise ConfigError(f"{option} {problem}, not {value}")
    if args.min_busy_share > 1:
        raise ConfigError(f"--min-busy-share is a share of seconds (0..1), not {args.min_busy_share}")
    if args.max_bytes_billed is not None and args.max_bytes_billed <= 0:
        raise ConfigError(f"--max-bytes-billed must be a positive number of bytes, not {args.max_bytes_billed}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dq",
        help="check data quality on DuckDB or BigQuery",
        description="Run the data-quality checks over a time window and judge them against thresholds.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--db", default=DEFAULT_DB, help=f"DuckDB store written by the feed (default {DEFAULT_DB})")
    src.add_argument("--bigquery", metavar="PROJECT.DATASET", help="run on BigQuery instead")
    p.add_argument("--since", help="window start (default: --until minus 1h)")
    p.add_argument("--until", help="window end (default: now)")
    p.add_argument("--check", action="append", choices=list(CHECKS), help="run only this check (repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--junit", metavar="PATH", help="also write JUnit XML for CI")
    p.add_argument("--print-sql", action="store_true", help="print the SQL each check runs and exit")
    th = Thresholds()
    p.add_argument("--p99-ms", type=float, default=th.latency_p99_ms, help="latency p99 limit (default %(default)s)")
    p.add_argument("--p999-ms", type=float, default=None, help="latency p99.9 limit (default none)")
    p.add_argument("--max-gaps", type=int, default=th.max_gaps, help="sequence gaps allowed (default 0)")
    p.add_argument("--max-resets", type=int, default=th.max_resets, help="book resets allowed (default 0)")
    p.add_argument(
        "--max-session-silence",
        type=float,
        default=th.max_session_silence_s,
        metavar="SECONDS",
        help="longest time a whole feed session may be silent (default %(default)s)",
    )
    p.add_argument(
        "--l2-lag-cadences",
        type=float,
        default=th.l2_lag_cadences,
        help="L2 may trail trades by this many cadences (default %(default)s, floor 3 s)",
    )
    p.add_argument(
        "--min-completeness",
        type=float,
        default=th.min_completeness_ratio,
        help="depth messages per active cadence slot, per minute (default %(default)s)",
    )
    _liveness_options(p, th)
    p.add_argument("--max-bytes-billed", type=int, default=None, help="BigQuery per-query byte cap")
    p.set_defaults(func=main)


def _liveness_options(p: argparse.ArgumentParser, th: Thresholds) -> None:
    defaults = ", ".join(f"{k}={v:g}" for k, v in th.dead_after_s.items())
    p.add_argument(
        "--dead-after",
        action="append",
        metavar="[VENUE/]CHANNEL=SECONDS",
        help=f"silence after which a trades/ticker stream is dead in a busy market (repeatable; default {defaults})",
    )
    p.add_argument(
        "--dead-after-cadences",
        type=float,
        default=th.dead_after_cadences,
        help="... and at least this many of the stream's own mean intervals (default %(default)s)",
    )
    frozen = ", ".join(f"{k}={v:g}" for k, v in th.frozen_after_s.items())
    p.add_argument(
        "--frozen-after",
        action="append",
        metavar="[VENUE/]CHANNEL=SECONDS",
        help=f"how long ticker values may stay unchanged while frames keep coming (repeatable; default {frozen})",
    )
    p.add_argument(
        "--frozen-min-frames",
        type=int,
        default=th.frozen_min_frames,
        help="frames an unchanged run needs to count as frozen (default %(default)s)",
    )
    p.add_argument(
        "--min-busy-share",
        type=float,
        default=th.min_busy_share,
        help="share of a silence's seconds the symbol's other channels must fill to call it dead or "
        "frozen (default %(default)s)",
    )


def _per_stream(values: list[str] | None, option: str, field: str, defaults: Mapping[str, float]) -> dict[str, float]:
    """``[VENUE/]CHANNEL=SECONDS`` options over the defaults (a key given twice: the last wins)."""
    limits = dict(defaults)
    for text in values or []:
        key, sep, seconds = text.partition("=")
        try:
            if not sep:
                raise ValueError(text)
            limits[key.strip()] = float(seconds)
        except ValueError:
            raise ConfigError(f"{option} takes [VENUE/]CHANNEL=SECONDS (e.g. trades=300), not {text!r}") from None
    check_per_stream(field, limits, what=option)
    return limits


def build_config(args: argparse.Namespace, now_ns: int) -> DqConfig:
    until = parse_time(args.until, now_ns, "--until") if args.until else now_ns
    since = parse_time(args.since, now_ns, "--since") if args.since else None
    _check_limits(args)
    th = Thresholds(
        latency_p99_ms=args.p99_ms,
        latency_p999_ms=args.p999_ms,
        max_gaps=args.max_gaps,
        max_resets=args.max_resets,
        max_session_silence_s=args.max_session_silence,
        l2_lag_cadences=args.l2_lag_cadences,
        min_completeness_ratio=args.min_completeness,
        dead_after_s=_per_stream(args.dead_after, "--dead-after", "dead_after_s", Thresholds().dead_after_s),
        dead_after_cadences=args.dead_after_cadences,
        frozen_after_s=_per_stream(args.frozen_after, "--frozen-after", "frozen_after_s", Thresholds().frozen_after_s),
        frozen_min_frames=args.frozen_min_frames,
        min_busy_share=args.min_busy_share,
    )
    checks = check_names(args.check) if args.check else tuple(CHECKS)
    return DqConfig(since_ns=since, until_ns=until, checks=checks, thresholds=th)


def main(args: argparse.Namespace) -> int:
    clock = SystemClock()
    err = Console(stderr=True)
    if args.print_sql:
        now_ns = clock.wall_ns()
        if args.bigquery:
            from tickpath.dq.bigquery import parse_dataset

            project, ds = parse_dataset(args.bigquery)
            return _print_sql(build_config(args, now_ns), "bigquery", f"{project}.{ds}")
        return _print_sql(build_config(args, now_ns), "duckdb", None)
    engine, config = _open_engine(args, clock.wall_ns(), err)
    quiet = args.json or not err.is_terminal
    try:
        with err.status("running checks") as status:

            def progress(name: str) -> None:
                if not quiet:
                    status.update(f"running check {name} on {engine.name}")

            report = run_dq(config, engine, clock=clock, progress=progress)
    finally:
        if isinstance(engine, DuckDBEngine):
            engine.close()  # deletes the copy of a live store
    if args.junit:
        from tickpath.dq.report import to_junit

        try:
            Path(args.junit).write_text(to_junit(report), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.junit}: {exc.strerror}") from exc
    from tickpath.dq.report import print_report, to_json

    if args.json:
        sys.stdout.write(to_json(report) + "\n")
    else:
        print_report(report, Console())
    return 0 if report.ok else CheckFailedError.exit_code


def _open_engine(args: argparse.Namespace, now_ns: int, err: Console) -> tuple[Engine, DqConfig]:
    """The store to check and the config whose window ends at ``now_ns`` (a live store's newest row)."""
    if args.bigquery:
        from tickpath.dq.bigquery import BigQueryEngine

        config = build_config(args, now_ns)
        kw = {} if args.max_bytes_billed is None else {"max_bytes_billed": args.max_bytes_billed}
        return BigQueryEngine(args.bigquery, **kw), config
    engine = DuckDBEngine(Path(args.db))
    snap = engine.snapshot
    if snap is not None:
        # A live store: its copy ends at the writer's last checkpoint, so "now" (the default
        # --until, and what ages like --since 10m count back from) is its newest row, or a
        # stream would look silent from there to the wall clock.
        if snap.newest_receipt_ns is None:
            engine.close()
            raise ConfigError(
                f"{args.db} is being written by {snap.holder}, and its last checkpoint holds "
                "no rows yet (a feed checkpoints 10 s after it starts, then every 10 s); "
                "try again shortly"
            )
        if not args.until:
            now_ns = snap.newest_receipt_ns + 1
        err.print(
            f"tickpath dq: {args.db} is being written by {snap.holder}; checking a copy of its last "
            f"checkpoint ({snap.size_bytes / 1e6:,.1f} MB)"
            + ("" if args.until else f", whose newest row ({_iso(now_ns)}) ends the window"),
            highlight=False,
        )
    return engine, build_config(args, now_ns)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _print_sql(config: DqConfig, dialect: str, dataset: str | None) -> int:
    for name, sql in render_sql(config, dialect, dataset).items():  # type: ignore[arg-type]
        sys.stdout.write(f"-- check: {name}\n{sql};\n\n")
    return 0
