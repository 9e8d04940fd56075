"""``ingest``'s column-wise Arrow builder gives exactly the rows the storage layout defines per event.

The reference is :func:`tickpath.tables.event_row` + :func:`tickpath.tables.to_arrow`, the row-wise
definition every other writer uses; the fast builder must match it cell for cell on mixed batches.
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest

from tests.ingest.support import make_events
from tickpath import tables
from tickpath.events import (
    BookDelta,
    BookReset,
    BookSnapshot,
    Event,
    SessionInfo,
    Ticker,
    Trade,
    encode_event,
    encode_session,
)
from tickpath.ingest.columns import PUBLISH_NS_HEADER, decode_batch, publish_ns_array, stamp_ingest_ns

INT64_MAX = 2**63 - 1


def _hdr(value: bytes) -> bytes:
    return b"NATS/1.0\r\nNats-Msg-Id: k\r\n%s: %s\r\n\r\n" % (PUBLISH_NS_HEADER.encode(), value)


def _common(symbol: str, seq: int, i: int) -> dict[str, Any]:
    return dict(
        session="s1",
        venue="futures",
        symbol=symbol,
        seq=seq,
        event_time_ms=1_700_000_000_000 + i,
        transaction_time_ms=None if i % 3 else 1_700_000_000_000 + i,
        receipt_ns=1_700_000_000_000_000_000 + i,
    )


def _book_events() -> list[Event]:
    """Snapshots, deltas (with and without pu/depth) and resets of two symbols."""
    out: list[Event] = []
    for k, sym in enumerate(("BTCUSDT", "ETHUSDT")):
        seq = 1000 * (k + 1)
        out.append(
            BookSnapshot(
                **_common(sym, seq, k),
                last_update_id=500,
                depth=20 if k else None,
                bids=[("100.0", "1.5"), ("99.9", "2")],
                asks=[("100.1", "0.3")],
            )
        )
        for j in range(1, 4):
            out.append(
                BookDelta(
                    **_common(sym, seq + j, j),
                    first_update_id=500 + j,
                    final_update_id=501 + j,
                    prev_final_update_id=None if k else 500 + j,
                    depth=20 if k else None,
                    bids=[("100.0", "0")] if j % 2 else [],
                    asks=[("100.2", "4")],
                )
            )
        out.append(BookReset(**_common(sym, seq + 4, 4), reason="gap", last_good_update_id=None if k else 504))
    return out


def _mixed_batch(seed: int) -> tuple[list[bytes], list[bytes | None], list[Event | None], list[int | None]]:
    """Payloads and headers of a shuffled mixed batch; per message its event (None if rejected) and publish_ns."""
    rng = random.Random(seed)
    events: list[Event | None] = [*make_events(60, session="s1"), *_book_events()]
    events += [
        Trade(
            **_common("SOLUSDT", 7, 7), trade_id=9, first_trade_id=1, last_trade_id=9, price="1.5", qty="2", side="buy"
        ),
        Ticker(**_common("SOLUSDT", 8, 8), update_id=3, bid_price="1", bid_qty="2", ask_price="3", ask_qty="4"),
    ]
    events += [rng.choice([e for e in events if e is not None]) for _ in range(6)]  # duplicates
    events += [None] * 4  # rejected payloads
    rng.shuffle(events)
    bad = [b'{"type":"trade"}', b"not json", b"[1,2]", b'{"type":"nope","x":1}']
    payloads: list[bytes] = []
    headers: list[bytes | None] = []
    pubs: list[int | None] = []
    for i, e in enumerate(events):
        payloads.append(encode_event(e) if e is not None else bad.pop())
        case = i % 6
        if case == 0:
            headers.append(None)
            pubs.append(None)
        elif case == 1:
            headers.append(b"NATS/1.0\r\nNats-Msg-Id: k\r\n\r\n")  # no publish-ns header
            pubs.append(None)
        elif case == 2:
            headers.append(_hdr(b"12x"))  # not a number
            pubs.append(None)
        elif case == 3:
            headers.append(_hdr(b"%d" % (INT64_MAX + 1)))  # too big for int64
            pubs.append(None)
        else:
            v = 1_700_000_000_000_000_000 + i * 1000
            headers.append(_hdr(b"%d" % v))
            pubs.append(v)
    return payloads, headers, events, pubs


def _reference(events: list[Event | None], pubs: list[int | None], ingest_ns: int | None) -> dict[str, pa.Table]:
    """The row-wise tables: first occurrence of each event key, rejected payloads skipped."""
    rows: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[Any, ...]] = set()
    for e, pub in zip(events, pubs, strict=True):
        if e is None:
            continue
        key = (e.session, e.venue, e.channel, e.symbol, e.seq)
        if key in seen:
            continue
        seen.add(key)
        rows.setdefault(tables.table_for(e), []).append(tables.event_row(e, publish_ns=pub, ingest_ns=ingest_ns))
    return {t: tables.to_arrow(t, r) for t, r in rows.items()}


@pytest.mark.parametrize("seed", range(5))
def test_mixed_batch_tables_equal_the_row_wise_layout(seed: int) -> None:
    """Trades, tickers, snapshots, deltas, resets, repeats, bad payloads and headers: same tables as event_row."""
    payloads, headers, events, pubs = _mixed_batch(seed)
    got = decode_batch(payloads, headers)
    want = _reference(events, pubs, None)
    assert got.rejected == 4
    assert got.duplicates == sum(1 for e in events if e is not None) - sum(t.num_rows for t in want.values())
    assert got.duplicates > 0
    assert set(got.tables) == set(want) == {"trades", "tickers", "l2"}
    for name, table in want.items():
        assert got.tables[name].schema == tables.SCHEMAS[name]
        assert got.tables[name].to_pylist() == table.to_pylist(), name
        assert got.tables[name].equals(table), name
    stamped = stamp_ingest_ns(got.tables, 1_800_000_000_000_000_000)
    for name, table in _reference(events, pubs, 1_800_000_000_000_000_000).items():
        assert stamped[name].equals(table), name


def test_all_delta_l2_batch_equals_the_row_wise_layout() -> None:
    """The all-deltas fast path (no snapshots or resets) builds the same l2 table as event_row."""
    deltas = [e for e in _book_events() if isinstance(e, BookDelta)]
    pubs = [1_700_000_000_000_000_000 + i for i in range(len(deltas))]
    got = decode_batch([encode_event(e) for e in deltas], [_hdr(b"%d" % p) for p in pubs])
    assert got.tables["l2"].equals(_reference(list(deltas), list(pubs), None)["l2"])


def test_publish_ns_too_big_for_int64_is_null_and_the_batch_is_kept() -> None:
    """A publish-ns header beyond int64 (or negative) becomes null; the other rows keep their values."""
    trades = [e for e in make_events(9) if isinstance(e, Trade)]
    heads = [_hdr(b"%d" % (INT64_MAX + 1)), _hdr(b"%d" % INT64_MAX), _hdr(b"-5")]
    got = decode_batch([encode_event(e) for e in trades], heads)
    assert got.tables["trades"].column("publish_ns").to_pylist() == [None, INT64_MAX, None]
    assert got.tables["trades"].num_rows == 3
    assert publish_ns_array([_hdr(b"99" * 20), None, _hdr(b"42")]).to_pylist() == [None, None, 42]


def test_batch_of_only_rejected_payloads_gives_no_tables() -> None:
    """Nothing decodable: no tables, every payload counted as rejected."""
    got = decode_batch([b"{", b"null"], [None, None])
    assert (got.tables, got.rejected, got.duplicates) == ({}, 2, 0)


@pytest.mark.parametrize("seed", range(3))
def test_session_rows_in_a_batch_are_returned_apart_and_the_events_unchanged(seed: int) -> None:
    """Session rows among the events (and beside a rejected payload) come back as sessions, in order;
    the tables and counts are those of the batch without them."""
    payloads, heads, _, _ = _mixed_batch(seed)
    start = SessionInfo(session="s1", venue="spot", started_ns=5, streams=["ethbtc@trade"], clock_offset_ns=7)
    end = SessionInfo(session="s1", venue="spot", started_ns=5, ended_ns=9, streams=["ethbtc@trade"])
    plain = decode_batch(payloads, heads)
    mixed = decode_batch(
        [encode_session(start), *payloads[:3], b"{", encode_session(end), *payloads[3:]],
        [None, *heads[:3], None, None, *heads[3:]],
    )
    assert mixed.sessions == [start, end]
    assert (mixed.rejected, mixed.duplicates) == (plain.rejected + 1, plain.duplicates)
    assert mixed.tables.keys() == plain.tables.keys()
    assert all(mixed.tables[t].equals(plain.tables[t]) for t in plain.tables)
    assert end.row()["ended_ns"] == 9 and start.key() != end.key()
