"""Decoded bus messages to Arrow, column by column: the CPU-heavy middle of ``tickpath ingest``.

``ingest`` turns each fetched batch (thousands of ``(payload, raw headers)`` pairs) into one Arrow
table per storage table. Doing that per row in Python (a dict or a ``getattr`` per field, a header
``find`` per message, ``pa.Table.from_pylist``) cost more CPU than the JSON decoding and the DuckDB
insert together. Here:

- the payloads are sorted into their storage table by one byte of the type tag and each group is
  validated and decoded by msgspec in one call with that table's own decoder (a tagged union costs
  about twice as much per message), with the cyclic garbage collector paused meanwhile (the level
  lists and tuples of 10,000 deltas would otherwise trigger dozens of collections);
- each table is built column-wise by :func:`tickpath.tables.events_to_arrow` (one attrgetter tuple
  per event, converted and transposed by Arrow in one pass), the builder the DuckDB sink uses too;
- ``publish_ns`` is cut out of the raw header blocks by Arrow string kernels (no header parsing);
  the rare value that is not plain digits is parsed by Python exactly as before;
- repeats of an event key inside the batch are found by one Arrow group-by per table.

Anything unusual in a batch (a payload that is not an event, a repeat, a payload in a group its tag
byte does not match) sends the whole batch down the general path (:func:`_decode_general`): one
union decode, then one message at a time for the bad ones, first occurrence of a key kept. A feed's
session row (:class:`~tickpath.events.SessionInfo`, two per run) takes that path too and comes back
in :attr:`Decoded.sessions` instead of being rejected. Both
paths give the same tables, counts and order; ``tests/ingest/test_columns.py`` pins that.

The result is what :func:`tickpath.tables.event_row` defines for each event, with ``publish_ns``
from the headers and ``ingest_ns`` left null until the commit stamps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickpath.events import (
    BookDelta,
    BookReset,
    BookSnapshot,
    Channel,
    Event,
    SessionInfo,
    Ticker,
    Trade,
    decode_event,
    decode_session,
)
from tickpath.nats.frames import PUBLISH_NS_HEADER  # set by the NATS sink
from tickpath.runtime import gc_paused
from tickpath.tables import CHANNEL_TABLE, events_to_arrow

__all__ = ["Decoded", "decode_batch", "publish_ns_array", "stamp_ingest_ns"]

_PUB_HDR = f"\r\n{PUBLISH_NS_HEADER}: ".encode()

_KEY = attrgetter("session", "venue", "channel", "symbol", "seq")
_INT64_MAX = 2**63 - 1

_batch_decoder: msgspec.json.Decoder[list[Event]] = msgspec.json.Decoder(list[Event])
# One decoder per storage table; a payload's table is told by byte 10 of its canonical encoding,
# ``{"type":"trade"...`` (r), ``{"type":"ticker"...`` (i), anything else goes to l2. The decoder
# still validates the tag, so a guess that is wrong fails the group and the general path decides.
_TABLE_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "trades": msgspec.json.Decoder(list[Trade]),
    "tickers": msgspec.json.Decoder(list[Ticker]),
    "l2": msgspec.json.Decoder(list[BookDelta | BookSnapshot | BookReset]),
}
_TABLE_CHANNEL = {"trades": "trades", "tickers": "ticker", "l2": "l2"}
_TAG_TRADE, _TAG_TICKER = ord("r"), ord("i")
_CHANNEL = attrgetter("channel")
_TABLE_KEY = ["session", "venue", "symbol", "seq"]  # the channel is implied by the table


@dataclass
class Decoded:
    """One batch as Arrow tables, with what the run summary counts."""

    tables: dict[str, pa.Table]
    rejected: int  # payloads that are neither events nor session rows
    duplicates: int  # repeats of an event key inside the batch (first one kept)
    sessions: list[SessionInfo] = field(default_factory=list)  # feed_sessions rows, in arrival order

    def column_values(self, column: str) -> np.ndarray:
        """Every non-null value of an int64 ``column`` over the tables, as one numpy array."""
        chunks = [c for t in self.tables.values() for c in t.column(column).drop_null().chunks]
        if not chunks:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(pa.concat_arrays(chunks).to_numpy(zero_copy_only=False), dtype=np.int64)


def _decode_events(payloads: Sequence[bytes]) -> tuple[list[Event | None], int, list[SessionInfo]]:
    """Every payload decoded (None for one that is not an event), how many were rejected, and the
    session rows among them (two per feed run: they send their batch down this path).

    The whole batch is decoded as one JSON array; any problem, including a payload that is not
    exactly one JSON value, falls back to one by one so a single bad message costs only itself.
    """
    try:
        events: list[Event | None] = list(_batch_decoder.decode(b"[" + b",".join(payloads) + b"]"))
        if len(events) == len(payloads):
            return events, 0, []
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    out: list[Event | None] = []
    rejected = 0
    sessions: list[SessionInfo] = []
    for p in payloads:
        out.append(None)
        try:
            out[-1] = decode_event(p)
        except (msgspec.DecodeError, msgspec.ValidationError):
            try:
                sessions.append(decode_session(p))
            except (msgspec.DecodeError, msgspec.ValidationError):
                rejected += 1
    return out, rejected, sessions


def _publish_ns_one(h: bytes | None) -> int | None:
    """``Tickpath-Publish-Ns`` of one raw header block: the definition the vectorized path follows."""
    i = h.find(_PUB_HDR) if h is not None else -1
    if h is None or i < 0:
        return None
    skip = len(_PUB_HDR)
    j = h.find(b"\r\n", i + skip)
    try:
        v = int(h[i + skip : j])
    except ValueError:
        return None
    return v if 0 <= v <= _INT64_MAX else None


def publish_ns_array(headers: Sequence[bytes | None]) -> pa.Array:
    """``Tickpath-Publish-Ns`` of each raw NATS header block as int64 (null when absent or bad).

    Arrow kernels split each block at the first header and the line end after it; values that are
    1-19 ASCII digits convert in one cast. Anything else (a block without the line end, a sign,
    spaces, Unicode digits, bytes that are not UTF-8) is parsed by :func:`_publish_ns_one`, which is
    what the fast path must equal: about half the CPU of a Python loop over 10,000 headers.
    """
    raw = pa.array(headers, pa.binary())
    try:
        parts = pc.split_pattern(raw, _PUB_HDR, max_splits=1)
        found = pc.equal(pc.list_value_length(parts), 2)  # null header: null; no marker: false
        after = pc.list_element(pc.if_else(found, parts, pa.scalar([b"", b""], parts.type)), 1)
        line = pc.split_pattern(after, b"\r\n", max_splits=1)
        value = pc.cast(pc.list_element(line, 0), pa.string())
        plain = pc.and_(
            pc.and_(pc.equal(pc.list_value_length(line), 2), pc.ascii_is_decimal(value)),
            pc.less_equal(pc.utf8_length(value), 19),
        )
        digits = pc.cast(pc.if_else(plain, value, pa.scalar(None, pa.string())), pa.uint64())
    except pa.ArrowInvalid:  # e.g. a header value that is not UTF-8
        return pa.array([_publish_ns_one(h) for h in headers], pa.int64())
    fits = pc.less_equal(digits, pa.scalar(_INT64_MAX, pa.uint64()))
    out = pc.cast(pc.if_else(fits, digits, pa.scalar(None, pa.uint64())), pa.int64())
    # Rows with the header but a value that is not plain digits: the exact definition, one by one.
    odd = pc.and_kleene(found, pc.invert(plain)).fill_null(False)
    if pc.any(odd).as_py():
        fixed = out.to_pylist()
        for i in pc.indices_nonzero(odd).to_pylist():
            fixed[i] = _publish_ns_one(headers[i])
        out = pa.array(fixed, pa.int64())
    return out


def decode_batch(payloads: Sequence[bytes], headers: Sequence[bytes | None]) -> Decoded:
    """Decode a fetched batch into one Arrow table per storage table (``ingest_ns`` left null)."""
    with gc_paused():
        pub_all = publish_ns_array(headers)
        fast = _decode_grouped(payloads, pub_all)
        return fast if fast is not None else _decode_general(payloads, pub_all)


def _decode_grouped(payloads: Sequence[bytes], pub_all: pa.Array) -> Decoded | None:
    """The common batch (every payload a valid event, no key twice): one msgspec call per table.

    None when anything is unusual; the caller then takes the general path, which defines the result.
    """
    # Byte 10 of each payload picks its table; list comprehensions, not a Python loop per message.
    tags = [p[10] if len(p) > 10 else 0 for p in payloads]
    tag_array = pa.array(tags, pa.uint8())
    is_trade, is_ticker = pc.equal(tag_array, _TAG_TRADE), pc.equal(tag_array, _TAG_TICKER)
    groups = {
        "trades": ([p for p, t in zip(payloads, tags, strict=True) if t == _TAG_TRADE], is_trade),
        "tickers": ([p for p, t in zip(payloads, tags, strict=True) if t == _TAG_TICKER], is_ticker),
        "l2": (
            [p for p, t in zip(payloads, tags, strict=True) if t != _TAG_TRADE and t != _TAG_TICKER],
            pc.invert(pc.or_(is_trade, is_ticker)),
        ),
    }
    tables: dict[str, pa.Table] = {}
    for table, (group_payloads, mask) in groups.items():
        if not group_payloads:
            continue
        try:
            events = _TABLE_DECODERS[table].decode(b"[" + b",".join(group_payloads) + b"]")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        # A payload that is not exactly one JSON value, or an event with a foreign ``channel``.
        if len(events) != len(group_payloads) or set(map(_CHANNEL, events)) != {_TABLE_CHANNEL[table]}:
            return None
        arrow = events_to_arrow(table, events, publish_ns=pub_all.filter(mask))
        if arrow.num_rows > 1 and arrow.group_by(_TABLE_KEY).aggregate([]).num_rows != arrow.num_rows:
            return None  # a key repeated inside the batch
        tables[table] = arrow
    return Decoded(tables, 0, 0)


def _decode_general(payloads: Sequence[bytes], pub_all: pa.Array) -> Decoded:
    """Any batch: bad payloads rejected one by one, the first occurrence of each event key kept."""
    events, rejected, sessions = _decode_events(payloads)
    skipped = rejected + len(sessions)  # payloads that are not events
    keys = [None if e is None else _KEY(e) for e in events] if skipped else list(map(_KEY, events))
    kept = len(keys) - skipped
    unique = len(set(keys)) - (1 if skipped else 0) == kept  # the common case: no repeats at all
    by_table: dict[Channel, tuple[list[Any], list[int]]] = {}
    duplicates = 0
    seen: set[Any] = set()
    for i, ev in enumerate(events):
        if ev is None:
            continue
        if not unique:
            k = keys[i]
            if k in seen:
                duplicates += 1
                continue
            seen.add(k)
        group = by_table.get(ev.channel)
        if group is None:
            group = by_table[ev.channel] = ([], [])
        group[0].append(ev)
        group[1].append(i)
    tables = {
        CHANNEL_TABLE[channel]: events_to_arrow(
            CHANNEL_TABLE[channel], evs, publish_ns=pub_all.take(pa.array(idx, pa.int64()))
        )
        for channel, (evs, idx) in by_table.items()
    }
    return Decoded(tables, rejected, duplicates, sessions)


def stamp_ingest_ns(tables: dict[str, pa.Table], ingest_ns: int) -> dict[str, pa.Table]:
    """The same tables with ``ingest_ns`` set on every row."""
    out = {}
    for name, t in tables.items():
        col = t.schema.get_field_index("ingest_ns")
        out[name] = t.set_column(col, "ingest_ns", pa.repeat(pa.scalar(ingest_ns, pa.int64()), t.num_rows))
    return out
