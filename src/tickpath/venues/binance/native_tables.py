"""The native core's column buffers as Arrow tables in the storage layout of :mod:`tickpath.tables`.

``Core.take_columns()`` returns, per table, Arrow-layout buffers (int32 offsets, UTF-8 data, int64
values with LSB-first validity bitmaps); they are wrapped here without a copy and without a Python
object per row. The result equals ``tables.events_to_arrow`` of the same events (tests/native).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tickpath.tables import LEVEL, SCHEMAS


def _i64(col: tuple[bytes, bytes | None], n: int, kind: pa.DataType = pa.int64()) -> pa.Array:
    values, valid = col
    bitmap = None if valid is None else pa.py_buffer(valid)
    return pa.Array.from_buffers(kind, n, [bitmap, pa.py_buffer(values)])


def _str(col: tuple[bytes, bytes] | tuple[bytes, bytes, bytes | None], n: int) -> pa.Array:
    offsets, data = col[0], col[1]
    valid = col[2] if len(col) > 2 else None
    bitmap = None if valid is None else pa.py_buffer(valid)
    return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)])


def _levels(col: tuple[bytes, Any, Any], n: int) -> pa.Array:
    offsets, price, qty = col
    k = len(price[0]) // 4 - 1
    struct = pa.StructArray.from_arrays([_str(price, k), _str(qty, k)], fields=list(LEVEL))
    return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(offsets)]), struct)


def _common(d: dict[str, Any], n: int) -> dict[str, pa.Array]:
    return {
        "session": _str(d["session"], n),
        "venue": _str(d["venue"], n),
        "symbol": _str(d["symbol"], n),
        "seq": _i64(d["seq"], n),
        "event_time_ms": _i64(d["event_time_ms"], n),
        "transaction_time_ms": _i64(d["transaction_time_ms"], n),
        "receipt_ns": _i64(d["receipt_ns"], n),
    }


def _l2(d: dict[str, Any], n: int) -> dict[str, pa.Array]:
    return {
        "kind": _str(d["kind"], n),
        "first_update_id": _i64(d["first_update_id"], n),
        "final_update_id": _i64(d["final_update_id"], n),
        "prev_final_update_id": _i64(d["prev_final_update_id"], n),
        "depth": _i64(d["depth"], n, pa.int32()),
        "bids": _levels(d["bids"], n),
        "asks": _levels(d["asks"], n),
        "reason": _str(d["reason"], n),
        "last_good_update_id": _i64(d["last_good_update_id"], n),
    }


def _trades(d: dict[str, Any], n: int) -> dict[str, pa.Array]:
    return {
        "trade_id": _i64(d["trade_id"], n),
        "first_trade_id": _i64(d["first_trade_id"], n),
        "last_trade_id": _i64(d["last_trade_id"], n),
        "price": _str(d["price"], n),
        "qty": _str(d["qty"], n),
        "side": _str(d["side"], n),
    }


def _tickers(d: dict[str, Any], n: int) -> dict[str, pa.Array]:
    return {
        "update_id": _i64(d["update_id"], n),
        **{k: _str(d[k], n) for k in ("bid_price", "bid_qty", "ask_price", "ask_qty")},
    }


def columns_to_tables(cols: dict[str, dict[str, Any]]) -> dict[str, pa.Table]:
    """One Arrow table per storage table present; ``publish_ns``/``ingest_ns`` are null.

    Every string column (symbol, session, venue, kind, reason, side included) comes built by the core;
    here buffers are only wrapped."""
    out: dict[str, pa.Table] = {}
    for table, d in cols.items():
        n = d["rows"]
        arrays = _common(d, n)
        if table == "l2":
            arrays |= _l2(d, n)
        elif table == "trades":
            arrays |= _trades(d, n)
        else:
            arrays |= _tickers(d, n)
        schema = SCHEMAS[table]
        out[table] = pa.Table.from_arrays(
            [arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in schema], schema=schema
        )
    return out
