"""``ingest``'s fast decode path equals the general one on any batch: every channel, session rows,
repeats and damaged payloads; only the payloads it cannot group fall back, one by one."""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings

from tests.ingest.strategies import one_of_each, payloads
from tests.ingest.support import make_events
from tickpath.events import Event, encode_event
from tickpath.ingest import columns
from tickpath.ingest.columns import Decoded, decode_batch

_HDR = b"NATS/1.0\r\nTickpath-Publish-Ns: %d\r\n\r\n"


def _general(ps: list[bytes]) -> Decoded:
    return columns._decode_general(ps, columns.publish_ns_array([_HDR % i for i in range(len(ps))]))


def _assert_same(got: Decoded, want: Decoded) -> None:
    assert (got.rejected, got.duplicates, got.sessions) == (want.rejected, want.duplicates, want.sessions)
    assert got.tables.keys() == want.tables.keys()
    for name, table in want.tables.items():
        assert got.tables[name].equals(table), name


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_fast_path_equals_the_general_path_on_any_batch(ps: list[bytes]) -> None:
    """Same tables, counts and session rows as the general path, whatever the batch holds."""
    got = decode_batch(ps, [_HDR % i for i in range(len(ps))])
    _assert_same(got, _general(ps))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(one_of_each())
def test_a_batch_of_every_channel_decodes_in_groups_with_no_fallback(evs: list[Event]) -> None:
    """One event of each of the eleven types, twice: all decoded in groups, none one by one."""
    evs = [msgspec.structs.replace(e, seq=k) for k, e in enumerate(evs, 1)]  # l2's three share a table
    ps = [encode_event(e) for e in evs] * 2
    got = decode_batch(ps, [_HDR % i for i in range(len(ps))])
    _assert_same(got, _general(ps))
    assert (got.fallbacks, got.rejected, got.duplicates) == (0, 0, len(evs))
    assert len(got.tables) == 9  # nine storage tables: l2 holds deltas, snapshots and resets
    assert sum(t.num_rows for t in got.tables.values()) == len(evs)


def test_a_wrong_or_unknown_tag_costs_only_its_own_payload() -> None:
    """The tag prefix picks a payload's group; a prefix that lies, an unknown tag or a tag that is not
    first is decoded alone (rejected, or kept where the general path keeps it) and counted; the
    rest of the batch stays grouped and equal to the general path."""
    trades = [e for e in make_events(30) if e.channel == "trades"]
    ticker = next(e for e in make_events(30) if e.channel == "ticker")
    good = [encode_event(e) for e in trades]
    lying = encode_event(ticker).replace(b'"type":"ticker"', b'"type":"trade"')  # a ticker tagged trade
    unknown = encode_event(trades[0]).replace(b'"type":"trade"', b'"type":"tradeX"')
    late_tag = b'{"session":"sess1",' + encode_event(ticker)[1:].replace(b',"session":"sess1"', b"")
    ps = [*good[:4], lying, *good[4:7], unknown, late_tag, *good[7:]]
    got = decode_batch(ps, [_HDR % i for i in range(len(ps))])
    _assert_same(got, _general(ps))
    assert (got.fallbacks, got.rejected) == (3, 2)  # the late tag is a valid ticker: kept
    assert got.tables["tickers"].column("seq").to_pylist() == [ticker.seq]
    assert got.tables["trades"].num_rows == len(good)
