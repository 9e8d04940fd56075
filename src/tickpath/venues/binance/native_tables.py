"""The native core's column buffers as Arrow tables in the storage layout of :mod:`tickpath.tables`.

``Core.take_columns()`` returns, per table, Arrow-layout buffers (int32 offsets, UTF-8 data, int64
values with LSB-first validity bitmaps); they are wrapped here without a copy and without a Python
object per row. The result equals ``tables.events_to_arrow`` of the same events (tests/native).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tickpath.tables import LEVEL, SCHEMAS

_KINDS = pa.array(["delta", "snapshot", "reset"], pa.string())


def _i64(col: tuple[bytes, bytes | None], n: int) -> pa.Array:
    values, valid = col
    bitmap = None if valid is None else pa.py_buffer(valid)
    return pa.Array.from_buffers(pa.int64(), n, [bitmap, pa.py_buffer(values)])


def _str(col: tuple[bytes, bytes], n: int) -> pa.Array:
    offsets, data = col
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _levels(col: tuple[bytes, Any, Any], n: int) -> pa.Array:
    offsets, price, qty = col
    k = len(price[0]) // 4 - 1
    struct = pa.StructArray.from_arrays([_str(price, k), _str(qty, k)], fields=list(LEVEL))
    return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(offsets)]), struct)


def _lookup(codes: bytes, n: int, width: pa.DataType, names: pa.Array) -> pa.Array:
    idx = pa.Array.from_buffers(width, n, [None, pa.py_buffer(codes)])
    return names.take(idx)


def _common(d: dict[str, Any], n: int, session: str, venue: str, names: pa.Array) -> dict[str, pa.Array]:
    return {
        "session": pa.repeat(pa.scalar(session, pa.string()), n),
        "venue": pa.repeat(pa.scalar(venue, pa.string()), n),
        "symbol": _lookup(d["symbol"], n, pa.int32(), names),
        "seq": _i64(d["seq"], n),
        "event_time_ms": _i64(d["event_time_ms"], n),
        "transaction_time_ms": _i64(d["transaction_time_ms"], n),
        "receipt_ns": _i64(d["receipt_ns"], n),
    }


def _l2(d: dict[str, Any], n: int, reasons: pa.Array) -> dict[str, pa.Array]:
    reason_idx = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(d["reason"])])
    reason_idx = pa.compute.if_else(pa.compute.less(reason_idx, 0), None, reason_idx)
    return {
        "kind": _lookup(d["kind"], n, pa.uint8(), _KINDS),
        "first_update_id": _i64(d["first_update_id"], n),
        "final_update_id": _i64(d["final_update_id"], n),
        "prev_final_update_id": _i64(d["prev_final_update_id"], n),
        "depth": _i64(d["depth"], n).cast(pa.int32()),
        "bids": _levels(d["bids"], n),
        "asks": _levels(d["asks"], n),
        "reason": reasons.take(reason_idx),
        "last_good_update_id": _i64(d["last_good_update_id"], n),
    }


def _trades(d: dict[str, Any], n: int) -> dict[str, pa.Array]:
    sell = pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(d["sell"])])
    return {
        "trade_id": _i64(d["trade_id"], n),
        "first_trade_id": _i64(d["first_trade_id"], n),
        "last_trade_id": _i64(d["last_trade_id"], n),
        "price": _str(d["price"], n),
        "qty": _str(d["qty"], n),
        "side": pa.array(["buy", "sell"], pa.string()).take(sell),
    }


def _tickers(d: dict[str, Any], n: int) -> dict[str, pa.Array]:
    return {
        "update_id": _i64(d["update_id"], n),
        **{k: _str(d[k], n) for k in ("bid_price", "bid_qty", "ask_price", "ask_qty")},
    }


def columns_to_tables(
    cols: dict[str, dict[str, Any]], *, session: str, venue: str, symbols: list[str], reasons: list[str]
) -> dict[str, pa.Table]:
    """One Arrow table per storage table present; ``publish_ns``/``ingest_ns`` are null."""
    names = pa.array(symbols, pa.string())
    out: dict[str, pa.Table] = {}
    for table, d in cols.items():
        n = d["rows"]
        arrays = _common(d, n, session, venue, names)
        if table == "l2":
            arrays |= _l2(d, n, pa.array(reasons, pa.string()))
        elif table == "trades":
            arrays |= _trades(d, n)
        else:
            arrays |= _tickers(d, n)
        schema = SCHEMAS[table]
        out[table] = pa.Table.from_arrays(
            [arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in schema], schema=schema
        )
    return out
