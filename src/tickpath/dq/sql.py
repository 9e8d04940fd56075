"""The SQL of every check, written once in DuckDB's dialect, and its composition into a runnable query.

Each check body reads only the window CTEs ``w_trades``, ``w_tickers``, ``w_l2`` and ``w_sessions``;
:func:`compose` prepends them, bounded to ``[since_ns, until_ns)`` on ``receipt_ns`` (the one time
every row has). For BigQuery the same text is transpiled with sqlglot and every window CTE also
carries a partition filter on ``event_date`` (one day of slack each side, because the partition is
derived from the exchange's event time and the window from the local receipt time), so no query
ever scans a whole table.

The queries return measurements and bounded lists of findings; thresholds are applied in Python
(:mod:`tickpath.dq.checks`), so the same SQL serves any threshold.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlglot

from tickpath.errors import ConfigError
from tickpath.venues.binance.endpoints import VENUES, endpoints

Dialect = Literal["duckdb", "bigquery"]

# Columns each window CTE selects: only what some check reads, which is what BigQuery bills.
WINDOW_COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": ("session", "venue", "symbol", "seq", "event_time_ms", "receipt_ns", "trade_id", "price", "qty"),
    "tickers": (
        "session",
        "venue",
        "symbol",
        "seq",
        "event_time_ms",
        "receipt_ns",
        "bid_price",
        "bid_qty",
        "ask_price",
        "ask_qty",
    ),
    "l2": (
        "session",
        "venue",
        "symbol",
        "seq",
        "event_time_ms",
        "receipt_ns",
        "kind",
        "first_update_id",
        "final_update_id",
        "prev_final_update_id",
        "bids",
        "asks",
        "reason",
    ),
}
SESSION_COLUMNS = ("session", "venue", "started_ns", "ended_ns", "streams", "clock_offset_ns", "clock_offset_bound_ns")
TABLE_NAMES = ("trades", "tickers", "l2", "feed_sessions")

# Findings per kind returned by a query; totals are always exact (counted by a window function).
FINDINGS_PER_KIND = 50

# On DuckDB every window CTE also carries ``sk``, a 64-bit hash of (session, venue, symbol). Sorting on
# one integer costs a fraction of sorting on three strings (the l2 pass: 2.0 s -> 0.7 s over 4 M rows),
# but a hash can collide, and a collision would merge two streams and could hide a gap. So the runner
# first lists the streams in the window with their keys (STREAM_EXTENT) and uses ``sk`` only when no two
# streams share one (:func:`stream_keys_unique`); otherwise the checks key on the strings. Hash
# groupings over all messages (freshness's ticks, completeness's words) stay on the strings: hashing
# every row costs there what it saves.
STREAM_KEY = "hash(session, venue, symbol)"
STRING_KEYS = "session, venue, symbol"


@dataclass(frozen=True)
class Window:
    """A half-open window ``[since_ns, until_ns)`` of local receipt time, in Unix nanoseconds."""

    since_ns: int
    until_ns: int

    def __post_init__(self) -> None:
        if self.until_ns <= self.since_ns:
            raise ConfigError(
                f"empty window: --until ({_iso(self.until_ns)}) must be after --since ({_iso(self.since_ns)})"
            )

    @property
    def seconds(self) -> float:
        return (self.until_ns - self.since_ns) / 1e9

    def dates(self) -> tuple[dt.date, dt.date]:
        """The ``event_date`` partitions that can hold rows of this window (one day of slack)."""
        first = dt.datetime.fromtimestamp(self.since_ns / 1e9, dt.UTC).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(self.until_ns / 1e9, dt.UTC).date() + dt.timedelta(days=1)
        return first, last

    def describe(self) -> str:
        return f"{_iso(self.since_ns)} .. {_iso(self.until_ns)}"


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def table_ref(table: str, dialect: Dialect, dataset: str | None) -> str:
    if dialect == "bigquery":
        if not dataset:
            raise ConfigError("BigQuery needs a dataset as PROJECT.DATASET")
        project, _, ds = dataset.partition(".")
        return f'"{project}"."{ds}"."{table}"'
    return f'"{table}"'


def partition_filter(window: Window, dialect: Dialect) -> str:
    """`` AND event_date BETWEEN ...`` on BigQuery (every event table requires a partition filter),
    covering the window's UTC dates with a day of slack either side; nothing on DuckDB."""
    if dialect != "bigquery":
        return ""
    first, last = window.dates()
    return f" AND event_date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"


def window_ctes(window: Window, dialect: Dialect, dataset: str | None = None) -> str:
    """The ``w_*`` CTEs: each source table bounded to the window (plus partitions on BigQuery)."""
    parts = []
    part_filter = ""
    sessions_part = ""
    # DuckDB materialises a CTE that is read more than once; these are plain bounded scans (cheap,
    # pruned by row-group min/max on receipt_ns), and materialising w_l2 copies every level list.
    hint = "NOT MATERIALIZED " if dialect == "duckdb" else ""
    if dialect == "bigquery":
        last = window.dates()[1]
        part_filter = partition_filter(window, dialect)
        sessions_part = f" AND event_date <= DATE '{last.isoformat()}'"
    for table, cols in WINDOW_COLUMNS.items():
        # DuckDB: the hashed stream key (STREAM_KEY) and the row id that lean windows join back on.
        extra = f", {STREAM_KEY} AS sk, rowid AS rid" if dialect == "duckdb" else ""
        parts.append(
            f"w_{table} AS {hint}(SELECT {', '.join(cols)}{extra} FROM {table_ref(table, dialect, dataset)} "
            f"WHERE receipt_ns >= {window.since_ns} AND receipt_ns < {window.until_ns}{part_filter})"
        )
    # A feed writes its session row when it starts and again when it stops. DuckDB keeps one row per
    # (session, venue); a table filled from a bus (BigQuery's subscription) keeps both, so the latest
    # row is picked first (the stopped one wins, as in tables.latest_sessions) and only then judged
    # against the window: a run that ended before it must not come back through its start row.
    scols = ", ".join(SESSION_COLUMNS)
    parts.append(
        f"w_sessions AS {hint}(SELECT {scols} FROM (SELECT {scols}, ROW_NUMBER() OVER (PARTITION BY session, venue "
        f"ORDER BY CASE WHEN ended_ns IS NULL THEN 1 ELSE 0 END, ended_ns DESC) AS latest "
        f"FROM {table_ref('feed_sessions', dialect, dataset)} "
        f"WHERE started_ns < {window.until_ns}{sessions_part}) AS s "
        f"WHERE latest = 1 AND (ended_ns IS NULL OR ended_ns >= {window.since_ns}))"
    )
    return ",\n".join(parts)


def compose(body: str, window: Window, dialect: Dialect = "duckdb", dataset: str | None = None) -> str:
    """A runnable query: the window CTEs, then ``body`` (``name AS (...), ... SELECT ...``)."""
    return in_dialect(f"WITH {window_ctes(window, dialect, dataset)},\n{body}", dialect)


def in_dialect(sql: str, dialect: Dialect) -> str:
    """DuckDB SQL as the engine's dialect: unchanged on DuckDB, transpiled by sqlglot for BigQuery."""
    if dialect == "duckdb":
        return sql
    try:
        return _transpile(sql, "duckdb", "bigquery", pretty=True)
    except sqlglot.errors.SqlglotError as exc:  # a bug in a check definition, not user input
        raise ConfigError(f"cannot generate BigQuery SQL: {exc}") from exc


def to_duckdb(bigquery_sql: str) -> str:
    """BigQuery SQL back to DuckDB's dialect (used to prove both dialects compute the same)."""
    return _transpile(bigquery_sql, "bigquery", "duckdb", pretty=False)


@functools.lru_cache(maxsize=512)
def _transpile(sql: str, read: str, write: str, *, pretty: bool) -> str:
    # A check's SQL is transpiled once per text: sqlglot takes ~10 ms a query (a dq run on BigQuery
    # asks for each once; the tests that prove both dialects agree ask for the same ones many times).
    return str(sqlglot.transpile(sql, read=read, write=write, pretty=pretty)[0])


# --- the checks' bodies ---------------------------------------------------------------------------

# Latency per message (one row per trade, ticker or delta, never per price level), bucketed to three
# significant digits so the result is a small histogram the HdrHistogram recorder takes exactly.
# ``corr`` adds the session's clock offset (exchange minus local); a value below -tolerance
# (1 ms of event-time resolution plus the offset's error bound) is impossible and counted apart.
# Below 10^14 ns (27 hours) the bucket is cut with integer division (a ladder of CASE arms, which
# costs a fraction of LOG10 and POWER per row); there it equals the LOG10 form exactly, which still
# handles anything larger.
LATENCY = """
ev AS (
  SELECT session, venue, symbol, 'trades' AS channel, event_time_ms, receipt_ns FROM w_trades
  WHERE event_time_ms IS NOT NULL
  UNION ALL
  SELECT session, venue, symbol, 'ticker' AS channel, event_time_ms, receipt_ns FROM w_tickers
  WHERE event_time_ms IS NOT NULL
  UNION ALL
  SELECT session, venue, symbol, 'l2' AS channel, event_time_ms, receipt_ns FROM w_l2
  WHERE kind = 'delta' AND event_time_ms IS NOT NULL
),
lat AS (
  SELECT e.venue, e.symbol, e.channel,
    CASE WHEN s.clock_offset_ns IS NULL THEN 'raw' ELSE 'corrected' END AS basis,
    e.receipt_ns - e.event_time_ms * 1000000 + COALESCE(s.clock_offset_ns, 0) AS v,
    1000000 + COALESCE(s.clock_offset_bound_ns, 0) AS tol,
    e.receipt_ns - e.event_time_ms * 1000000 AS raw_v
  FROM ev AS e
  LEFT JOIN (SELECT session, venue, MAX(clock_offset_ns) AS clock_offset_ns,
               MAX(clock_offset_bound_ns) AS clock_offset_bound_ns
             FROM w_sessions GROUP BY session, venue) AS s
    ON s.session = e.session AND s.venue = e.venue
),
b AS (
  SELECT venue, symbol, channel, basis,
    CASE WHEN v < -tol THEN -1 WHEN v < 1 THEN 0
      {int_buckets}
      ELSE CAST(FLOOR(v / POWER(10, GREATEST(FLOOR(LOG10(v)) - 2, 0)))
                * POWER(10, GREATEST(FLOOR(LOG10(v)) - 2, 0)) AS BIGINT) END AS bucket_ns,
    raw_v, v
  FROM lat
)
SELECT venue, symbol, channel, basis, bucket_ns, COUNT(*) AS n, SUM(CAST(v AS DOUBLE)) AS sum_v,
  MIN(v) AS min_v, MAX(v) AS max_v, SUM(CAST(raw_v AS DOUBLE)) AS sum_raw
FROM b
GROUP BY venue, symbol, channel, basis, bucket_ns
ORDER BY venue, symbol, channel, basis, bucket_ns
"""

# Continuity of Binance's update ids per (session, venue, symbol) in seq order, restarting at each
# snapshot (whose successor obeys the first-event rule) and reset; plus tickpath's own seq, which must
# be contiguous per (session, venue, channel, symbol): trades and tickers are first counted per
# stream (count, min, max, and distinct values counted as bits of 60-seq blocks, which needs a
# hash table of blocks rather than of every seq), and only a stream that fails that is ordered to
# locate its holes. Top-N deltas (depth set) carry the upstream U/u range with the updates that changed nothing
# visible folded in (see venues/binance/sync.py), so the same rules hold for them: filtering leaves
# no hole, and a real upstream gap still shows.
SEQUENCE = """
{l2_ordered},
c AS (
  SELECT session, venue, symbol, 'l2' AS channel, seq, receipt_ns, p_receipt, n_receipt, reason,
    fu, lu, pu, p_lu, p_seq,
    {l2_issue} AS issue
  FROM l
),
ot AS {not_materialized}(
  SELECT session, venue, symbol, {sk_col}'trades' AS channel, seq, receipt_ns FROM w_trades
  UNION ALL SELECT session, venue, symbol, {sk_col}'ticker' AS channel, seq, receipt_ns FROM w_tickers
),
blk AS (
  SELECT {stream_select}, channel, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi,
    COALESCE(BIT_COUNT(BIT_OR(CAST(1 AS BIGINT) << ABS(seq % 60))), 0) AS uniq
  FROM ot GROUP BY {stream_group}, channel, seq // 60
),
broken AS (
  SELECT session, venue, symbol, channel FROM blk GROUP BY session, venue, symbol, channel
  HAVING SUM(n) <> MAX(hi) - MIN(lo) + 1 OR SUM(uniq) <> SUM(n)
),
o AS (
  SELECT t.session, t.venue, t.symbol, t.channel, t.seq, t.receipt_ns,
    LAG(t.seq) OVER (PARTITION BY t.session, t.venue, t.symbol, t.channel ORDER BY t.seq) AS p_seq,
    LAG(t.receipt_ns) OVER (PARTITION BY t.session, t.venue, t.symbol, t.channel ORDER BY t.seq) AS p_receipt
  FROM ot AS t JOIN broken AS b
    ON b.session = t.session AND b.venue = t.venue AND b.symbol = t.symbol AND b.channel = t.channel
),
f AS (
  SELECT issue, session, venue, symbol, channel, seq, receipt_ns, p_receipt, n_receipt, reason,
    fu, lu, pu, p_lu, p_seq FROM c WHERE issue IS NOT NULL
  UNION ALL
  SELECT CASE WHEN seq = p_seq THEN 'seq_duplicate' ELSE 'seq_gap' END AS issue, session, venue, symbol,
    channel, seq, receipt_ns, p_receipt, CAST(NULL AS BIGINT) AS n_receipt, CAST(NULL AS VARCHAR) AS reason,
    CAST(NULL AS BIGINT) AS fu, CAST(NULL AS BIGINT) AS lu, CAST(NULL AS BIGINT) AS pu,
    CAST(NULL AS BIGINT) AS p_lu, p_seq
  FROM o WHERE p_seq IS NOT NULL AND seq <> p_seq + 1
)
SELECT issue, session, venue, symbol, channel, seq, receipt_ns, p_receipt, n_receipt, reason, fu, lu, pu,
  p_lu, p_seq, COUNT(*) OVER (PARTITION BY issue, session, venue, symbol, channel) AS total
FROM f
QUALIFY ROW_NUMBER() OVER (PARTITION BY issue, session, venue, symbol, channel ORDER BY receipt_ns, seq)
  <= {limit}
ORDER BY issue, session, venue, symbol, channel, receipt_ns, seq
"""

# The l2 rows of each (session, venue, symbol) in seq order with what the rules compare: the previous
# row's seq, kind and final update id (``l`` in SEQUENCE).
SEQUENCE_L2_ORDERED = """l AS (
  SELECT session, venue, symbol, seq, kind, receipt_ns, reason,
    first_update_id AS fu, final_update_id AS lu, prev_final_update_id AS pu,
    LAG(seq) OVER (PARTITION BY session, venue, symbol ORDER BY seq) AS p_seq,
    LAG(kind) OVER (PARTITION BY session, venue, symbol ORDER BY seq) AS p_kind,
    LAG(final_update_id) OVER (PARTITION BY session, venue, symbol ORDER BY seq) AS p_lu,
    LAG(receipt_ns) OVER (PARTITION BY session, venue, symbol ORDER BY seq) AS p_receipt,
    LEAD(receipt_ns) OVER (PARTITION BY session, venue, symbol ORDER BY seq) AS n_receipt
  FROM w_l2
)"""

# The venues whose l2 follows the futures pu chain (USD-M, COIN-M), as a SQL list; the others
# (spot, Binance.US, TR) follow spot's U rule. The venue table says which.
_PU_VENUES = ", ".join(f"'{v}'" for v in VENUES if endpoints(v).rules == "futures")

# What is wrong with one l2 row given its predecessor (NULL: nothing).
SEQUENCE_L2_ISSUE = f"""CASE
      WHEN p_seq IS NOT NULL AND seq = p_seq THEN 'seq_duplicate'
      WHEN p_seq IS NOT NULL AND seq > p_seq + 1 THEN 'seq_gap'
      WHEN kind = 'reset' THEN 'reset'
      WHEN kind = 'delta' AND p_kind = 'delta' AND venue IN ({_PU_VENUES}) AND pu <> p_lu THEN 'gap'
      WHEN kind = 'delta' AND p_kind = 'delta' AND venue NOT IN ({_PU_VENUES}) AND fu <> p_lu + 1 THEN 'gap'
      WHEN kind = 'delta' AND p_kind = 'snapshot' AND venue IN ({_PU_VENUES})
        AND NOT (fu <= p_lu AND lu >= p_lu) THEN 'bad_resync'
      WHEN kind = 'delta' AND p_kind = 'snapshot' AND venue NOT IN ({_PU_VENUES})
        AND NOT (fu <= p_lu + 1 AND lu >= p_lu + 1) THEN 'bad_resync'
      WHEN kind = 'delta' AND p_kind = 'reset' THEN 'no_snapshot'
      WHEN kind = 'snapshot' AND p_kind = 'reset' THEN 'resync'
      ELSE NULL END"""

# Freshness: the longest silence of each stream (leading and trailing edges included, up to the
# window or the session's end), the longest silence of a whole session, the longest silence the
# exchange's own clock does not explain ('held': receipt gap minus event-time gap between two
# consecutive messages, which is how a held-back stream shows and a quiet market does not, whatever
# the clock offset), and how long L2 lagged behind trades/tickers. Events are first folded into
# one-second ticks per stream (first/last receipt and event time), so the ordered passes run over
# ticks rather than messages: gaps across ticks are exact, gaps inside one second are not looked at
# (every limit is several seconds). The L2 lag groups ticks by the running count of ticks with L2, so
# a group is "the time after an L2 message", and its lag runs from its first trade/ticker to the next
# L2 message (at most a second short).
#
# A session without its close record (``ended_ns`` NULL: a feed killed, or still running) ends at the
# window's end, unless it is known to be over: ``{writer_gone}`` (no process can be writing the store)
# or a later session of its venue that started after its last row (the feed was restarted); then it
# ends at its last row, and its 'unclosed' row says which. So a dead feed is not a stall up to now.
# Its 'span' row is that judged span, for the streams it subscribed and never received (checks.py).
#
# 'dead': for trades and tickers, of every silence of the stream (edges included, and the whole
# session for a stream with no message) the one with the most seconds in which the symbol's other
# channels had messages: a dead stream is silent while its market is busy, a quiet market is silent
# everywhere. ``n`` and ``interval_ns`` are the stream's own count and mean interval while alive (its
# cadence, against which Python judges the silence: the span from its first to its last message,
# less the silence judged).
#
# 'frozen': tickers whose values stop changing while frames keep coming. Ticker frames are folded per
# second with the min and max of each of the four values; a second whose frames all carry the same
# values and that equals the previous second with frames extends a run. Per stream the run with the
# most seconds in which trades or L2 had messages is returned, with its frames (``n``).
FRESHNESS = """
ev AS (
  SELECT session, venue, symbol, 'trades' AS channel, receipt_ns, event_time_ms FROM w_trades
  UNION ALL SELECT session, venue, symbol, 'ticker' AS channel, receipt_ns, event_time_ms FROM w_tickers
  UNION ALL SELECT session, venue, symbol, 'l2' AS channel, receipt_ns,
    CASE WHEN kind = 'delta' THEN event_time_ms END AS event_time_ms FROM w_l2
),
tk AS (
  SELECT session, venue, symbol, channel, CAST(FLOOR(receipt_ns / 1000000000) AS BIGINT) AS tick,
    COUNT(*) AS n, MIN(receipt_ns) AS first_ns, MAX(receipt_ns) AS last_ns,
    ARG_MIN(event_time_ms, receipt_ns) AS first_event, ARG_MAX(event_time_ms, receipt_ns) AS last_event
  FROM ev GROUP BY session, venue, symbol, channel, tick
),
lastrow AS (
  SELECT session, venue, MAX(last_ns) AS last_ns FROM tk GROUP BY session, venue
),
opn AS (
  SELECT s.session, s.venue, MAX(r.last_ns) AS last_ns,
    MAX(CASE WHEN l.started_ns > COALESCE(r.last_ns, s.started_ns) THEN 1 ELSE 0 END) AS superseded
  FROM w_sessions AS s
  LEFT JOIN lastrow AS r ON r.session = s.session AND r.venue = s.venue
  LEFT JOIN w_sessions AS l ON l.venue = s.venue AND l.session <> s.session
  WHERE s.ended_ns IS NULL
  GROUP BY s.session, s.venue
),
ends AS (
  SELECT s.session, s.venue, MAX(GREATEST(s.started_ns, {since})) AS start_ns,
    MIN(LEAST(CASE WHEN s.ended_ns IS NOT NULL THEN s.ended_ns
      WHEN {writer_gone} = 1 OR o.superseded = 1 THEN COALESCE(o.last_ns + 1, GREATEST(s.started_ns, {since}))
      ELSE {until} END, {until})) AS end_ns
  FROM w_sessions AS s LEFT JOIN opn AS o ON o.session = s.session AND o.venue = s.venue
  GROUP BY s.session, s.venue
),
st AS (
  SELECT session, venue, symbol, channel, n, first_ns AS receipt_ns, first_event AS event_time_ms,
    LAG(last_ns) OVER (PARTITION BY {part_of}, channel ORDER BY tick) AS p_receipt,
    LAG(last_event) OVER (PARTITION BY {part_of}, channel ORDER BY tick) AS p_event,
    last_ns
  FROM tk
),
edges AS (
  SELECT s.session, s.venue, s.symbol, s.channel, SUM(s.n) AS n, MIN(s.receipt_ns) AS first_ns,
    MAX(s.last_ns) AS last_ns, MAX(COALESCE(x.start_ns, {since})) AS start_ns,
    MAX(COALESCE(x.end_ns, {until})) AS end_ns
  FROM st AS s LEFT JOIN ends AS x ON x.session = s.session AND x.venue = s.venue
  GROUP BY s.session, s.venue, s.symbol, s.channel
),
gaps AS (
  SELECT session, venue, symbol, channel, p_receipt AS silent_from, receipt_ns - p_receipt AS gap
  FROM st WHERE p_receipt IS NOT NULL
  UNION ALL
  SELECT session, venue, symbol, channel, LEAST(start_ns, first_ns) AS silent_from,
    first_ns - LEAST(start_ns, first_ns) AS gap FROM edges
  UNION ALL
  SELECT session, venue, symbol, channel, last_ns AS silent_from, GREATEST(end_ns, last_ns) - last_ns AS gap
  FROM edges
),
sil AS (
  SELECT g.session, g.venue, g.symbol, g.channel, ARG_MAX(g.silent_from, g.gap) AS silent_from,
    ARG_MAX(g.silent_from, g.gap) + MAX(g.gap) AS silent_to, MAX(e.n) AS n
  FROM gaps AS g JOIN edges AS e
    ON e.session = g.session AND e.venue = g.venue AND e.symbol = g.symbol AND e.channel = g.channel
  GROUP BY g.session, g.venue, g.symbol, g.channel
),
held AS (
  SELECT session, venue, symbol, channel, ARG_MAX(p_receipt, excess) AS silent_from,
    ARG_MAX(p_receipt, excess) + MAX(excess) AS silent_to
  FROM (SELECT session, venue, symbol, channel, p_receipt,
          receipt_ns - p_receipt - (event_time_ms - p_event) * 1000000 AS excess
        FROM st WHERE p_event IS NOT NULL AND event_time_ms IS NOT NULL) AS h
  GROUP BY session, venue, symbol, channel
),
ticks AS (
  SELECT DISTINCT session, venue, tick FROM tk
  UNION ALL SELECT session, venue, CAST(FLOOR(start_ns / 1000000000) AS BIGINT) AS tick FROM ends
  UNION ALL SELECT session, venue, CAST(FLOOR(end_ns / 1000000000) AS BIGINT) AS tick FROM ends
),
ssil AS (
  SELECT session, venue, '*' AS symbol, '*' AS channel,
    (ARG_MAX(p_tick, tick - p_tick) + 1) * 1000000000 AS silent_from,
    ARG_MAX(tick, tick - p_tick) * 1000000000 AS silent_to
  FROM (SELECT session, venue, tick, LAG(tick) OVER (PARTITION BY session, venue ORDER BY tick) AS p_tick
        FROM ticks) AS t
  WHERE p_tick IS NOT NULL
  GROUP BY session, venue
),
sy AS (
  SELECT session, venue, symbol, tick,
    MIN(CASE WHEN channel = 'l2' THEN first_ns END) AS first_l2,
    MAX(CASE WHEN channel = 'l2' THEN last_ns END) AS last_l2,
    MIN(CASE WHEN channel <> 'l2' THEN first_ns END) AS first_other,
    MAX(CASE WHEN channel <> 'l2' THEN last_ns END) AS last_other,
    MIN(CASE WHEN channel = 'trades' THEN first_ns END) AS first_tr,
    MAX(CASE WHEN channel = 'trades' THEN last_ns END) AS last_tr,
    MIN(CASE WHEN channel = 'ticker' THEN first_ns END) AS first_tk,
    MAX(CASE WHEN channel = 'ticker' THEN last_ns END) AS last_tk
  FROM tk GROUP BY session, venue, symbol, tick
),
g AS (
  SELECT session, venue, symbol, tick, first_l2, last_l2, first_other, last_other, first_tr, last_tr,
    first_tk, last_tk, busy_tr, busy_tk,
    SUM(CASE WHEN first_l2 IS NOT NULL THEN 1 ELSE 0 END) OVER (
      PARTITION BY {part_of} ORDER BY tick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS grp,
    SUM(busy_tr) OVER (
      PARTITION BY {part_of} ORDER BY tick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS o_tr,
    SUM(busy_tk) OVER (
      PARTITION BY {part_of} ORDER BY tick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS o_tk
  FROM (SELECT *,
          CASE WHEN first_l2 IS NOT NULL OR first_tk IS NOT NULL THEN 1 ELSE 0 END AS busy_tr,
          CASE WHEN first_l2 IS NOT NULL OR first_tr IS NOT NULL THEN 1 ELSE 0 END AS busy_tk
        FROM sy) AS b
),
gg AS (
  SELECT session, venue, symbol, grp,
    MIN(CASE WHEN first_l2 IS NULL THEN first_other WHEN last_other > last_l2 THEN last_other END)
      AS first_active,
    MIN(first_l2) AS l2_at
  FROM g GROUP BY session, venue, symbol, grp
),
lag_ AS (
  SELECT gg.session, gg.venue, gg.symbol, gg.first_active AS silent_from,
    COALESCE(LEAD(gg.l2_at) OVER (PARTITION BY gg.session, gg.venue, gg.symbol ORDER BY gg.grp),
             GREATEST(x.end_ns, gg.first_active), {until}) AS silent_to
  FROM gg LEFT JOIN ends AS x ON x.session = gg.session AND x.venue = gg.venue
),
lagmax AS (
  SELECT session, venue, symbol, 'l2_lag' AS channel, ARG_MAX(silent_from, silent_to - silent_from) AS silent_from,
    ARG_MAX(silent_from, silent_to - silent_from) + MAX(silent_to - silent_from) AS silent_to
  FROM lag_ WHERE silent_from IS NOT NULL
  GROUP BY session, venue, symbol
),
ge AS (
  SELECT g.session, g.venue, g.symbol, MAX(COALESCE(x.start_ns, {since})) AS start_ns,
    MAX(COALESCE(x.end_ns, {until})) AS end_ns,
    MIN(first_tr) AS f_tr, MAX(last_tr) AS l_tr, MAX(o_tr) AS all_tr,
    MIN(CASE WHEN first_tr IS NOT NULL THEN o_tr - busy_tr END) AS before_tr,
    MAX(CASE WHEN first_tr IS NOT NULL THEN o_tr END) AS upto_tr,
    MIN(first_tk) AS f_tk, MAX(last_tk) AS l_tk, MAX(o_tk) AS all_tk,
    MIN(CASE WHEN first_tk IS NOT NULL THEN o_tk - busy_tk END) AS before_tk,
    MAX(CASE WHEN first_tk IS NOT NULL THEN o_tk END) AS upto_tk
  FROM g LEFT JOIN ends AS x ON x.session = g.session AND x.venue = g.venue
  GROUP BY g.session, g.venue, g.symbol
),
dg AS (
  SELECT session, venue, symbol, 'trades' AS channel,
    LAG(last_tr) OVER (PARTITION BY {part_of} ORDER BY tick) AS silent_from, first_tr AS silent_to,
    o_tr - busy_tr - LAG(o_tr) OVER (PARTITION BY {part_of} ORDER BY tick) AS active
  FROM g WHERE first_tr IS NOT NULL
  UNION ALL
  SELECT session, venue, symbol, 'ticker' AS channel,
    LAG(last_tk) OVER (PARTITION BY {part_of} ORDER BY tick) AS silent_from, first_tk AS silent_to,
    o_tk - busy_tk - LAG(o_tk) OVER (PARTITION BY {part_of} ORDER BY tick) AS active
  FROM g WHERE first_tk IS NOT NULL
  UNION ALL
  SELECT session, venue, symbol, 'trades' AS channel, COALESCE(LEAST(start_ns, f_tr), start_ns) AS silent_from,
    COALESCE(f_tr, GREATEST(end_ns, start_ns)) AS silent_to, COALESCE(before_tr, all_tr) AS active FROM ge
  UNION ALL
  SELECT session, venue, symbol, 'trades' AS channel, l_tr AS silent_from, GREATEST(end_ns, l_tr) AS silent_to,
    all_tr - upto_tr AS active FROM ge WHERE l_tr IS NOT NULL
  UNION ALL
  SELECT session, venue, symbol, 'ticker' AS channel, COALESCE(LEAST(start_ns, f_tk), start_ns) AS silent_from,
    COALESCE(f_tk, GREATEST(end_ns, start_ns)) AS silent_to, COALESCE(before_tk, all_tk) AS active FROM ge
  UNION ALL
  SELECT session, venue, symbol, 'ticker' AS channel, l_tk AS silent_from, GREATEST(end_ns, l_tk) AS silent_to,
    all_tk - upto_tk AS active FROM ge WHERE l_tk IS NOT NULL
),
dead AS (
  SELECT d.session, d.venue, d.symbol, d.channel, d.silent_from, d.silent_to, d.active, e.n,
    CASE WHEN e.n > 1 THEN CAST((e.last_ns - e.first_ns - GREATEST(
      LEAST(d.silent_to, e.last_ns) - GREATEST(d.silent_from, e.first_ns), 0)) / (e.n - 1) AS BIGINT) END
      AS interval_ns
  FROM (SELECT session, venue, symbol, channel, silent_from, silent_to, active,
          ROW_NUMBER() OVER (PARTITION BY session, venue, symbol, channel
                             ORDER BY active DESC, silent_to - silent_from DESC, silent_from) AS rk
        FROM dg WHERE silent_from IS NOT NULL) AS d
  LEFT JOIN edges AS e
    ON e.session = d.session AND e.venue = d.venue AND e.symbol = d.symbol AND e.channel = d.channel
  WHERE d.rk = 1
),
kt AS (
  SELECT session, venue, symbol, CAST(FLOOR(receipt_ns / 1000000000) AS BIGINT) AS tick, COUNT(*) AS n,
    MIN(receipt_ns) AS first_ns, MAX(receipt_ns) AS last_ns,
    MIN(bid_price) AS bp, MAX(bid_price) AS bp_hi, MIN(bid_qty) AS bq, MAX(bid_qty) AS bq_hi,
    MIN(ask_price) AS ap, MAX(ask_price) AS ap_hi, MIN(ask_qty) AS aq, MAX(ask_qty) AS aq_hi
  FROM w_tickers GROUP BY session, venue, symbol, tick
),
ks AS (
  SELECT session, venue, symbol, tick, n, first_ns, last_ns, still, bp, bq, ap, aq,
    LAG(still) OVER (PARTITION BY {part_of} ORDER BY tick) AS p_still,
    LAG(bp) OVER (PARTITION BY {part_of} ORDER BY tick) AS p_bp,
    LAG(bq) OVER (PARTITION BY {part_of} ORDER BY tick) AS p_bq,
    LAG(ap) OVER (PARTITION BY {part_of} ORDER BY tick) AS p_ap,
    LAG(aq) OVER (PARTITION BY {part_of} ORDER BY tick) AS p_aq
  FROM (SELECT *, CASE WHEN bp = bp_hi AND bq = bq_hi AND ap = ap_hi AND aq = aq_hi THEN 1 ELSE 0 END AS still
        FROM kt) AS k
),
kr AS (
  SELECT session, venue, symbol, tick, n, first_ns, last_ns, still,
    SUM(CASE WHEN still = 1 AND p_still = 1 AND bp = p_bp AND bq = p_bq AND ap = p_ap AND aq = p_aq
      THEN 0 ELSE 1 END) OVER (
      PARTITION BY {part_of} ORDER BY tick ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
  FROM ks
),
fr AS (
  SELECT session, venue, symbol, run, SUM(n) AS n, MIN(first_ns) AS silent_from, MAX(last_ns) AS silent_to,
    MIN(tick) AS t0, MAX(tick) AS t1
  FROM kr WHERE still = 1 GROUP BY session, venue, symbol, run
),
frozen AS (
  SELECT session, venue, symbol, 'ticker' AS channel, silent_from, silent_to, active, n FROM (
    SELECT f.session, f.venue, f.symbol, f.silent_from, f.silent_to, f.n,
      b.o_tk - a.o_tk + a.busy_tk AS active,
      ROW_NUMBER() OVER (PARTITION BY f.session, f.venue, f.symbol
                         ORDER BY b.o_tk - a.o_tk + a.busy_tk DESC, f.n DESC, f.silent_to - f.silent_from DESC) AS rk
    FROM fr AS f
    JOIN g AS a ON a.session = f.session AND a.venue = f.venue AND a.symbol = f.symbol AND a.tick = f.t0
    JOIN g AS b ON b.session = f.session AND b.venue = f.venue AND b.symbol = f.symbol AND b.tick = f.t1
  ) AS z WHERE rk = 1
)
SELECT 'stream' AS kind, session, venue, symbol, channel, silent_from, silent_to, n,
  CAST(NULL AS BIGINT) AS active, CAST(NULL AS BIGINT) AS interval_ns, CAST(NULL AS VARCHAR) AS ended_by FROM sil
UNION ALL SELECT 'held' AS kind, session, venue, symbol, channel, silent_from, silent_to, CAST(NULL AS BIGINT) AS n,
  CAST(NULL AS BIGINT) AS active, CAST(NULL AS BIGINT) AS interval_ns, CAST(NULL AS VARCHAR) AS ended_by FROM held
UNION ALL SELECT 'session' AS kind, session, venue, symbol, channel, silent_from, silent_to,
  CAST(NULL AS BIGINT) AS n, CAST(NULL AS BIGINT) AS active, CAST(NULL AS BIGINT) AS interval_ns,
  CAST(NULL AS VARCHAR) AS ended_by FROM ssil
UNION ALL SELECT 'lag' AS kind, session, venue, symbol, channel, silent_from, silent_to, CAST(NULL AS BIGINT) AS n,
  CAST(NULL AS BIGINT) AS active, CAST(NULL AS BIGINT) AS interval_ns, CAST(NULL AS VARCHAR) AS ended_by FROM lagmax
UNION ALL SELECT 'dead' AS kind, session, venue, symbol, channel, silent_from, silent_to, n, active, interval_ns,
  CAST(NULL AS VARCHAR) AS ended_by FROM dead
UNION ALL SELECT 'frozen' AS kind, session, venue, symbol, channel, silent_from, silent_to, n, active,
  CAST(NULL AS BIGINT) AS interval_ns, CAST(NULL AS VARCHAR) AS ended_by FROM frozen
UNION ALL SELECT 'unclosed' AS kind, session, venue, '*' AS symbol, '*' AS channel, last_ns AS silent_from,
  {until} AS silent_to, CAST(NULL AS BIGINT) AS n, CAST(NULL AS BIGINT) AS active, CAST(NULL AS BIGINT) AS interval_ns,
  CASE WHEN {writer_gone} = 1 THEN 'writer_gone' WHEN superseded = 1 THEN 'later_session' END AS ended_by FROM opn
UNION ALL SELECT 'span' AS kind, session, venue, '*' AS symbol, '*' AS channel, start_ns AS silent_from,
  end_ns AS silent_to, CAST(NULL AS BIGINT) AS n, CAST(NULL AS BIGINT) AS active, CAST(NULL AS BIGINT) AS interval_ns,
  CAST(NULL AS VARCHAR) AS ended_by FROM ends
ORDER BY kind, session, venue, symbol, channel
"""

# Book integrity: crossed/locked top of book (tickers, snapshots, and feed resets for crossed books;
# a crossing made by deltas is caught by the feed's book, which resets with reason 'crossed'),
# non-positive prices or quantities (a delta's "0" is a deletion, so only negative is wrong there),
# duplicate trade ids within a feed run, and times going backwards in seq order.
#
# Cost notes (these decide the shape, not the result): DuckDB runs a lateral UNNEST whose output is
# filtered as a dependent join that hashes every list (minutes on 10 M rows), but an UNNEST that is
# only aggregated as a plain scan; so one aggregate over the levels yields each snapshot's top of
# book and each stream's count of bad levels, and only streams with one are unnested again to list
# them. Duplicate trade ids are probed per block of 60 ids (count
# against distinct ids, kept as bits) and grouped per id only in blocks that have one. Each table is
# ordered on its own for the time check (one union of all three sorts as a single, larger job).
INTEGRITY = """
lvs AS (
  SELECT {stream_select}, snap_seq, MIN(receipt_ns) AS receipt_ns,
    MAX(CASE WHEN side = 'bid' AND qty > 0 THEN price END) AS bid,
    MIN(CASE WHEN side = 'ask' AND qty > 0 THEN price END) AS ask,
    SUM(CASE WHEN price IS NULL OR price <= 0 OR qty IS NULL OR qty < 0 OR (kind = 'snapshot' AND qty = 0)
      THEN 1 ELSE 0 END) AS bad
  FROM (
    SELECT r.session, r.venue, r.symbol, {r_sk_col}r.kind, r.receipt_ns, 'bid' AS side,
      CASE WHEN r.kind = 'snapshot' THEN r.seq END AS snap_seq,
      TRY_CAST(x.price AS DOUBLE) AS price, TRY_CAST(x.qty AS DOUBLE) AS qty
    FROM w_l2 AS r CROSS JOIN UNNEST(r.bids) AS t(x) WHERE r.kind IN ('delta', 'snapshot')
    UNION ALL
    SELECT r.session, r.venue, r.symbol, {r_sk_col}r.kind, r.receipt_ns, 'ask' AS side,
      CASE WHEN r.kind = 'snapshot' THEN r.seq END AS snap_seq,
      TRY_CAST(x.price AS DOUBLE) AS price, TRY_CAST(x.qty AS DOUBLE) AS qty
    FROM w_l2 AS r CROSS JOIN UNNEST(r.asks) AS t(x) WHERE r.kind IN ('delta', 'snapshot')
  ) AS a
  GROUP BY {stream_group}, snap_seq
),
top AS (
  SELECT session, venue, symbol, snap_seq AS seq, receipt_ns, bid, ask FROM lvs WHERE snap_seq IS NOT NULL
),
lb AS (
  SELECT r.session, r.venue, r.symbol, r.seq, r.receipt_ns, r.kind, r.bids, r.asks
  FROM w_l2 AS r
  JOIN (SELECT session, venue, symbol FROM lvs GROUP BY session, venue, symbol HAVING SUM(bad) > 0) AS b
    ON b.session = r.session AND b.venue = r.venue AND b.symbol = r.symbol
  WHERE r.kind IN ('delta', 'snapshot')
),
lv AS (
  SELECT r.session, r.venue, r.symbol, r.seq, r.receipt_ns, r.kind, 'bid' AS side,
    TRY_CAST(x.price AS DOUBLE) AS price, TRY_CAST(x.qty AS DOUBLE) AS qty
  FROM lb AS r CROSS JOIN UNNEST(r.bids) AS t(x)
  UNION ALL
  SELECT r.session, r.venue, r.symbol, r.seq, r.receipt_ns, r.kind, 'ask' AS side,
    TRY_CAST(x.price AS DOUBLE) AS price, TRY_CAST(x.qty AS DOUBLE) AS qty
  FROM lb AS r CROSS JOIN UNNEST(r.asks) AS t(x)
),
tid AS (
  SELECT {stream_select}, trade_id // 60 AS blk FROM w_trades
  GROUP BY {stream_group}, trade_id // 60
  HAVING COUNT(*) <> COALESCE(BIT_COUNT(BIT_OR(CAST(1 AS BIGINT) << ABS(trade_id % 60))), 0)
),
back AS (
  {trades_back}
  UNION ALL
  {tickers_back}
  UNION ALL
  {l2_back}
),
f AS (
  SELECT CASE WHEN bid > ask THEN 'crossed' ELSE 'locked' END AS issue, session, venue, symbol,
    'l2' AS channel, seq, receipt_ns, CAST(bid AS VARCHAR) || ' / ' || CAST(ask AS VARCHAR) AS detail
  FROM top WHERE bid >= ask
  UNION ALL
  SELECT 'non_positive' AS issue, session, venue, symbol, 'l2' AS channel, seq, receipt_ns,
    kind || ' ' || side || ' ' || COALESCE(CAST(price AS VARCHAR), '?') || ' x ' || COALESCE(CAST(qty AS VARCHAR), '?')
      AS detail
  FROM lv
  WHERE price IS NULL OR price <= 0 OR qty IS NULL OR qty < 0 OR (kind = 'snapshot' AND qty = 0)
  UNION ALL
  SELECT CASE WHEN TRY_CAST(bid_price AS DOUBLE) > TRY_CAST(ask_price AS DOUBLE) THEN 'crossed'
    ELSE 'locked' END AS issue, session, venue, symbol, 'ticker' AS channel, seq, receipt_ns,
    bid_price || ' / ' || ask_price AS detail
  FROM w_tickers
  WHERE TRY_CAST(bid_qty AS DOUBLE) > 0 AND TRY_CAST(ask_qty AS DOUBLE) > 0
    AND TRY_CAST(bid_price AS DOUBLE) >= TRY_CAST(ask_price AS DOUBLE)
  UNION ALL
  SELECT 'non_positive' AS issue, session, venue, symbol, 'ticker' AS channel, seq, receipt_ns,
    bid_price || ' x ' || bid_qty || ' / ' || ask_price || ' x ' || ask_qty AS detail
  FROM w_tickers
  WHERE COALESCE(TRY_CAST(bid_price AS DOUBLE), -1) < 0 OR COALESCE(TRY_CAST(ask_price AS DOUBLE), -1) < 0
    OR COALESCE(TRY_CAST(bid_qty AS DOUBLE), -1) < 0 OR COALESCE(TRY_CAST(ask_qty AS DOUBLE), -1) < 0
  UNION ALL
  SELECT 'non_positive' AS issue, session, venue, symbol, 'trades' AS channel, seq, receipt_ns,
    price || ' x ' || qty AS detail
  FROM w_trades
  WHERE COALESCE(TRY_CAST(price AS DOUBLE), 0) <= 0 OR COALESCE(TRY_CAST(qty AS DOUBLE), 0) <= 0
  UNION ALL
  SELECT 'crossed' AS issue, session, venue, symbol, 'l2' AS channel, seq, receipt_ns,
    'feed reset: ' || reason AS detail
  FROM w_l2 WHERE kind = 'reset' AND (LOWER(reason) LIKE '%cross%' OR LOWER(reason) LIKE '%lock%')
  UNION ALL
  SELECT 'duplicate_trade_id' AS issue, t.session, t.venue, t.symbol, 'trades' AS channel, MAX(t.seq) AS seq,
    MAX(t.receipt_ns) AS receipt_ns,
    'trade id ' || CAST(t.trade_id AS VARCHAR) || ' x' || CAST(COUNT(*) AS VARCHAR) AS detail
  FROM w_trades AS t JOIN tid AS d
    ON d.session = t.session AND d.venue = t.venue AND d.symbol = t.symbol
      AND d.blk IS NOT DISTINCT FROM t.trade_id // 60
  GROUP BY t.session, t.venue, t.symbol, t.trade_id HAVING COUNT(*) > 1
  UNION ALL
  SELECT 'time_backwards' AS issue, session, venue, symbol, channel, seq, receipt_ns,
    CASE WHEN event_time_ms < p_event THEN 'event time ' || CAST(event_time_ms AS VARCHAR) || ' after '
      || CAST(p_event AS VARCHAR) ELSE 'receipt went back ' || CAST(p_receipt - receipt_ns AS VARCHAR)
      || ' ns' END AS detail
  FROM back
)
SELECT issue, session, venue, symbol, channel, seq, receipt_ns, detail,
  COUNT(*) OVER (PARTITION BY issue, session, venue, symbol, channel) AS total
FROM f
QUALIFY ROW_NUMBER() OVER (PARTITION BY issue, session, venue, symbol, channel ORDER BY receipt_ns, seq)
  <= {limit}
ORDER BY issue, session, venue, symbol, channel, receipt_ns, seq
"""


def _times_back(table: str, channel: str, only: str = "", part: str = STRING_KEYS, lean: bool = False) -> str:
    """Integrity's ``back`` rows of one table: event or receipt time before the previous row's, in seq
    order (``only`` narrows the rows compared, e.g. l2 deltas with the previous delta; ``part`` is the
    stream key to partition by). ``lean`` (DuckDB: needs the ``rid`` row id) sorts only the key, seq
    and times, and joins the few rows found back to their strings, as the shared l2 pass does:
    carrying the three strings through the sort of every row made the window cost about twice as much."""
    if lean:
        return f"""SELECT r.session, r.venue, r.symbol, '{channel}' AS channel, a.seq, a.receipt_ns, a.event_time_ms,
    a.p_event, a.p_receipt
  FROM (SELECT rid, seq, receipt_ns, event_time_ms,
          LAG(event_time_ms) OVER (PARTITION BY {part} ORDER BY seq) AS p_event,
          LAG(receipt_ns) OVER (PARTITION BY {part} ORDER BY seq) AS p_receipt
        FROM {table}{only}) AS a
  JOIN {table} AS r ON r.rid = a.rid
  WHERE a.event_time_ms < a.p_event OR a.receipt_ns < a.p_receipt"""
    return f"""SELECT session, venue, symbol, '{channel}' AS channel, seq, receipt_ns, event_time_ms, p_event,
    p_receipt
  FROM (SELECT session, venue, symbol, seq, receipt_ns, event_time_ms,
          LAG(event_time_ms) OVER (PARTITION BY {part} ORDER BY seq) AS p_event,
          LAG(receipt_ns) OVER (PARTITION BY {part} ORDER BY seq) AS p_receipt
        FROM {table}{only}) AS a
  WHERE event_time_ms < p_event OR receipt_ns < p_receipt"""


# --- DuckDB: one ordered l2 pass shared by sequence and integrity ---------------------------------
#
# Both checks walk l2 in seq order per (session, venue, symbol): sequence over every row, integrity's
# time check over deltas only. When both run on DuckDB, the runner stores from one window pass the
# rows either check needs in a temp table (a handful on good data), and each check reads that
# instead of sorting l2 itself; BigQuery keeps one self-contained query per check.
#
# Integrity compares a delta with the previous *delta*. The pass keeps the previous row's times; when
# that row is not a delta, the previous delta is the one before the run of other rows (snapshots,
# resets) in between. So the pass also keeps every non-delta row (rare: resyncs), the first row of
# each run carries the delta before it, and the check finds it on the small table (LAG IGNORE NULLS
# over 4 M rows would cost as much as the sort). ``p_receipt IS NULL`` means "no previous row":
# receipt_ns is never NULL inside the window. Ties in seq (duplicates) are ordered arbitrarily here,
# as in the per-check windows. The sort carries no strings but ``venue`` (the rules differ by venue):
# the few rows kept get their session, symbol and reason back by row id.
L2_PASS_TABLE = "__tickpath_dq_l2_pass"
L2_PASS = """
p AS (
  SELECT rid, venue, seq, kind, receipt_ns, event_time_ms,
    first_update_id AS fu, final_update_id AS lu, prev_final_update_id AS pu,
    LAG(seq) OVER w AS p_seq, LAG(kind) OVER w AS p_kind, LAG(final_update_id) OVER w AS p_lu,
    LAG(receipt_ns) OVER w AS p_receipt, LEAD(receipt_ns) OVER w AS n_receipt,
    LAG(event_time_ms) OVER w AS p_event
  FROM w_l2
  WINDOW w AS (PARTITION BY {part} ORDER BY seq)
),
k AS (
  SELECT * FROM p
  WHERE {l2_issue} IS NOT NULL
    OR kind IS DISTINCT FROM 'delta'
    OR p_kind IS DISTINCT FROM 'delta'
    OR event_time_ms < p_event OR receipt_ns < p_receipt
)
SELECT r.session, r.venue, r.symbol, k.seq, k.kind, k.receipt_ns, k.event_time_ms, r.reason, k.fu, k.lu, k.pu,
  k.p_seq, k.p_kind, k.p_lu, k.p_receipt, k.n_receipt, k.p_event
FROM k JOIN w_l2 AS r ON r.rid = k.rid
"""
SEQUENCE_L2_FROM_PASS = f"""l AS (
  SELECT session, venue, symbol, seq, kind, receipt_ns, reason, fu, lu, pu, p_seq, p_kind, p_lu, p_receipt,
    n_receipt
  FROM {L2_PASS_TABLE}
)"""
INTEGRITY_L2_BACK_FROM_PASS = f"""SELECT session, venue, symbol, 'l2' AS channel, seq, receipt_ns, event_time_ms,
    pd.e AS p_event, pd.r AS p_receipt
  FROM (SELECT session, venue, symbol, seq, kind, receipt_ns, event_time_ms,
          CASE WHEN p_kind = 'delta' THEN struct_pack(e := p_event, r := p_receipt)
            ELSE LAG(CASE WHEN kind IS DISTINCT FROM 'delta' AND (p_receipt IS NULL OR p_kind = 'delta')
                       THEN struct_pack(e := CASE WHEN p_kind = 'delta' THEN p_event END,
                                        r := CASE WHEN p_kind = 'delta' THEN p_receipt END) END
                     IGNORE NULLS) OVER (PARTITION BY session, venue, symbol ORDER BY seq) END AS pd
        FROM {L2_PASS_TABLE}) AS a
  WHERE kind = 'delta' AND (event_time_ms < pd.e OR receipt_ns < pd.r)"""

# Completeness per minute of receipt time: depth and other messages, and how many cadence slots
# (100/250/500/1000 ms, derived from 100 ms slots) saw trades or ticker changes; every such slot
# changed the book, so the depth stream owes at least one message for it. Python picks the slot
# width of the subscribed stream. The active slots are kept as bits: each minute is cut into ten
# 6-second words (60 slots of 100 ms; 6 s is a whole number of every cadence), a word ORs in one bit
# per active slot at each cadence, and a minute's count is the sum of its words' set bits. So the
# only hash table has one entry per (stream, word) instead of one per 100 ms slot.
COMPLETENESS = """
ev AS (
  SELECT session, venue, symbol, 0 AS is_l2, receipt_ns FROM w_trades
  UNION ALL SELECT session, venue, symbol, 0 AS is_l2, receipt_ns FROM w_tickers
  UNION ALL SELECT session, venue, symbol, 1 AS is_l2, receipt_ns FROM w_l2 WHERE kind = 'delta'
),
sl AS (
  SELECT session, venue, symbol, is_l2, minute, CAST(FLOOR((slot - minute * 600) / 60) AS BIGINT) AS word,
    slot - minute * 600 - CAST(FLOOR((slot - minute * 600) / 60) AS BIGINT) * 60 AS pos
  FROM (SELECT session, venue, symbol, is_l2, slot, CAST(FLOOR(slot / 600) AS BIGINT) AS minute
        FROM (SELECT session, venue, symbol, is_l2, CAST(FLOOR(receipt_ns / 100000000) AS BIGINT) AS slot
              FROM ev) AS a) AS b
),
words AS (
  SELECT session, venue, symbol, minute, word, SUM(is_l2) AS l2, COUNT(*) - SUM(is_l2) AS other,
    {word_columns}
  FROM sl GROUP BY session, venue, symbol, minute, word
)
SELECT session, venue, symbol, minute, SUM(l2) AS l2, SUM(other) AS other,
  {slot_columns}
FROM words
GROUP BY session, venue, symbol, minute
ORDER BY session, venue, symbol, minute
"""

SESSIONS = """
x AS (SELECT 1 AS one)
SELECT session, venue, started_ns, ended_ns, streams, clock_offset_ns, clock_offset_bound_ns
FROM w_sessions ORDER BY session, venue
"""

EXTENT = """
ev AS (
  SELECT 'trades' AS channel, receipt_ns FROM w_trades
  UNION ALL SELECT 'ticker' AS channel, receipt_ns FROM w_tickers
  UNION ALL SELECT 'l2' AS channel, receipt_ns FROM w_l2
)
SELECT channel, COUNT(*) AS n, MIN(receipt_ns) AS first_ns, MAX(receipt_ns) AS last_ns
FROM ev GROUP BY channel ORDER BY channel
"""

# DuckDB's EXTENT: the same counts per stream, with each stream's hashed key (hashed once per stream,
# after grouping, so it costs nothing per row) for :func:`stream_keys_unique`.
STREAM_EXTENT = """
ev AS (
  SELECT 'trades' AS channel, session, venue, symbol FROM w_trades
  UNION ALL SELECT 'ticker' AS channel, session, venue, symbol FROM w_tickers
  UNION ALL SELECT 'l2' AS channel, session, venue, symbol FROM w_l2
)
SELECT channel, session, venue, symbol, {stream_key} AS sk, COUNT(*) AS n
FROM ev GROUP BY channel, session, venue, symbol ORDER BY channel, session, venue, symbol
"""


def stream_keys_unique(streams: Iterable[Mapping[str, Any]]) -> bool:
    """True when no two distinct (session, venue, symbol) share a hashed key ``sk`` (STREAM_EXTENT rows):
    then keying the checks on ``sk`` gives exactly the rows keying on the strings gives."""
    owner: dict[Any, tuple[Any, Any, Any]] = {}
    for r in streams:
        key = (r["session"], r["venue"], r["symbol"])
        if owner.setdefault(r["sk"], key) != key:
            return False
    return True


# Per cadence: the OR of one bit per active slot within a 6-second word (pos is the 100 ms slot in
# the word, 0..59; a 250 ms slot is two and a half of those), then the minute's count of set bits.
WORD_COLUMNS = {
    c: f"BIT_OR(CASE WHEN is_l2 = 0 THEN CAST(1 AS BIGINT) << CAST(FLOOR(pos * 100 / {c}) AS BIGINT) END) AS b{c}"
    for c in (100, 250, 500, 1000)
}
# Latency buckets of three significant digits by integer division, one CASE arm per decade.
INT_BUCKETS = "\n      ".join(
    f"WHEN v < {10 ** (d + 1)} THEN v" + ("" if d < 3 else f" // {10 ** (d - 2)} * {10 ** (d - 2)}")
    for d in range(2, 14)
)
SLOT_COLUMNS = {c: f"COALESCE(SUM(BIT_COUNT(b{c})), 0) AS a{c}" for c in (100, 250, 500, 1000)}


def body(
    template: str,
    window: Window,
    cadences_ms: Iterable[int] | None = None,
    *,
    dialect: Dialect = "bigquery",
    l2_pass: bool = False,
    keyed: bool = False,
    writer_gone: bool = False,
) -> str:
    """Fill a body template's window bounds, finding limit and the cadence-slot columns completeness
    needs (those of the subscribed depth speeds; all when unknown). Integers only, never user text.

    ``dialect="duckdb"`` adds DuckDB's materialisation hints (same rows); ``l2_pass`` reads the shared
    ordered l2 pass (:data:`L2_PASS`) that the caller has stored in :data:`L2_PASS_TABLE`; ``keyed``
    (DuckDB only, once :func:`stream_keys_unique` has proved it safe) sorts and groups streams on the
    hashed key ``sk`` instead of the three strings; ``writer_gone`` (no process can be writing the store)
    ends freshness's sessions without a close record at their last row. The default is the portable
    text that BigQuery runs."""
    wanted = sorted(set(cadences_ms) & set(SLOT_COLUMNS)) if cadences_ms is not None else sorted(SLOT_COLUMNS)
    columns = ",\n  ".join(SLOT_COLUMNS[c] for c in wanted or [100])
    words = ",\n    ".join(WORD_COLUMNS[c] for c in wanted or [100])
    duckdb = dialect == "duckdb"
    if keyed and not duckdb:
        raise ConfigError("the hashed stream key exists only on DuckDB")
    # The stream key. ``part``: what windows over the w_* rows partition by and groupings group by;
    # ``stream_select``: what such a grouping selects (the strings ride along as FIRST, one per key as
    # the proof guarantees); ``part_of``: the partition of windows over rows already folded by the
    # strings (hashing there costs a hash per folded row, not per message); ``sk_col``: carries sk.
    strings = f"sk, {', '.join(f'FIRST({c}) AS {c}' for c in ('session', 'venue', 'symbol'))}"
    part = "sk" if keyed else STRING_KEYS
    return template.format(
        part=part,
        stream_group=part,
        stream_select=strings if keyed else STRING_KEYS,
        part_of=STREAM_KEY if keyed else STRING_KEYS,
        stream_key=STREAM_KEY,
        sk_col="sk, " if keyed else "",
        r_sk_col="r.sk, " if keyed else "",
        since=int(window.since_ns),
        until=int(window.until_ns),
        writer_gone=int(writer_gone),
        limit=FINDINGS_PER_KIND,
        slot_columns=columns,
        word_columns=words,
        int_buckets=INT_BUCKETS,
        l2_issue=SEQUENCE_L2_ISSUE,
        l2_ordered=SEQUENCE_L2_FROM_PASS if l2_pass else SEQUENCE_L2_ORDERED,
        trades_back=_times_back("w_trades", "trades", part=part, lean=duckdb),
        tickers_back=_times_back("w_tickers", "ticker", part=part, lean=duckdb),
        l2_back=INTEGRITY_L2_BACK_FROM_PASS
        if l2_pass
        else _times_back("w_l2", "l2", " WHERE kind = 'delta'", part, lean=duckdb),
        # DuckDB would materialise a CTE read twice (a copy of 6 M rows); BigQuery has no such hint.
        not_materialized="NOT MATERIALIZED " if duckdb else "",
    )
