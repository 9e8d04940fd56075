"""The storage schema: one table per channel, the same columns in DuckDB, Parquet and BigQuery.

Sinks (DuckDB, Parquet), ``tickpath ingest`` and ``tickpath dq`` all take the table layout from here,
so a check written once runs on whatever store the data landed in.

- ``trades``, ``tickers``: one row per event.
- ``l2``: deltas, snapshots and resets of the order books in one table with a ``kind`` column, in
  ``seq`` order per ``(session, venue, symbol)``; levels are lists of ``{price, qty}`` strings.
- ``feed_sessions``: one row per feed run and venue: what was subscribed (so ``dq`` knows each
  stream's expected cadence), and the clock-offset estimate the feed took at start (so latency can
  be corrected), with its error bound.

``publish_ns`` (when a bus sink published the event) and ``ingest_ns`` (when ``ingest`` committed
it) are null for events written directly by the feed.

Two builders give the same tables: :func:`event_row` + :func:`to_arrow` (one dict per row: the
definition, and what BigQuery takes) and :func:`events_to_arrow` (column-wise, for the hot paths of
the DuckDB and Parquet sinks and ``ingest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa

from tickpath.events import (
    BookDelta,
    BookReset,
    BookSnapshot,
    Candle,
    Channel,
    DayTicker,
    Event,
    Liquidation,
    MarkPrice,
    MiniTicker,
    OpenInterest,
    Ticker,
    Trade,
)

if TYPE_CHECKING:
    import duckdb

LEVEL = pa.struct([("price", pa.string()), ("qty", pa.string())])

_COMMON: list[tuple[str, pa.DataType]] = [
    ("session", pa.string()),
    ("venue", pa.string()),
    ("symbol", pa.string()),
    ("seq", pa.int64()),
    ("event_time_ms", pa.int64()),
    ("transaction_time_ms", pa.int64()),
    ("receipt_ns", pa.int64()),
]
_TAIL: list[tuple[str, pa.DataType]] = [("publish_ns", pa.int64()), ("ingest_ns", pa.int64())]

SCHEMAS: dict[str, pa.Schema] = {
    "trades": pa.schema(
        _COMMON
        + [
            ("trade_id", pa.int64()),
            ("first_trade_id", pa.int64()),
            ("last_trade_id", pa.int64()),
            ("price", pa.string()),
            ("qty", pa.string()),
            ("side", pa.string()),
        ]
        + _TAIL
    ),
    "tickers": pa.schema(
        _COMMON
        + [
            ("update_id", pa.int64()),
            ("bid_price", pa.string()),
            ("bid_qty", pa.string()),
            ("ask_price", pa.string()),
            ("ask_qty", pa.string()),
        ]
        + _TAIL
    ),
    "l2": pa.schema(
        _COMMON
        + [
            ("kind", pa.string()),  # delta | snapshot | reset
            ("first_update_id", pa.int64()),  # U (delta)
            ("final_update_id", pa.int64()),  # u (delta), lastUpdateId (snapshot)
            ("prev_final_update_id", pa.int64()),  # pu (futures delta)
            ("depth", pa.int32()),  # top-N window, null = full book
            ("bids", pa.list_(LEVEL)),
            ("asks", pa.list_(LEVEL)),
            ("reason", pa.string()),  # reset
            ("last_good_update_id", pa.int64()),  # reset
        ]
        + _TAIL
    ),
    "feed_sessions": pa.schema(
        [
            ("session", pa.string()),
            ("venue", pa.string()),
            ("started_ns", pa.int64()),
            ("ended_ns", pa.int64()),
            ("symbols", pa.list_(pa.string())),
            ("channels", pa.list_(pa.string())),
            ("streams", pa.list_(pa.string())),  # exact Binance stream names, e.g. btcusdt@depth@100ms
            ("depth", pa.int32()),
            ("clock_offset_ns", pa.int64()),  # exchange clock minus local clock; null if not measured
            ("clock_offset_bound_ns", pa.int64()),  # +/- error bound of that estimate
        ]
    ),
}


# The low-rate channels (venues/binance/channels.py): one table each, its columns the event's own
# fields after the common ones, in declaration order, so a row is the event as it is.
_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
_CHANNEL_EVENTS: dict[str, type[Event]] = {
    "candles": Candle,
    "tickers_24h": DayTicker,
    "mini_tickers": MiniTicker,
    "mark_prices": MarkPrice,
    "open_interest": OpenInterest,
    "liquidations": Liquidation,
}


def _own_fields(cls: type[Event]) -> list[str]:
    return [f for f in cls.__struct_fields__ if f not in _COMMON_NAMES and f != "channel"]


def _arrow_type(cls: type[Event], name: str) -> pa.DataType:
    hint = str(msgspec.structs.fields(cls)[cls.__struct_fields__.index(name)].type)
    return _B if "bool" in hint else _I if "int" in hint else _S


_COMMON_NAMES = {n for n, _ in _COMMON}
for _table, _cls in _CHANNEL_EVENTS.items():
    SCHEMAS[_table] = pa.schema(_COMMON + [(f, _arrow_type(_cls, f)) for f in _own_fields(_cls)] + _TAIL)

CHANNEL_TABLE: dict[Channel, str] = {
    "trades": "trades",
    "ticker": "tickers",
    "l2": "l2",
    "candles": "candles",
    "ticker24h": "tickers_24h",
    "mini_ticker": "mini_tickers",
    "mark_price": "mark_prices",
    "open_interest": "open_interest",
    "liquidations": "liquidations",
}
EVENT_TABLES = ("trades", "tickers", "l2", *_CHANNEL_EVENTS)


def table_for(event: Event) -> str:
    return CHANNEL_TABLE[event.channel]


def _levels(levels: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"price": p, "qty": q} for p, q in levels]


def _l2_fields(event: BookDelta | BookSnapshot | BookReset) -> dict[str, Any]:
    """An l2 row's own columns: a delta, a snapshot or a reset share one table."""
    if isinstance(event, BookReset):
        return dict(
            kind="reset",
            first_update_id=None,
            final_update_id=None,
            prev_final_update_id=None,
            depth=None,
            bids=[],
            asks=[],
            reason=event.reason,
            last_good_update_id=event.last_good_update_id,
        )
    ids: tuple[int | None, int, int | None]
    if isinstance(event, BookDelta):
        ids = (event.first_update_id, event.final_update_id, event.prev_final_update_id)
    else:
        ids = (None, event.last_update_id, None)
    return dict(
        kind="delta" if isinstance(event, BookDelta) else "snapshot",
        first_update_id=ids[0],
        final_update_id=ids[1],
        prev_final_update_id=ids[2],
        depth=event.depth,
        bids=_levels(event.bids),
        asks=_levels(event.asks),
        reason=None,
        last_good_update_id=None,
    )


def _own_row_fields(event: Event) -> dict[str, Any]:
    """The columns of ``event``'s table beyond the common ones."""
    if isinstance(event, Trade):
        return dict(
            trade_id=event.trade_id,
            first_trade_id=event.first_trade_id,
            last_trade_id=event.last_trade_id,
            price=event.price,
            qty=event.qty,
            side=event.side,
        )
    if isinstance(event, Ticker):
        return dict(
            update_id=event.update_id,
            bid_price=event.bid_price,
            bid_qty=event.bid_qty,
            ask_price=event.ask_price,
            ask_qty=event.ask_qty,
        )
    if type(event) in _CHANNEL_TYPES:
        return {f: getattr(event, f) for f in _own_fields(type(event))}
    assert isinstance(event, (BookDelta, BookSnapshot, BookReset))
    return _l2_fields(event)


def event_row(event: Event, *, publish_ns: int | None = None, ingest_ns: int | None = None) -> dict[str, Any]:
    """The row of ``event`` in its table, as a dict keyed by column name."""
    row: dict[str, Any] = {
        "session": event.session,
        "venue": event.venue,
        "symbol": event.symbol,
        "seq": event.seq,
        "event_time_ms": event.event_time_ms,
        "transaction_time_ms": event.transaction_time_ms,
        "receipt_ns": event.receipt_ns,
        "publish_ns": publish_ns,
        "ingest_ns": ingest_ns,
    }
    row.update(_own_row_fields(event))
    return row


def to_arrow(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (from :func:`event_row`) of one table as an Arrow table with the canonical schema."""
    return pa.Table.from_pylist(rows, schema=SCHEMAS[table])


# -- column-wise builder ---------------------------------------------------------------------
_COMMON_FIELDS = tuple(name for name, _ in _COMMON)
# Fields read straight off the event for each table (``publish_ns``/``ingest_ns`` are passed in).
_FIELDS: dict[str, tuple[str, ...]] = {
    "trades": (*_COMMON_FIELDS, "trade_id", "first_trade_id", "last_trade_id", "price", "qty", "side"),
    "tickers": (*_COMMON_FIELDS, "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty"),
    "l2": (*_COMMON_FIELDS, "first_update_id", "final_update_id", "prev_final_update_id", "depth", "bids", "asks"),
}
_FIELDS.update({t: (*_COMMON_FIELDS, *_own_fields(cls)) for t, cls in _CHANNEL_EVENTS.items()})
_CHANNEL_TYPES = frozenset(_CHANNEL_EVENTS.values())
_GET = {t: attrgetter(*names) for t, names in _FIELDS.items()}
_ROW_TYPE = {t: pa.struct([SCHEMAS[t].field(n) for n in names]) for t, names in _FIELDS.items()}
_GET_COMMON = attrgetter(*_COMMON_FIELDS)


def _columns(table: str, events: Sequence[Any]) -> dict[str, Any]:
    """Column values of one table's events, as Arrow arrays or lists (latency columns excluded)."""
    if table == "l2" and not all(type(e) is BookDelta for e in events):
        return _l2_mixed(events)
    # One attrgetter tuple per event, converted and transposed by Arrow in one pass (a struct array,
    # flattened): no Python loop per field, and faster than one list per column.
    rows = pa.array(list(map(_GET[table], events)), type=_ROW_TYPE[table])
    cols: dict[str, Any] = dict(zip(_FIELDS[table], rows.flatten(), strict=True))
    if table == "l2":  # all deltas, the steady state
        cols["kind"] = pa.repeat(pa.scalar("delta", pa.string()), len(events))
    return cols


def _l2_mixed(events: Sequence[Any]) -> dict[str, Any]:
    """l2 columns when snapshots or resets are present (rare): the kind-specific ones per event."""
    cols: dict[str, Any] = dict(
        zip(_COMMON_FIELDS, map(list, zip(*map(_GET_COMMON, events), strict=True)), strict=True)
    )
    kind: list[str] = []
    first: list[int | None] = []
    final: list[int | None] = []
    prev: list[int | None] = []
    depth: list[int | None] = []
    bids: list[Any] = []
    asks: list[Any] = []
    reason: list[str | None] = []
    good: list[int | None] = []
    for e in events:
        if isinstance(e, BookDelta):
            kind.append("delta")
            first.append(e.first_update_id)
            final.append(e.final_update_id)
            prev.append(e.prev_final_update_id)
            depth.append(e.depth)
            bids.append(e.bids)
            asks.append(e.asks)
            reason.append(None)
            good.append(None)
        elif isinstance(e, BookSnapshot):
            kind.append("snapshot")
            first.append(None)
            final.append(e.last_update_id)
            prev.append(None)
            depth.append(e.depth)
            bids.append(e.bids)
            asks.append(e.asks)
            reason.append(None)
            good.append(None)
        else:
            kind.append("reset")
            first.append(None)
            final.append(None)
            prev.append(None)
            depth.append(None)
            bids.append([])
            asks.append([])
            reason.append(e.reason)
            good.append(e.last_good_update_id)
    cols.update(
        kind=kind,
        first_update_id=first,
        final_update_id=final,
        prev_final_update_id=prev,
        depth=depth,
        bids=bids,
        asks=asks,
        reason=reason,
        last_good_update_id=good,
    )
    return cols


def events_to_arrow(
    table: str,
    events: Sequence[Event],
    *,
    publish_ns: pa.Array | int | None = None,
    ingest_ns: pa.Array | int | None = None,
) -> pa.Table:
    """Events of one storage table as an Arrow table, column-wise (no dict per row).

    Equal to ``to_arrow(table, [event_row(e, ...) for e in events])``. ``publish_ns``/``ingest_ns``
    are one value for every row, or an int64 array with one value per event.
    """
    cols = _columns(table, events)
    n = len(events)
    schema = SCHEMAS[table]
    arrays = []
    for f in schema:
        v = ingest_ns if f.name == "ingest_ns" else publish_ns if f.name == "publish_ns" else cols.get(f.name)
        if v is None:  # a latency column not given, or a column this kind of row does not have
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, pa.Array):
            arrays.append(v if v.type == f.type else v.cast(f.type))
        elif isinstance(v, int):
            arrays.append(pa.repeat(pa.scalar(v, f.type), n))
        else:
            arrays.append(pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _final_first(row: dict[str, Any]) -> tuple[bool, int]:
    return row["ended_ns"] is not None, row["ended_ns"] or 0


def latest_sessions(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """``feed_sessions`` rows as Arrow, one per ``(session, venue)``: a feed writes its row when it
    starts and again when it stops, and the stopped row wins whatever order the two arrive in (a bus
    may re-deliver the first after the second); between rows of equal standing, the later one."""
    best: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        key = (r["session"], r["venue"])
        if key not in best or _final_first(r) >= _final_first(best[key]):
            best[key] = r
    return pa.Table.from_pylist(list(best.values()), schema=SCHEMAS["feed_sessions"])


def merge_sessions(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Merge ``feed_sessions`` rows into a DuckDB store (inside the caller's transaction), one per
    ``(session, venue)`` by :func:`latest_sessions`' rule: a stored row goes when the new one has
    ended or the stored one has not, and a new row goes in where no row is left, so an open row never
    replaces a stopped one."""
    con.register("_sessions", latest_sessions(rows))
    try:
        con.execute(
            "DELETE FROM feed_sessions AS f USING _sessions AS s WHERE f.session = s.session "
            "AND f.venue = s.venue AND (s.ended_ns IS NOT NULL OR f.ended_ns IS NULL)"
        )
        con.execute(
            "INSERT INTO feed_sessions SELECT * FROM _sessions AS s WHERE NOT EXISTS "
            "(SELECT 1 FROM feed_sessions AS f WHERE f.session = s.session AND f.venue = s.venue)"
        )
    finally:
        con.unregister("_sessions")


def duckdb_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for DuckDB, derived from the Arrow schema."""
    cols = ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in SCHEMAS[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_list(t):
        return f"{_duck_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        inner = ", ".join(f"{f.name} {_duck_type(f.type)}" for f in t)
        return f"STRUCT({inner})"
    raise TypeError(f"no DuckDB type for {t}")  # pragma: no cover - schema is fixed above


def event_date(event: Event) -> str:
    """The BigQuery partition date (UTC) of an event: its exchange event time, else its receipt time."""
    ms = event.event_time_ms if event.event_time_ms is not None else event.receipt_ns // 1_000_000
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


def session_bigquery_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``feed_sessions`` row as its BigQuery subscription writes it: the columns plus ``event_date``,
    the UTC date the run started (what dq's session window filters on)."""
    out = {f.name: row.get(f.name) for f in SCHEMAS["feed_sessions"]}
    out["event_date"] = datetime.fromtimestamp(row["started_ns"] / 1e9, tz=UTC).date().isoformat()
    return out


def bigquery_row(event: Event, *, publish_ns: int | None = None) -> dict[str, Any]:
    """The row a BigQuery subscription writes: the table's columns plus the ``event_date`` partition."""
    row = event_row(event, publish_ns=publish_ns)
    row["event_date"] = event_date(event)
    return row
