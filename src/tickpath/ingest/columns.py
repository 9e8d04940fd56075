"""Decoded bus messages to Arrow, column by column: the CPU-heavy middle of ``tickpath ingest``.

``ingest`` turns each fetched batch (thousands of ``(payload, raw headers)`` pairs) into one Arrow
table per storage table. Doing that per row in Python (a dict or a ``getattr`` per field, a header
``find`` per message, ``pa.Table.from_pylist``) cost more CPU than the JSON decoding and the DuckDB
insert together. Here:

- the payloads are sorted into groups by the first 16 bytes of their canonical encoding
  (``{"type":"<tag>``: one group per storage table, every channel, plus one for the feeds' session
  rows) and each group is validated and decoded by msgspec in one call with its own decoder (a
  tagged union costs about twice as much per message), with the cyclic garbage collector paused
  meanwhile (the level lists and tuples of 10,000 deltas would otherwise trigger dozens of
  collections);
- each table is built column-wise by :func:`tickpath.tables.events_to_arrow` (one attrgetter tuple
  per event, converted and transposed by Arrow in one pass), the builder the DuckDB sink uses too;
- ``publish_ns`` is cut out of the raw header blocks by Arrow string kernels (no header parsing);
  the rare value that is not plain digits is parsed by Python exactly as before;
- repeats of an event key inside the batch are found by one Arrow group-by per table.

Anything unusual costs only its own payload: one without a known tag prefix, or one its group's
decoder refuses, is decoded on its own as the general path (:func:`_decode_general`) would (an
event, a session row, or rejected), and a repeat drops only itself (first occurrence kept).
:attr:`Decoded.fallbacks` counts the payloads decoded one by one. The general path is the
definition: one union decode, then one message at a time for the bad ones. Both paths give the same
tables, counts and order; ``tests/ingest/test_columns.py`` and ``test_columns_fast.py`` (hypothesis,
every channel, damaged payloads) pin that.

The result is what :func:`tickpath.tables.event_row` defines for each event, with ``publish_ns``
from the headers and ``ingest_ns`` left null until the commit stamps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise, repeat
from operator import attrgetter, itemgetter
from typing import Any, Union

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickpath.events import (
    EVENT_TYPES,
    Channel,
    Event,
    SessionInfo,
    decode_event,
    decode_session,
)
from tickpath.ingest import native
from tickpath.nats.frames import PUBLISH_NS_HEADER  # set by the NATS sink
from tickpath.runtime import gc_paused
from tickpath.tables import CHANNEL_TABLE, SCHEMAS, events_to_arrow

__all__ = ["Decoded", "decode_batch", "publish_ns_array", "stamp_ingest_ns"]

_PUB_HDR = f"\r\n{PUBLISH_NS_HEADER}: ".encode()

_KEY = attrgetter("session", "venue", "channel", "symbol", "seq")
_INT64_MAX = 2**63 - 1

_batch_decoder: msgspec.json.Decoder[list[Event]] = msgspec.json.Decoder(list[Event])
# What a payload that is not a valid event can raise: msgspec raises UnicodeDecodeError (not a
# DecodeError) for a string that is not UTF-8, e.g. a payload cut inside a character.
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


def _channel_of(cls: type[Any]) -> Channel:
    """The channel every event of type ``cls`` carries (its ``channel`` field's default)."""
    return next(f.default for f in msgspec.structs.fields(cls) if f.name == "channel")  # type: ignore[no-any-return]


# The storage table (or ``session``) of each tag, and the types each table holds (l2: three).
_GROUP_TYPES: dict[str, list[type[Any]]] = {}
for _cls in EVENT_TYPES:
    _GROUP_TYPES.setdefault(CHANNEL_TABLE[_channel_of(_cls)], []).append(_cls)
_GROUP_TYPES["session"] = [SessionInfo]
_GROUPS: list[str] = list(_GROUP_TYPES)
# One decoder per group; a payload's group is told by the first 16 bytes of its canonical encoding,
# ``{"type":"<tag>``, which tell every tag apart (``ticker"`` from ``ticker2``). The decoder still
# validates the whole payload, tag included, so a prefix that lies costs only that payload a decode
# on its own (the general path's).
_TABLE_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {}
_ONE_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {}
_PREFIX_GROUP: dict[bytes, int] = {}
_PREFIX_LEN = 16
for _group, _types in _GROUP_TYPES.items():
    _type: Any = _types[0] if len(_types) == 1 else Union[tuple(_types)]  # noqa: UP007 - built at run time
    _TABLE_DECODERS[_group] = msgspec.json.Decoder(list[_type])  # type: ignore[valid-type]
    _ONE_DECODERS[_group] = msgspec.json.Decoder(_type)
    for _cls in _types:
        _PREFIX_GROUP[(b'{"type":"%s",' % str(_cls.__struct_config__.tag).encode())[:_PREFIX_LEN]] = _GROUPS.index(
            _group
        )
if len(_PREFIX_GROUP) != len(EVENT_TYPES) + 1:  # pragma: no cover - a new tag sharing those bytes
    raise AssertionError("two event tags share their first bytes; lengthen _PREFIX_LEN")
_PREFIX = itemgetter(slice(0, _PREFIX_LEN))
_TABLE_CHANNEL = {t: c for c, t in CHANNEL_TABLE.items()}
_TYPE_CHANNEL: dict[type[Any], Channel] = {cls: _channel_of(cls) for cls in EVENT_TYPES}
_CHANNEL = attrgetter("channel")
_FIRST = itemgetter(0)
_TABLE_KEY = ["session", "venue", "symbol", "seq"]  # the channel is implied by the table


@dataclass
class Decoded:
    """One batch as Arrow tables, with what the run summary counts."""

    tables: dict[str, pa.Table]
    rejected: int  # payloads that are neither events nor session rows
    duplicates: int  # repeats of an event key inside the batch (first one kept)
    sessions: list[SessionInfo] = field(default_factory=list)  # feed_sessions rows, in arrival order
    fallbacks: int = 0  # payloads the fast path decoded one by one (no known tag, or refused by its group)
    native: bool = False  # whether the native decoder made the tables

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
        if len(events) == len(payloads) and all(e.channel == _TYPE_CHANNEL[type(e)] for e in events):  # type: ignore[union-attr]
            return events, 0, []
    except _DECODE_ERRORS:
        pass
    out: list[Event | None] = []
    rejected = 0
    sessions: list[SessionInfo] = []
    for p in payloads:
        ev, session = _decode_one(p)
        out.append(ev)
        if session is not None:
            sessions.append(session)
        elif ev is None:
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
        fast = _decode_native(payloads, pub_all) if native.available() else None
        return fast if fast is not None else _decode_grouped(payloads, pub_all)


def _decode_native(payloads: Sequence[bytes], pub_all: pa.Array) -> Decoded | None:
    """The common batch, decoded by the native decoder (:mod:`tickpath.ingest.native`).

    None (the Python paths decide the whole batch) when it refused a table, found a payload
    without a known tag (a session row, a damaged message) or a key repeated inside a table.
    """
    got = native.decode(payloads)
    if got.refused or got.odd:
        return None
    tables: dict[str, pa.Table] = {}
    for name, (idx, cols) in got.tables.items():
        publish = pub_all.take(pa.array(idx))
        ingest = pa.nulls(len(idx), pa.int64())
        table = pa.Table.from_arrays([*cols, publish, ingest], schema=SCHEMAS[name])
        if table.num_rows > 1 and table.group_by(_TABLE_KEY).aggregate([]).num_rows != table.num_rows:
            return None
        tables[name] = table
    return Decoded(tables, 0, 0, native=True)


def _decode_grouped(payloads: Sequence[bytes], pub_all: pa.Array) -> Decoded:
    """Any batch, one msgspec call per group of payloads with the same tag (every channel and the
    session rows); only a payload its group's decoder refuses, or one without a known tag prefix,
    is decoded on its own, as the general path would (event, session row, or rejected)."""
    n = len(payloads)
    codes = np.fromiter(map(_PREFIX_GROUP.get, map(_PREFIX, payloads), repeat(-1)), np.int8, n)
    per_table: dict[str, tuple[list[Any], list[int]]] = {}
    sessions: list[tuple[int, SessionInfo]] = []
    odd: list[int] = np.flatnonzero(codes < 0).tolist()
    for code in np.unique(codes[codes >= 0]).tolist():
        idx = np.flatnonzero(codes == code).tolist()
        table = _GROUPS[code]
        decoded, refused = _decode_group(table, [payloads[i] for i in idx])
        if refused:
            odd += [idx[k] for k in refused]
            bad = set(refused)
            idx = [i for k, i in enumerate(idx) if k not in bad]
        if table == "session":
            sessions += zip(idx, decoded, strict=True)
        else:
            per_table[table] = (decoded, idx)
    rejected = 0
    for i in sorted(odd):  # one by one, exactly as the general path takes a bad payload
        ev, session = _decode_one(payloads[i])
        if ev is not None:
            group = per_table.setdefault(CHANNEL_TABLE[ev.channel], ([], []))
            group[0].append(ev)
            group[1].append(i)
        elif session is not None:
            sessions.append((i, session))
        else:
            rejected += 1
    tables: dict[str, pa.Table] = {}
    duplicates = 0
    for table, (events, idx) in per_table.items():
        if not events:
            continue  # its every payload refused
        if odd and any(a > b for a, b in pairwise(idx)):  # a late one from the odd: arrival order
            order = sorted(range(len(idx)), key=idx.__getitem__)
            events, idx = [events[k] for k in order], [idx[k] for k in order]
        built, unstorable = _table_of(table, events, idx, pub_all)
        rejected += unstorable
        duplicates += len(events) - unstorable - built.num_rows
        tables[table] = built
    sessions.sort(key=_FIRST)
    return Decoded(tables, rejected, duplicates, [s for _, s in sessions], fallbacks=len(odd))


def _decode_group(table: str, group: list[bytes]) -> tuple[list[Any], list[int]]:
    """A group's payloads decoded in one call, or one by one if that fails: (what decoded, the
    positions in ``group`` that did not)."""
    channel = {_TABLE_CHANNEL.get(table)}  # None for session rows, which have no channel
    try:
        out = _TABLE_DECODERS[table].decode(b"[" + b",".join(group) + b"]")
        # Else a payload was not exactly one JSON value, or an event's channel is foreign to its type.
        if len(out) == len(group) and (table == "session" or set(map(_CHANNEL, out)) == channel):
            return out, []
    except _DECODE_ERRORS:
        pass
    one = _ONE_DECODERS[table]
    decoded: list[Any] = []
    refused: list[int] = []
    for k, p in enumerate(group):
        try:
            got = one.decode(p)
        except _DECODE_ERRORS:
            refused.append(k)
            continue
        if table == "session" or got.channel in channel:
            decoded.append(got)
        else:
            refused.append(k)
    return decoded, refused


def _decode_one(payload: bytes) -> tuple[Event | None, SessionInfo | None]:
    """One payload as the general path reads it: an event, else a session row, else neither."""
    try:
        ev = decode_event(payload)
        # An event whose channel is not its type's (a trade saying l2) belongs in no table.
        return (ev, None) if ev.channel == _TYPE_CHANNEL[type(ev)] else (None, None)
    except _DECODE_ERRORS:
        try:
            return None, decode_session(payload)
        except _DECODE_ERRORS:
            return None, None


def _table_of(table: str, events: list[Any], idx: list[int], pub_all: pa.Array) -> tuple[pa.Table, int]:
    """One table's Arrow rows, the first occurrence of each event key kept (repeats are rare), and
    how many events could not be stored (see :func:`_to_arrow`)."""
    arrow, events, unstorable = _to_arrow(table, events, idx, pub_all)
    if arrow.num_rows < 2 or arrow.group_by(_TABLE_KEY).aggregate([]).num_rows == arrow.num_rows:
        return arrow, unstorable
    seen: set[Any] = set()
    keep: list[int] = []
    for k, key in enumerate(map(_KEY, events)):
        if key not in seen:
            seen.add(key)
            keep.append(k)
    return arrow.take(pa.array(keep, pa.int64())), unstorable


def _to_arrow(table: str, events: list[Any], idx: list[int], pub_all: pa.Array) -> tuple[pa.Table, list[Any], int]:
    """``events_to_arrow`` of a table's events, with the batch's ``publish_ns`` at ``idx``; an event
    no column can hold (an id beyond int64, a depth beyond int32: valid JSON, valid for msgspec) is
    dropped and counted rather than failing the batch, which would then be redelivered forever."""
    try:
        return events_to_arrow(table, events, publish_ns=pub_all.take(pa.array(idx, pa.int64()))), events, 0
    except (pa.ArrowInvalid, OverflowError):
        pass
    one = pa.array([None], pa.int64())
    fits = []
    for k, ev in enumerate(events):
        try:
            events_to_arrow(table, [ev], publish_ns=one)
            fits.append(k)
        except (pa.ArrowInvalid, OverflowError):
            pass
    kept, kept_idx = [events[k] for k in fits], [idx[k] for k in fits]
    arrow = events_to_arrow(table, kept, publish_ns=pub_all.take(pa.array(kept_idx, pa.int64())))
    return arrow, kept, len(events) - len(kept)


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
    tables: dict[str, pa.Table] = {}
    for channel, (evs, idx) in by_table.items():
        tables[CHANNEL_TABLE[channel]], _, unstorable = _to_arrow(CHANNEL_TABLE[channel], evs, idx, pub_all)
        rejected += unstorable
    return Decoded(tables, rejected, duplicates, sessions)


def stamp_ingest_ns(tables: dict[str, pa.Table], ingest_ns: int) -> dict[str, pa.Table]:
    """The same tables with ``ingest_ns`` set on every row."""
    out = {}
    for name, t in tables.items():
        col = t.schema.get_field_index("ingest_ns")
        out[name] = t.set_column(col, "ingest_ns", pa.repeat(pa.scalar(ingest_ns, pa.int64()), t.num_rows))
    return out
