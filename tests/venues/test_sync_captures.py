"""Replaying the real Binance captures through BookSync: every symbol syncs with zero gaps, and the
books equal a deliberately simple, independent application of Binance's rules over plain dicts."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tickpath.events import BookDelta, BookReset, BookSnapshot, Event
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture, replay_order
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.parse import decode_frame, decode_snapshot

CAPTURES = [("futures", "usdm_futures"), ("spot", "spot")]
Book = dict[str, dict[Decimal, str]]


def reference_book(venue: str, events: list[dict[str, Any]], snapshot: dict[str, Any]) -> tuple[Book, int, int]:
    """Binance's documented procedure, step by step, on json dicts keyed by Decimal price.

    Returns the book, the number of sequence gaps, and the number of events applied.
    """
    last = snapshot["lastUpdateId"]
    book: Book = {
        side: {Decimal(p): q for p, q in snapshot[key] if Decimal(q) != 0}
        for side, key in (("b", "bids"), ("a", "asks"))
    }
    prev_u: int | None = None
    gaps = applied = 0
    for ev in events:
        if prev_u is None:
            if venue == "futures":
                if ev["u"] < last:
                    continue
                assert ev["U"] <= last <= ev["u"], "first futures event must straddle lastUpdateId"
            else:
                if ev["u"] <= last:
                    continue
                assert ev["U"] <= last + 1 <= ev["u"], "first spot event must straddle lastUpdateId+1"
        else:
            contiguous = ev["pu"] == prev_u if venue == "futures" else ev["U"] == prev_u + 1
            if not contiguous:
                gaps += 1
        for side in ("b", "a"):
            for p, q in ev[side]:
                if Decimal(q) == 0:
                    book[side].pop(Decimal(p), None)
                else:
                    book[side][Decimal(p)] = q
        prev_u = ev["u"]
        applied += 1
    return book, gaps, applied


def rebuild_from_events(events: list[Event]) -> Book:
    """What a downstream consumer of the l2 channel reconstructs: snapshot, then deltas, in seq order."""
    book: Book = {"b": {}, "a": {}}
    for e in events:
        if isinstance(e, BookReset):
            book = {"b": {}, "a": {}}
        elif isinstance(e, BookSnapshot):
            book = {"b": {Decimal(p): q for p, q in e.bids}, "a": {Decimal(p): q for p, q in e.asks}}
        elif isinstance(e, BookDelta):
            for side, levels in (("b", e.bids), ("a", e.asks)):
                for p, q in levels:
                    if Decimal(q) == 0:
                        book[side].pop(Decimal(p), None)
                    else:
                        book[side][Decimal(p)] = q
    return book


def replay(venue: str, name: str, root: Path) -> tuple[Normalizer, dict[str, list[Event]], dict[str, Any]]:
    """Frames in capture order; each snapshot handed over at its receipt time, as the feed would."""
    cap = read_ws_capture(root / f"{name}.ws.txt")
    records = read_http_capture(root / f"{name}.http.txt")
    norm = Normalizer(venue, session="test")  # type: ignore[arg-type]
    l2: dict[str, list[Event]] = {}

    def collect(events: list[Event]) -> None:
        for e in events:
            if e.channel == "l2":
                l2.setdefault(e.symbol, []).append(e)

    for item in replay_order(cap.frames, records):
        if isinstance(item, HttpRecord):
            collect(norm.on_snapshot(item.params["symbol"], decode_snapshot(item.body), int(item.receipt * 1e9)))
        else:
            collect(norm.on_message(decode_frame(item.text), int(item.receipt * 1e9)))
    snaps = {r.params["symbol"]: json.loads(r.body) for r in records}
    return norm, l2, snaps


@pytest.mark.parametrize(("venue", "name"), CAPTURES)
def test_capture_syncs_every_symbol_with_zero_gaps(venue: str, name: str, shared_captures: Path) -> None:
    """All four symbols of each capture sync once, with no gap, reset, duplicate or crossed book."""
    norm, l2, _ = replay(venue, name, shared_captures)
    assert len(norm.books) == 4
    for symbol, bs in norm.books.items():
        st = bs.stats
        assert bs.synced, symbol
        assert (st.snapshots, st.gaps, st.resyncs, st.crossed, st.invalid, st.refetches) == (1, 0, 0, 0, 0, 0)
        assert st.dropped_before_sync >= 1  # the captures show events before the sync point
        assert [e.seq for e in l2[symbol]] == list(range(1, len(l2[symbol]) + 1))
        assert not any(isinstance(e, BookReset) for e in l2[symbol])


@pytest.mark.parametrize(("venue", "name"), CAPTURES)
def test_capture_books_equal_reference_rules(venue: str, name: str, shared_captures: Path) -> None:
    """Each final book, and the book a consumer rebuilds from the l2 events, equals the reference."""
    norm, l2, snaps = replay(venue, name, shared_captures)
    cap = read_ws_capture(shared_captures / f"{name}.ws.txt")
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for frame in cap.frames:
        data = json.loads(frame.text)["data"]
        if data.get("e") == "depthUpdate":
            by_symbol.setdefault(data["s"], []).append(data)
    for symbol, events in by_symbol.items():
        ref, gaps, applied = reference_book(venue, events, snaps[symbol])
        assert gaps == 0 and applied == norm.books[symbol].stats.deltas
        bids, asks = norm.books[symbol].book.as_dicts()
        ours = {"b": {Decimal(p): q for p, q in bids.items()}, "a": {Decimal(p): q for p, q in asks.items()}}
        assert ours == ref, symbol
        assert rebuild_from_events(l2[symbol]) == ref, symbol
        assert len(ref["b"]) > 100 and len(ref["a"]) > 100
