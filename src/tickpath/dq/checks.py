"""The five data-quality checks: each is its SQL (in :mod:`tickpath.dq.sql`) plus a judge that turns
the query's rows into a verdict against :class:`Thresholds`.

Judging in Python keeps the SQL threshold-free, so DuckDB and BigQuery run the very same text, and
lets the judges use what only tickpath knows: each stream's channel and cadence from the subscribed
stream names (told by the venue: :func:`tickpath.venues.binance.streams.stored_stream`), and the
HdrHistogram recorder that every latency figure in tickpath goes through.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tickpath.dq.sql import COMPLETENESS, FRESHNESS, INTEGRITY, LATENCY, SEQUENCE, Window
from tickpath.errors import ConfigError
from tickpath.stats import LatencyRecorder
from tickpath.stats.recorder import HIGHEST_NS
from tickpath.venues.binance.streams import stored_stream

Row = Mapping[str, Any]
StreamKey = tuple[str, str, str]  # (session, venue, symbol)


@dataclass(frozen=True)
class Thresholds:
    """What "good" means; every figure a check judges has its limit here."""

    latency_p99_ms: float = 1000.0
    latency_p999_ms: float | None = None
    latency_max_negative_ratio: float = 0.001  # messages received before they were sent
    max_gaps: int = 0  # update-id gaps, bad resyncs, seq gaps/duplicates
    max_resets: int = 0  # book resets the feed had to make (other than for crossed books)
    l2_lag_cadences: float = 10.0  # L2 may trail trades/tickers by this many cadences ...
    l2_lag_floor_ms: float = 3000.0  # ... but never less than this
    max_session_silence_s: float = 30.0  # nothing at all from a feed session for this long
    max_integrity_issues: int = 0
    min_completeness_ratio: float = 0.5  # depth messages per active cadence slot, per minute
    max_over_delivery: float = 1.5  # depth messages per minute over 60 s / cadence
    min_active_slots: int = 10  # minutes with fewer active slots are too quiet to judge
    # A trades or ticker stream is dead when silent longer than its floor (per channel, or per
    # "venue/channel") and than this many of its own mean intervals, while the symbol's other
    # channels had messages in at least min_busy_share of the silence's seconds.
    dead_after_s: Mapping[str, float] = field(default_factory=lambda: dict(DEAD_AFTER_S))
    dead_after_cadences: float = 50.0
    # A ticker is frozen when this many frames carry the same bid/ask and sizes for longer than its
    # limit (per channel or "venue/channel") in a market busy as above.
    frozen_after_s: Mapping[str, float] = field(default_factory=lambda: dict(FROZEN_AFTER_S))
    frozen_min_frames: int = 10
    min_busy_share: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "latency_p999_ms":
                continue
            if f.name in PER_STREAM:
                check_per_stream(f.name, value)
                continue
            problem = limit_problem(value, whole=f.type == "int")
            if problem:
                raise ConfigError(f"threshold {f.name} {problem}, not {value!r}")
        if self.min_busy_share > 1:
            raise ConfigError(f"threshold min_busy_share is a share of seconds (0..1), not {self.min_busy_share}")

    def dead_after(self, venue: str, channel: str) -> float:
        """The silence a stream of ``channel`` on ``venue`` may keep in a busy market, at least."""
        return _per_stream(self.dead_after_s, DEAD_AFTER_S, venue, channel)

    def frozen_after(self, venue: str, channel: str) -> float:
        """How long a stream's values may stay unchanged while its frames keep coming."""
        return _per_stream(self.frozen_after_s, FROZEN_AFTER_S, venue, channel)


# Defaults of the per-stream limits, in seconds; a key is a channel or "venue/channel".
DEAD_AFTER_S: dict[str, float] = {"trades": 60.0, "ticker": 30.0}
FROZEN_AFTER_S: dict[str, float] = {"ticker": 60.0}
PER_STREAM = {"dead_after_s": DEAD_AFTER_S, "frozen_after_s": FROZEN_AFTER_S}


def _per_stream(limits: Mapping[str, float], defaults: Mapping[str, float], venue: str, channel: str) -> float:
    for key in (f"{venue}/{channel}", channel):
        if key in limits:
            return limits[key]
    return defaults[channel]


def check_per_stream(name: str, limits: object, *, what: str | None = None) -> None:
    """Refuse a per-stream limit map (``name`` a key of :data:`PER_STREAM`) that is not one; errors
    name ``what`` (the CLI's option) or the threshold."""
    what = what or f"threshold {name}"
    if not isinstance(limits, Mapping):
        raise ConfigError(f"{what} maps channel or venue/channel to seconds, not {limits!r}")
    channels = PER_STREAM[name]
    for key, value in limits.items():
        channel = str(key).rpartition("/")[2]
        if channel not in channels or str(key).startswith("/"):
            raise ConfigError(
                f"{what}: {key!r} is no stream; give CHANNEL or VENUE/CHANNEL, channel one of " + ", ".join(channels)
            )
        problem = limit_problem(value, whole=False)
        if problem:
            raise ConfigError(f"{what} {key} {problem}, not {value!r}")


def limit_problem(value: object, *, whole: bool) -> str | None:
    """Why ``value`` is no threshold, or None. nan compares false with everything and inf exceeds
    everything: either would switch a check off while it still reports ok, so neither is a limit."""
    if whole:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "must be a whole number >= 0"
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return None if ok else "must be a finite number >= 0"


@dataclass
class Context:
    """What the judges know besides the rows: the window and what each session subscribed."""

    window: Window
    depth_cadence_ms: dict[StreamKey, int] = field(default_factory=dict)
    subscribed: set[tuple[str, str, str, str]] = field(default_factory=set)  # + channel

    @classmethod
    def from_sessions(cls, window: Window, sessions: Iterable[Row]) -> Context:
        ctx = cls(window)
        for s in sessions:
            for name in s.get("streams") or []:
                # a stream dq does not store (kline) or a malformed name has no channel: skipped
                stream = stored_stream(str(name), s["venue"])
                if stream is None:
                    continue
                ctx.subscribed.add((s["session"], s["venue"], stream.symbol, stream.channel))
                if stream.cadence_ms is not None:
                    ctx.depth_cadence_ms[(s["session"], s["venue"], stream.symbol)] = stream.cadence_ms
        return ctx


@dataclass
class CheckResult:
    """The verdict of one check: ``metrics`` are its figures (table rows), ``findings`` the defects."""

    name: str
    title: str
    ok: bool
    summary: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)  # worth saying, but not a defect

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "ok": self.ok,
            "summary": self.summary,
            "counts": self.counts,
            "metrics": self.metrics,
            "findings": self.findings,
            "notes": self.notes,
        }


Judge = Callable[[list[dict[str, Any]], Context, Thresholds], CheckResult]


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    template: str
    judge: Judge


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


# --- latency --------------------------------------------------------------------------------------


def _duration(ms: float) -> str:
    """A latency far beyond the usual scale in words, so a replayed or mis-clocked capture reads as one."""
    for unit, size in (("years", 365.25 * 86_400_000), ("days", 86_400_000.0), ("h", 3_600_000.0)):
        if ms >= size:
            return f" ({ms / size:,.1f} {unit})"
    return ""


def judge_latency(rows: list[dict[str, Any]], ctx: Context, th: Thresholds) -> CheckResult:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["venue"], r["symbol"], r["channel"])].append(r)
    metrics: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    for (venue, symbol, channel), grp in sorted(groups.items()):
        row, p99, p999 = _latency_row(venue, symbol, channel, grp)
        metrics.append(row)
        problems = _latency_problems(row, p99, p999, th)
        if problems:
            findings.append(
                {
                    "issue": "latency",
                    "venue": venue,
                    "symbol": symbol,
                    "channel": channel,
                    "detail": "; ".join(problems),
                }
            )
    ok = not findings
    total = sum(m["count"] for m in metrics)
    summary = f"{total} messages in {len(metrics)} streams" + ("" if ok else f"; {len(findings)} over threshold")
    return CheckResult(
        "latency",
        "Latency (receipt - exchange time, per message)",
        ok,
        summary,
        metrics,
        findings,
        {"streams": len(metrics), "failing": len(findings)},
    )


def _latency_row(
    venue: str, symbol: str, channel: str, grp: list[dict[str, Any]]
) -> tuple[dict[str, Any], float, float]:
    """One stream's latency figures from its histogram buckets, and its p99 and p99.9 in ns."""
    # The recorder's default range ends at an hour and clamps beyond it; a replayed capture or a
    # clock years off has latencies far above, so the range reaches the largest bucket here
    # (a BIGINT, which HdrHistogram tracks) and every percentile stays within 3 digits of truth.
    top = max(int(r["bucket_ns"]) for r in grp)
    rec = LatencyRecorder(f"{venue}/{symbol}/{channel}", highest_ns=max(HIGHEST_NS, top))
    n = negative = 0
    sum_v = sum_raw = 0.0
    max_v: int | None = None
    for r in grp:
        count = int(r["n"])
        n += count
        sum_v += float(r["sum_v"])
        sum_raw += float(r["sum_raw"])
        max_v = int(r["max_v"]) if max_v is None else max(max_v, int(r["max_v"]))
        bucket = int(r["bucket_ns"])
        if bucket < 0:
            negative += count
        # zero or negative values are clamped to 1 ns and counted by the recorder itself
        rec.record(bucket, count)
    s = rec.summary()
    # HdrHistogram reports a bucket's highest equivalent value, which can pass the exact maximum
    # by up to the bucket's width (0.1 %: days, at years of latency); no percentile does.
    cap = max_v if max_v is not None and max_v >= 1 else None
    p50, p99, p999 = (v if cap is None else min(v, cap) for v in (s.p50_ns, s.p99_ns, s.p999_ns))
    bases = {r["basis"] for r in grp}
    clock = "corrected" if bases == {"corrected"} else "raw" if bases == {"raw"} else "mixed"
    row = {
        "venue": venue,
        "symbol": symbol,
        "channel": channel,
        "clock": clock,
        "count": n,
        "mean_ms": _ms(sum_v / n),
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "p999_ms": _ms(p999),
        "max_ms": _ms(max_v),
        "negative": negative,
        "raw_mean_ms": _ms(sum_raw / n),
    }
    return row, p99, p999


def _latency_problems(row: dict[str, Any], p99: float, p999: float, th: Thresholds) -> list[str]:
    n, negative = row["count"], row["negative"]
    problems = []
    if p99 / 1e6 > th.latency_p99_ms:
        problems.append(f"p99 {row['p99_ms']} ms{_duration(p99 / 1e6)} > {th.latency_p99_ms} ms")
    if th.latency_p999_ms is not None and p999 / 1e6 > th.latency_p999_ms:
        problems.append(f"p99.9 {row['p999_ms']} ms{_duration(p999 / 1e6)} > {th.latency_p999_ms} ms")
    if negative / n > th.latency_max_negative_ratio:
        problems.append(
            f"{negative} of {n} messages received before their event time "
            f"(clock {row['clock']}); clock offset not measured or wrong"
        )
    return problems


# --- sequence -------------------------------------------------------------------------------------

GAP_ISSUES = ("gap", "bad_resync", "no_snapshot", "seq_gap", "seq_duplicate")
_CROSSED_WORDS = ("cross", "lock")


def _is_crossed_reset(row: Row) -> bool:
    return any(w in str(row.get("reason") or "").lower() for w in _CROSSED_WORDS)


def _totals(rows: list[dict[str, Any]], keep: Callable[[Row], bool] = lambda r: True) -> dict[str, int]:
    """Exact totals per issue: each (issue, stream) group carries its total on every returned row."""
    seen: dict[tuple[Any, ...], int] = {}
    for r in rows:
        if keep(r):
            seen[(r["issue"], r["session"], r["venue"], r["symbol"], r["channel"])] = int(r["total"])
    out: dict[str, int] = defaultdict(int)
    for key, total in seen.items():
        out[key[0]] += total
    return dict(out)


def judge_sequence(rows: list[dict[str, Any]], ctx: Context, th: Thresholds) -> CheckResult:
    # A reset for a crossed book is the integrity check's finding; counting it here too would make
    # one defect fail two checks.
    rows = [r for r in rows if not (r["issue"] == "reset" and _is_crossed_reset(r))]
    counts = _totals(rows)
    gaps = sum(counts.get(k, 0) for k in GAP_ISSUES)
    resets = counts.get("reset", 0)
    findings = []
    for r in rows:
        f = {
            "issue": r["issue"],
            "session": r["session"],
            "venue": r["venue"],
            "symbol": r["symbol"],
            "channel": r["channel"],
            "seq": r["seq"],
            "from_ns": r["p_receipt"],
            "to_ns": r["receipt_ns"],
        }
        if r["issue"] == "reset":
            f.update(to_ns=r["n_receipt"], detail=f"reason {r['reason']}; resynced by the next snapshot")
        elif r["issue"] == "resync":
            f.update(detail="snapshot after reset")
        elif r["issue"] in ("seq_gap", "seq_duplicate"):
            f.update(detail=f"seq {r['p_seq']} -> {r['seq']}")
        else:
            f.update(detail=f"U={r['fu']} u={r['lu']} pu={r['pu']} previous u={r['p_lu']}")
        findings.append(f)
    ok = gaps <= th.max_gaps and resets <= th.max_resets
    parts = [f"{gaps} gaps", f"{resets} resets", f"{counts.get('resync', 0)} resyncs"]
    return CheckResult(
        "sequence",
        "Sequence continuity (Binance U/u/pu, tickpath seq)",
        ok,
        ", ".join(parts),
        [],
        findings,
        {**counts, "gaps": gaps, "resets": resets},
    )


# --- freshness ------------------------------------------------------------------------------------

_STALLS = {
    "lag": ("L2 trailed trades/tickers", "stall"),
    "held": ("messages were held back (receipt gap beyond the exchange's own time gap)", "held_back"),
    "session": ("the whole session was silent", "session_silence"),
}


def _stall_limit(r: Row, rows: list[dict[str, Any]], ctx: Context, th: Thresholds) -> tuple[bool, float | None]:
    """(judged at all, limit in s) of a 'stream', 'held', 'session' or 'lag' row."""
    key = (r["session"], r["venue"], r["symbol"])
    if r["kind"] == "session":
        return True, th.max_session_silence_s
    if r["kind"] == "held":
        cadence = ctx.depth_cadence_ms.get(key) if r["channel"] == "l2" else None
        return True, max(th.l2_lag_cadences * (cadence or 100), th.l2_lag_floor_ms) / 1e3
    if r["kind"] == "lag":
        cadence = ctx.depth_cadence_ms.get(key)
        if cadence is None and (*key, "l2") not in ctx.subscribed:
            has_l2 = any(
                x["kind"] == "stream" and x["channel"] == "l2" and (x["session"], x["venue"], x["symbol"]) == key
                for x in rows
            )
            if not has_l2:
                return False, None  # no depth stream for this symbol: nothing to lag
        return True, max(th.l2_lag_cadences * (cadence or 100), th.l2_lag_floor_ms) / 1e3
    return True, None  # a stream's longest silence alone proves nothing (a quiet market)


def _liveness(r: Row, silent: float, ctx: Context, th: Thresholds) -> tuple[bool, float | None, str | None]:
    """(judged at all, limit in s, why it fails) of a 'dead' or 'frozen' row: a silence or a run of
    unchanged values fails only when it outlasts its limit while the market was busy around it."""
    busy = int(r["active"] or 0)
    share = f"{busy} of its {silent:.0f} s had other messages of the symbol"
    if r["kind"] == "dead":
        if r["n"] is None and (r["session"], r["venue"], r["symbol"], r["channel"]) not in ctx.subscribed:
            return False, None, None  # not subscribed: no stream to be dead
        cadence_s = (r["interval_ns"] or 0) / 1e9
        limit = max(th.dead_after(r["venue"], r["channel"]), th.dead_after_cadences * cadence_s)
        why = f"no {r['channel']} message for {silent:.3f} s > {limit:.3f} s while {share}"
        return True, limit, why if silent > limit and busy >= th.min_busy_share * silent else None
    limit = th.frozen_after(r["venue"], r["channel"])
    frames = int(r["n"] or 0)
    why = f"{frames} frames with unchanged bid/ask and sizes for {silent:.3f} s > {limit} s while {share}"
    fails = silent > limit and frames >= th.frozen_min_frames and busy >= th.min_busy_share * silent
    return True, limit, why if fails else None


def _unclosed_note(r: Row) -> dict[str, Any]:
    at = r["silent_from"]
    where = f"session {r['session']} ({r['venue']}) has no close record"
    if r["ended_by"] is None:
        detail = f"{where}: still running, or it died without closing (judged up to the window's end)"
    else:
        cause = {"writer_gone": "no process is writing the store", "later_session": "a later session began"}
        detail = (
            f"{where} and {cause[r['ended_by']]}: it ended without its close record (killed?); "
            "freshness is judged up to its last row"
        )
    return {"issue": "unclosed_session", "session": r["session"], "venue": r["venue"], "at_ns": at, "detail": detail}


def _fresh_metric(r: Row, silent: float, limit: float | None) -> dict[str, Any]:
    return {
        "kind": r["kind"],
        "session": r["session"],
        "venue": r["venue"],
        "symbol": r["symbol"],
        "channel": r["channel"],
        "longest_s": round(silent, 3),
        "limit_s": None if limit is None else round(limit, 3),
        "from_ns": int(r["silent_from"]),
        "to_ns": int(r["silent_to"]),
        "messages": None if r.get("n") is None else int(r["n"]),
        "busy_s": None if r.get("active") is None else int(r["active"]),
    }


def judge_freshness(rows: list[dict[str, Any]], ctx: Context, th: Thresholds) -> CheckResult:
    metrics: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for r in rows:
        if r["kind"] == "unclosed":
            notes.append(_unclosed_note(r))
            continue
        if r["kind"] == "span":
            spans[(r["session"], r["venue"])] = (int(r["silent_from"]), int(r["silent_to"]))
            continue
        silent = (int(r["silent_to"]) - int(r["silent_from"])) / 1e9
        if r["kind"] in ("dead", "frozen"):
            judged, limit, why = _liveness(r, silent, ctx, th)
            issue = f"{r['kind']}_stream"
        else:
            judged, limit = _stall_limit(r, rows, ctx, th)
            what, issue = _STALLS.get(r["kind"], ("", ""))
            why = f"{what} for {silent:.3f} s > {limit} s" if limit is not None and silent > limit else None
        if not judged:
            continue
        m = _fresh_metric(r, silent, limit)
        metrics.append(m)
        if why:
            findings.append({"issue": issue, **m, "detail": why})
    metrics += _unseen_streams(metrics, ctx, spans)
    counts = {k: sum(f["issue"] == k for f in findings) for k in ("dead_stream", "frozen_stream")}
    counts = {"stalls": len(findings) - sum(counts.values()), **counts, "unclosed_sessions": len(notes)}
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v]
    summary = ", ".join(parts) if findings else "no stream fell behind its cadence, died or froze"
    if notes and not findings:
        summary += f"; {len(notes)} unclosed sessions"
    return CheckResult(
        "freshness",
        "Freshness and liveness (silences, L2 lag, dead and frozen streams)",
        not findings,
        summary,
        metrics,
        findings,
        counts,
        notes,
    )


def _unseen_streams(
    metrics: list[dict[str, Any]], ctx: Context, spans: dict[tuple[str, str], tuple[int, int]]
) -> list[dict[str, Any]]:
    """A row per subscribed stream with no message in the window: a quiet market or a dead stream (the
    'dead' rows judge which); this just makes it visible. Its silence is its session's judged span
    (the SQL's 'span' rows: up to the last row of a session known to be over), so a feed killed before
    its first depth event is not shown silent up to the moment dq ran."""
    seen = {(m["session"], m["venue"], m["symbol"], m["channel"]) for m in metrics if m["kind"] == "stream"}
    out = []
    for sub in sorted(ctx.subscribed - seen):
        since, until = spans.get((sub[0], sub[1]), (ctx.window.since_ns, ctx.window.until_ns))
        out.append(
            {
                "kind": "stream",
                "session": sub[0],
                "venue": sub[1],
                "symbol": sub[2],
                "channel": sub[3],
                "longest_s": round((until - since) / 1e9, 3),
                "limit_s": None,
                "from_ns": since,
                "to_ns": until,
                "messages": 0,
                "busy_s": None,
            }
        )
    return out


# --- integrity ------------------------------------------------------------------------------------


def judge_integrity(rows: list[dict[str, Any]], ctx: Context, th: Thresholds) -> CheckResult:
    counts = _totals(rows)
    total = sum(counts.values())
    findings = [
        {
            "issue": r["issue"],
            "session": r["session"],
            "venue": r["venue"],
            "symbol": r["symbol"],
            "channel": r["channel"],
            "seq": r["seq"],
            "at_ns": r["receipt_ns"],
            "detail": r["detail"],
        }
        for r in rows
    ]
    ok = total <= th.max_integrity_issues
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else "no defects"
    return CheckResult(
        "integrity", "Book integrity (crossed, non-positive, duplicates, time order)", ok, summary, [], findings, counts
    )


# --- completeness ---------------------------------------------------------------------------------

_SLOT_COLUMNS = {100: "a100", 250: "a250", 500: "a500", 1000: "a1000"}


def judge_completeness(rows: list[dict[str, Any]], ctx: Context, th: Thresholds) -> CheckResult:
    per: dict[StreamKey, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        per[(r["session"], r["venue"], r["symbol"])].append(r)
    metrics: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    for key, minutes in sorted(per.items()):
        cadence = ctx.depth_cadence_ms.get(key)
        before = len(findings)
        worst = _judge_minutes(key, minutes, cadence, th, findings)
        n = len(minutes)
        metrics.append(
            {
                "session": key[0],
                "venue": key[1],
                "symbol": key[2],
                "minutes": n,
                "cadence_ms": cadence,
                "l2_per_min": round(sum(int(m["l2"]) for m in minutes) / n, 1),
                "trades_tickers_per_min": round(sum(int(m["other"]) for m in minutes) / n, 1),
                "expected_l2_max_per_min": 60_000 // cadence if cadence else None,
                "worst_ratio": None if worst is None else round(worst, 3),
                "bad_minutes": len(findings) - before,
            }
        )
    ok = not findings
    summary = f"{len(metrics)} symbols, {sum(m['minutes'] for m in metrics)} symbol-minutes" + (
        "" if ok else f"; {len(findings)} minutes off cadence"
    )
    return CheckResult(
        "completeness",
        "Completeness (messages per minute vs subscribed cadence)",
        ok,
        summary,
        metrics,
        findings,
        {"bad_minutes": len(findings)},
    )


def _judge_minutes(
    key: StreamKey, minutes: list[dict[str, Any]], cadence: int | None, th: Thresholds, findings: list[dict[str, Any]]
) -> float | None:
    """One stream's minutes against its cadence: thin or over-delivered minutes become findings;
    returns the worst ratio of depth messages to active slots."""
    col = _SLOT_COLUMNS.get(cadence or -1)
    worst: float | None = None

    def finding(issue: str, m: dict[str, Any], detail: str) -> None:
        where = {"session": key[0], "venue": key[1], "symbol": key[2]}
        findings.append({"issue": issue, **where, "minute_ns": int(m["minute"]) * 60_000_000_000, "detail": detail})

    for m in minutes:
        l2 = int(m["l2"])
        if col is not None and m.get(col) is not None and int(m[col]) >= th.min_active_slots:
            ratio = l2 / int(m[col])
            worst = ratio if worst is None else min(worst, ratio)
            if ratio < th.min_completeness_ratio:
                finding("thin_depth", m, f"{l2} depth messages for {m[col]} active {cadence} ms slots")
        if cadence and l2 > th.max_over_delivery * 60_000 / cadence:
            finding("over_delivery", m, f"{l2} depth messages in a minute; @{cadence}ms allows {60_000 // cadence}")
    return worst


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("latency", "Latency", LATENCY, judge_latency),
        Check("sequence", "Sequence continuity", SEQUENCE, judge_sequence),
        Check("freshness", "Freshness and alignment", FRESHNESS, judge_freshness),
        Check("integrity", "Book integrity", INTEGRITY, judge_integrity),
        Check("completeness", "Completeness", COMPLETENESS, judge_completeness),
    )
}
