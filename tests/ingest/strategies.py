"""Hypothesis strategies for ``ingest``'s decoder: events of every type, session rows, and bus
payloads with realistic damage, drawn from the event structs' own field types (``msgspec.inspect``),
so a channel added to :mod:`tickpath.events` is covered without editing this file."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from tickpath.events import EVENT_TYPES, Event, SessionInfo, encode_event, encode_session

# Small pools so that event keys repeat (duplicates inside a batch) and strings reach the edge cases
# a decoder must get right: escapes, non-ASCII, empty.
_TEXT = st.sampled_from(["BTCUSDT", "ETHUSDT", "", "é€", 'q"uote', "back\\slash", "tab\t", "\u2028", "0.001"])
_INT = st.one_of(st.integers(0, 5), st.integers(-(2**63), 2**63 - 1))


def _value(t: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """Values of one field type as the events use them (str, int, bool, literals, levels, optionals)."""
    if isinstance(t, msgspec.inspect.UnionType):
        return st.one_of(*[_value(x) for x in t.types])
    if isinstance(t, msgspec.inspect.NoneType):
        return st.none()
    if isinstance(t, msgspec.inspect.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, msgspec.inspect.BoolType):
        return st.booleans()
    if isinstance(t, msgspec.inspect.IntType):
        return _INT
    if isinstance(t, msgspec.inspect.StrType):
        return _TEXT
    if isinstance(t, msgspec.inspect.ListType):
        return st.lists(_value(t.item_type), max_size=3)
    if isinstance(t, msgspec.inspect.TupleType):
        return st.tuples(*[_value(x) for x in t.item_types])
    raise AssertionError(f"no strategy for {t}")  # a new field type: teach this function


def _struct(cls: type[Any]) -> st.SearchStrategy[Any]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in info.fields:
        if f.name == "channel":
            continue  # the type's own channel, as the feed sends it
        if f.name == "session":
            fields[f.name] = st.sampled_from(["s1", "s2"])
        elif f.name == "seq":
            fields[f.name] = st.integers(1, 6)
        elif f.name == "depth":  # an int32 column (a feed's top-N window)
            fields[f.name] = st.none() | st.integers(1, 5000)
        else:
            fields[f.name] = _value(f.type)
    return st.builds(cls, **fields)


def events() -> st.SearchStrategy[Event]:
    """Any event of any channel."""
    return st.one_of(*[_struct(cls) for cls in EVENT_TYPES])


def one_of_each() -> st.SearchStrategy[list[Event]]:
    """One event of every type, in declaration order."""
    return st.tuples(*[_struct(cls) for cls in EVENT_TYPES]).map(list)


def sessions() -> st.SearchStrategy[SessionInfo]:
    return _struct(SessionInfo)


def _damaged(good: bytes, how: int) -> bytes:
    """A payload as a broken or foreign publisher could send it; ``how`` picks the damage."""
    if how == 0:
        return good[: len(good) // 2]  # truncated
    if how == 1:
        return b'{"type":"trade",' + good[16:]  # a tag prefix that lies about the rest
    if how == 2:
        return b'{"type":"bogus"' + good[15:]  # a tag no event has
    if how == 3:
        return good + b"," + good  # two values where one belongs
    if how == 4:
        return good.replace(b'"seq":', b'"seq":"', 1)  # a wrong type (and broken JSON)
    if how == 5:
        return b"\xff\xfe" + good  # not UTF-8
    return b'{"x":1,' + good[1:]  # the tag not first: the general path decides


def payloads() -> st.SearchStrategy[list[bytes]]:
    """A batch of payloads: events of every channel, repeats, session rows and damaged messages."""
    good = st.one_of(events().map(encode_event), sessions().map(encode_session))
    one = st.one_of(
        good,
        good,
        good,
        st.tuples(good, st.integers(0, 6)).map(lambda t: _damaged(*t)),
    )
    return st.lists(one, max_size=40).flatmap(_with_repeats)


def _with_repeats(ps: list[bytes]) -> st.SearchStrategy[list[bytes]]:
    """``ps`` and some of its own payloads again (a publish the bus stored twice), shuffled in."""
    if not ps:
        return st.just(ps)
    return st.lists(st.sampled_from(ps), max_size=5).flatmap(lambda extra: st.permutations(ps + extra))
