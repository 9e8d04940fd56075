"""ingest's native decoder (``tickpath.ingest._decode``, C++ in ``ingest/native/``): bus payloads
straight into Arrow columns, one table per storage table, with no Python object per message.

The layout it decodes is built here from the event structs (``msgspec.inspect``) and the storage
schemas (:data:`tickpath.tables.SCHEMAS`), so the C++ knows no event type: each tag's keys in the
order msgspec writes them, their value types, literal values and nullability, and the column each
lands in (a snapshot's ``last_update_id`` is the l2 ``final_update_id``; ``kind`` is the tag; a
column a tag has no key for is null, or an empty list of levels). It is exact or it declines: a
table whose payloads it does not fully understand comes back as refused, and payloads without a
known tag as odd, and :func:`tickpath.ingest.columns.decode_batch` takes those through the
pure-Python path, which stays the reference (``TICKPATH_PURE=1`` selects it alone).
``tests/ingest/test_native_decode.py`` requires identical tables on random and damaged batches.

The same extension splits pull replies into deliveries (:func:`delivery_splitter`, the compiled
:func:`tickpath.nats.internals.split_deliveries`; ``tests/ingest/test_native_split.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from tickpath.events import EVENT_TYPES
from tickpath.tables import CHANNEL_TABLE, LEVEL, SCHEMAS

__all__ = ["NATIVE_TABLES", "NativeBatch", "available", "decode", "delivery_splitter"]

# Column kinds and value kinds, as decode.hpp numbers them.
_I64, _I32, _STR, _BOOL, _LEVELS = range(5)
_V_INT, _V_STR, _V_BOOL, _V_LEVELS = range(4)
_LATENCY = ("publish_ns", "ingest_ns")  # set by the caller, not decoded
_RENAMED = {"last_update_id": "final_update_id"}  # a snapshot's id is the l2 table's final id
_LEVELS_TYPE = pa.list_(LEVEL)


def _channel_of(cls: type[Any]) -> str:
    return next(f.default for f in msgspec.structs.fields(cls) if f.name == "channel")  # type: ignore[no-any-return]


NATIVE_TABLES: list[str] = list(dict.fromkeys(CHANNEL_TABLE[_channel_of(c)] for c in EVENT_TYPES))  # type: ignore[index]
_COLUMNS: dict[str, list[pa.Field]] = {t: [f for f in SCHEMAS[t] if f.name not in _LATENCY] for t in NATIVE_TABLES}


def _ctype(t: pa.DataType) -> int:
    kinds = {pa.int64(): _I64, pa.int32(): _I32, pa.string(): _STR, pa.bool_(): _BOOL, _LEVELS_TYPE: _LEVELS}
    if t not in kinds:
        raise AssertionError(f"no native column kind for {t}")
    return kinds[t]


def _vtype(t: msgspec.inspect.Type) -> tuple[int, bool, list[str]]:
    """(value kind, nullable, literal values) of one struct field type."""
    nullable = False
    if isinstance(t, msgspec.inspect.UnionType):
        rest = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        nullable = len(rest) < len(t.types)
        if len(rest) != 1:
            raise AssertionError(f"no native value kind for {t}")
        t = rest[0]
    if isinstance(t, msgspec.inspect.IntType):
        return _V_INT, nullable, []
    if isinstance(t, msgspec.inspect.StrType):
        return _V_STR, nullable, []
    if isinstance(t, msgspec.inspect.LiteralType):
        return _V_STR, nullable, [str(v) for v in t.values]
    if isinstance(t, msgspec.inspect.BoolType):
        return _V_BOOL, nullable, []
    if (
        isinstance(t, msgspec.inspect.ListType)
        and isinstance(t.item_type, msgspec.inspect.TupleType)
        and all(isinstance(x, msgspec.inspect.StrType) for x in t.item_type.item_types)
        and len(t.item_type.item_types) == 2
    ):
        return _V_LEVELS, nullable, []
    raise AssertionError(f"no native value kind for {t}")


def layout() -> tuple[list[tuple[Any, ...]], list[list[int]]]:
    """The tags and tables the native decoder is built with (see the module docstring)."""
    tags: list[tuple[Any, ...]] = []
    for cls in EVENT_TYPES:
        channel = _channel_of(cls)
        table = CHANNEL_TABLE[channel]  # type: ignore[index]
        names = [f.name for f in _COLUMNS[table]]
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        keys = []
        for f in info.fields:
            kind, nullable, allowed = _vtype(f.type)
            if f.name == "channel":  # checked, not stored: the table says it
                keys.append((f.name, -1, _V_STR, False, [channel]))
                continue
            keys.append((f.name, names.index(_RENAMED.get(f.name, f.name)), kind, nullable, allowed))
        tag = str(cls.__struct_config__.tag)
        kind_col = names.index("kind") if "kind" in names else -1
        tags.append((tag, NATIVE_TABLES.index(table), kind_col, tag, keys))
    return tags, [[_ctype(f.type) for f in _COLUMNS[t]] for t in NATIVE_TABLES]


try:
    from tickpath.ingest import _decode  # type: ignore[attr-defined]
except ImportError:  # not built (a source checkout without `make native`): the reference alone
    _decode = None

_decoder: Any = None


def available() -> bool:
    """Whether batches are decoded natively: the extension is built and ``TICKPATH_PURE`` is not 1."""
    return _decode is not None and os.environ.get("TICKPATH_PURE", "") != "1"


def delivery_splitter() -> Any:
    """The compiled :func:`tickpath.nats.internals.split_deliveries` (None: use that reference)."""
    return _decode.split_deliveries if available() else None


class NativeBatch:
    """What the native decoder made of a batch: Arrow tables (no latency columns yet) with each
    row's batch position, the tables it refused, and the odd payloads' positions."""

    def __init__(self, tables: dict[str, tuple[np.ndarray, list[pa.Array]]], refused: list[str], odd: list[int]):
        self.tables = tables
        self.refused = refused
        self.odd = odd


def decode(payloads: Sequence[bytes]) -> NativeBatch:
    """Decode a batch natively (:func:`available` must be true)."""
    global _decoder
    if _decoder is None:
        _decoder = _decode.Decoder(*layout())
    out, odd = _decoder.decode(payloads if isinstance(payloads, list) else list(payloads))
    tables: dict[str, tuple[np.ndarray, list[pa.Array]]] = {}
    refused: list[str] = []
    for name, got in zip(NATIVE_TABLES, out, strict=True):
        if got is None:
            refused.append(name)
            continue
        idx = np.frombuffer(got[0], np.int64)
        if len(idx):
            tables[name] = (idx, [_array(f.type, len(idx), c) for f, c in zip(_COLUMNS[name], got[1], strict=True)])
    return NativeBatch(tables, refused, np.frombuffer(odd, np.int64).tolist())


def _array(t: pa.DataType, n: int, c: tuple[Any, ...]) -> pa.Array:
    """One column from its native buffers (wrapped, not copied)."""
    buf = pa.py_buffer
    if t == _LEVELS_TYPE:
        off, p_off, p_data, q_off, q_data = c
        levels = int(np.frombuffer(off, np.int32)[-1])
        price = pa.Array.from_buffers(pa.string(), levels, [None, buf(p_off), buf(p_data)])
        qty = pa.Array.from_buffers(pa.string(), levels, [None, buf(q_off), buf(q_data)])
        struct = pa.StructArray.from_arrays([price, qty], fields=list(LEVEL))
        return pa.Array.from_buffers(t, n, [None, buf(off)], children=[struct])
    if t == pa.string():
        off, data, valid = c
        return pa.Array.from_buffers(t, n, [None if valid is None else buf(valid), buf(off), buf(data)])
    values, valid = c
    return pa.Array.from_buffers(t, n, [None if valid is None else buf(valid), buf(values)])
