"""BookSync against the simulator's exact ground truth, under faults applied to the event stream.

The simulator's market model (:mod:`tickpath.sim.market`) is driven directly, without a network: its
changes are batched into depth events in Binance's wire format, faults (gaps, duplicates,
reorders, malformed frames, stale snapshots) are applied to that stream, and after every event the
book BookSync holds is compared with the market's book at that update id.
"""

from __future__ import annotations

import json
import random

import pytest

from tickpath.events import BookReset, BookSnapshot, Event
from tickpath.venues.binance.parse import ParseError, decode_frame, decode_snapshot
from tickpath.venues.binance.sync import BookSync

market = pytest.importorskip("tickpath.sim.market", reason="simulator market model not in the tree")


def _depth(venue: str, i: int, first: int, last: int, prev: int, b: list[list[str]], a: list[list[str]]) -> bytes:
    data: dict[str, object] = {"e": "depthUpdate", "E": 1000 + i, "s": "BTCUSDT", "U": first, "u": last, "b": b, "a": a}
    if venue == "futures":
        data.update(T=999 + i, pu=prev)
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()


def _events(venue: str, m: object, rng: random.Random, count: int) -> list[bytes]:
    """``count`` depth frames, each batching 1..6 update ids."""
    frames: list[bytes] = []
    prev = m.last_uid  # type: ignore[attr-defined]
    for i in range(count):
        first = m.last_uid + 1  # type: ignore[attr-defined]
        per_side: list[dict[str, str]] = [{}, {}]
        for _ in range(rng.randint(1, 6)):
            _, (side, tick, lots), _ = m.step()  # type: ignore[attr-defined]
            per_side[side][m.price(tick)] = m.qty(lots)  # type: ignore[attr-defined]
        last = m.last_uid  # type: ignore[attr-defined]
        frames.append(
            _depth(
                venue,
                i,
                first,
                last,
                prev,
                [[p, q] for p, q in per_side[0].items()],
                [[p, q] for p, q in per_side[1].items()],
            )
        )
        prev = last
    return frames


def _truth(m: object, uid: int) -> tuple[dict[str, str], dict[str, str]]:
    bids, asks = m.book_at(uid)  # type: ignore[attr-defined]
    return (
        {m.price(t): m.qty(v) for t, v in bids.items()},  # type: ignore[attr-defined]
        {m.price(t): m.qty(v) for t, v in asks.items()},
    )  # type: ignore[attr-defined]


def _fault(frames: list[bytes], rng: random.Random) -> tuple[list[bytes], dict[str, int]]:
    """Drop, duplicate, swap and corrupt frames at random: the faults the simulator can inject."""
    out: list[bytes] = []
    injected = {"gap": 0, "duplicate": 0, "reorder": 0, "malformed": 0}
    i = 0
    while i < len(frames):
        x = rng.random()
        if x < 0.01:
            injected["gap"] += 1  # dropped
        elif x < 0.02:
            injected["duplicate"] += 1
            out += [frames[i], frames[i]]
        elif x < 0.03 and i + 1 < len(frames):
            injected["reorder"] += 1
            out += [frames[i + 1], frames[i]]
            i += 1
        elif x < 0.04:
            injected["malformed"] += 1
            out += [frames[i][: len(frames[i]) // 2], frames[i]]  # a truncated copy, then the real one
        else:
            out.append(frames[i])
        i += 1
    return out, injected


@pytest.mark.parametrize("venue", ["spot", "futures"])
def test_book_equals_ground_truth_after_every_event_under_faults(venue: str) -> None:
    """Under gaps, duplicates, reorders and malformed frames the book, whenever synced, equals the
    market's exact book at the last applied update id, and every break produced a reset and a resync."""
    rng = random.Random(7)
    m = market.SymbolMarket(venue, market.spec_for(venue, "BTCUSDT"), seed=3, levels=300)
    bs = BookSync(venue, "BTCUSDT", session="t")  # type: ignore[arg-type]
    frames, injected = _fault(_events(venue, m, rng, 800), rng)
    assert all(injected.values()), injected
    emitted: list[Event] = []
    checked = bad = 0
    snapshot_lag = 0
    for raw in frames:
        try:
            msg = decode_frame(raw)
        except ParseError:
            bad += 1
            continue
        emitted += bs.on_depth(msg, 0)  # type: ignore[arg-type]
        if bs.needs_snapshot and bs.buffered:
            # Sometimes hand over a stale snapshot first: it must be refused, not applied.
            snapshot_lag = (snapshot_lag + 1) % 3
            first = bs.first_buffered_update_id()
            assert first is not None
            if snapshot_lag == 0 and first - 5 >= m.first_available_uid:
                assert bs.on_snapshot(decode_snapshot(_snapshot_body(venue, m, first - 5)), 0) == []
            emitted += bs.on_snapshot(decode_snapshot(_snapshot_body(venue, m, msg.u)), 0)  # type: ignore[union-attr]
        if bs.synced:
            assert bs.last_update_id is not None
            assert bs.book.as_dicts() == _truth(m, bs.last_update_id)
            checked += 1
    resets = [e for e in emitted if isinstance(e, BookReset)]
    snaps = [e for e in emitted if isinstance(e, BookSnapshot)]
    assert bad == injected["malformed"]
    assert bs.stats.gaps >= 1 and bs.stats.duplicates >= 1 and bs.stats.refetches >= 1
    assert len(snaps) == len(resets) + 1  # every reset was followed by exactly one resync
    assert [e.seq for e in emitted] == list(range(1, len(emitted) + 1))
    assert checked > 500


def _snapshot_body(venue: str, m: object, uid: int) -> bytes:
    snap = m.snapshot(uid=uid)  # type: ignore[attr-defined]
    body: dict[str, object] = {"lastUpdateId": snap.last_update_id, "bids": snap.bids, "asks": snap.asks}
    if venue == "futures":
        body.update(E=1, T=1)
    return json.dumps(body).encode()
