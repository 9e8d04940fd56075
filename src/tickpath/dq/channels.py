"""Checks of the low-rate channels (candles, mark price), run by ``dq`` on DuckDB or BigQuery beside the
core checks, only when the window holds rows of those tables (so a store without them reports as before).

- ``candles``: every candle's OHLC is sane (low <= open, close <= high; volumes >= 0; open time before
  close time), and closed candles of a stream (session, venue, symbol, interval) are contiguous: each
  one opens the millisecond after the previous closed one closed, and no candle closes twice with
  different values.
- ``mark_price``: freshness: Binance pushes each contract's mark price every 1 or 3 s, so a stream
  (session, venue, symbol) silent for longer than ``mark_price_max_gap_s`` inside the window, or at its
  end while the session still runs, is stale; a mark or index price <= 0 is a defect.

The queries read the tables directly (``receipt_ns`` bounds the window; on BigQuery also the
``event_date`` partitions, transpiled by sqlglot as the core checks are), and return only defects
(capped) plus per-stream figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickpath.dq.checks import CheckResult
from tickpath.dq.sql import FINDINGS_PER_KIND, Dialect, Window, in_dialect, partition_filter, table_ref
from tickpath.errors import ConfigError

Query = Callable[[str], list[dict[str, Any]]]
MARK_PRICE_MAX_GAP_S = 10.0  # three missed 3 s updates

# ``{w}`` is the window (plus the partition filter on BigQuery); table names are filled per dialect.
CANDLE_BAD = """
SELECT session, venue, symbol, interval, open_time_ms, closed, open, high, low, close, volume
FROM {candles}
WHERE {w} AND NOT (
  CAST(low AS DOUBLE) <= LEAST(CAST(open AS DOUBLE), CAST(close AS DOUBLE))
  AND GREATEST(CAST(open AS DOUBLE), CAST(close AS DOUBLE)) <= CAST(high AS DOUBLE)
  AND CAST(volume AS DOUBLE) >= 0 AND CAST(quote_volume AS DOUBLE) >= 0 AND open_time_ms < close_time_ms)
ORDER BY session, venue, symbol, interval, open_time_ms
LIMIT {limit}
"""

# One row per closed candle (several closed updates of one candle must agree), then its predecessor.
CANDLE_GAPS = """
WITH closed AS (
  SELECT session, venue, symbol, interval, open_time_ms, MIN(close_time_ms) AS close_time_ms,
    COUNT(DISTINCT open || '/' || high || '/' || low || '/' || close || '/' || volume) AS versions
  FROM {candles} WHERE {w} AND closed
  GROUP BY session, venue, symbol, interval, open_time_ms
), ordered AS (
  SELECT *, LAG(close_time_ms) OVER (PARTITION BY session, venue, symbol, interval ORDER BY open_time_ms) AS prev_close
  FROM closed
)
SELECT session, venue, symbol, interval, open_time_ms, prev_close, versions,
  CASE WHEN versions > 1 THEN 'closed_twice' ELSE 'gap' END AS issue
FROM ordered
WHERE versions > 1 OR (prev_close IS NOT NULL AND open_time_ms <> prev_close + 1)
ORDER BY session, venue, symbol, interval, open_time_ms
LIMIT {limit}
"""

CANDLE_STREAMS = """
SELECT session, venue, symbol, interval, COUNT(*) AS updates, SUM(CASE WHEN closed THEN 1 ELSE 0 END) AS closed
FROM {candles} WHERE {w}
GROUP BY session, venue, symbol, interval
ORDER BY session, venue, symbol, interval
"""

MARK_GAPS = """
WITH m AS (
  SELECT session, venue, symbol, receipt_ns, mark_price, index_price,
    LAG(receipt_ns) OVER (PARTITION BY session, venue, symbol ORDER BY receipt_ns, seq) AS prev_ns
  FROM {mark_prices} WHERE {w}
)
SELECT session, venue, symbol, COUNT(*) AS updates,
  MAX(receipt_ns - prev_ns) AS longest_gap_ns, MAX(receipt_ns) AS last_ns,
  SUM(CASE WHEN CAST(mark_price AS DOUBLE) <= 0 OR CAST(index_price AS DOUBLE) <= 0 THEN 1 ELSE 0 END) AS bad_prices
FROM m
GROUP BY session, venue, symbol
ORDER BY session, venue, symbol
"""

# A table filled from a bus (BigQuery) keeps a session's start and stop rows: the stop row's end wins.
_ENDED = "SELECT session, venue, MAX(ended_ns) AS ended_ns FROM {feed_sessions} GROUP BY session, venue"


class ChannelSql:
    """Fills the channel queries for one store: its dialect, its dataset (BigQuery) and the window."""

    def __init__(self, window: Window, dialect: Dialect = "duckdb", dataset: str | None = None) -> None:
        self.window, self.dialect, self.dataset = window, dialect, dataset

    def __call__(self, template: str) -> str:
        w = self.window
        cond = f"receipt_ns >= {int(w.since_ns)} AND receipt_ns < {int(w.until_ns)}" + partition_filter(w, self.dialect)
        names = {t: table_ref(t, self.dialect, self.dataset) for t in ("candles", "mark_prices", "feed_sessions")}
        return in_dialect(template.format(w=cond, limit=FINDINGS_PER_KIND, **names), self.dialect)


def _has_rows(query: Query, table: str, sql: ChannelSql) -> bool:
    try:
        return bool(query(sql(f"SELECT 1 AS x FROM {{{table}}} WHERE {{w}} LIMIT 1")))
    except ConfigError:  # the table does not exist in this store (older than the channel)
        return False


def judge_candles(query: Query, sql: ChannelSql) -> CheckResult:
    bad = query(sql(CANDLE_BAD))
    gaps = query(sql(CANDLE_GAPS))
    metrics = query(sql(CANDLE_STREAMS))
    findings = [{"issue": "ohlc", **r} for r in bad] + gaps
    ok = not findings
    summary = f"{len(metrics)} candle streams, {sum(int(m['closed']) for m in metrics)} closed candles" + (
        "" if ok else f"; {len(bad)} insane, {len(gaps)} discontinuous"
    )
    counts = {"ohlc": len(bad), "gaps": sum(1 for g in gaps if g["issue"] == "gap")}
    counts["closed_twice"] = len(gaps) - counts["gaps"]
    return CheckResult(
        "candles", "Candles (OHLC sanity, closed-candle continuity)", ok, summary, metrics, findings, counts
    )


def judge_mark_price(query: Query, sql: ChannelSql, *, max_gap_s: float = MARK_PRICE_MAX_GAP_S) -> CheckResult:
    window = sql.window
    rows = query(sql(MARK_GAPS))
    ended = {(r["session"], r["venue"]): r["ended_ns"] for r in query(sql(_ENDED))}
    limit_ns = int(max_gap_s * 1e9)
    findings = []
    for r in rows:
        end = ended.get((r["session"], r["venue"]))
        edge = min(window.until_ns, end) if end is not None else window.until_ns
        tail = edge - int(r["last_ns"])
        worst = max(int(r["longest_gap_ns"] or 0), tail)
        r["longest_silence_s"] = round(worst / 1e9, 3)
        if worst > limit_ns:
            findings.append({"issue": "stale", "session": r["session"], "venue": r["venue"], "symbol": r["symbol"]})
            findings[-1]["silence_s"] = r["longest_silence_s"]
        if int(r["bad_prices"]):
            findings.append({"issue": "price", "session": r["session"], "venue": r["venue"], "symbol": r["symbol"]})
    ok = not findings
    summary = f"{len(rows)} mark price streams" + ("" if ok else f"; {len(findings)} stale or bad")
    counts = {"stale": sum(1 for f in findings if f["issue"] == "stale")}
    return CheckResult("mark_price", "Mark price freshness", ok, summary, rows, findings, counts)


def channel_results(
    query: Query,
    window: Window,
    *,
    max_gap_s: float = MARK_PRICE_MAX_GAP_S,
    dialect: Dialect = "duckdb",
    dataset: str | None = None,
) -> list[CheckResult]:
    """The low-rate channels' checks that have data in the window."""
    sql = ChannelSql(window, dialect, dataset)
    out = []
    if _has_rows(query, "candles", sql):
        out.append(judge_candles(query, sql))
    if _has_rows(query, "mark_prices", sql):
        out.append(judge_mark_price(query, sql, max_gap_s=max_gap_s))
    return out
