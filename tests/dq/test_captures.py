"""dq on real Binance traffic: both shared captures, synced by tickpath's own BookSync, show zero gaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dq.market import write_store
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, run_dq
from tickpath.events import Event
from tickpath.venues.binance.capture import read_http_capture, read_ws_capture
from tickpath.venues.binance.normalize import Normalizer
from tickpath.venues.binance.parse import decode_frame, decode_snapshot


def capture_events(ws: Path, http: Path, venue: str) -> tuple[list[Event], dict[str, Any], tuple[int, int]]:
    """Replay a capture through the Normalizer, handing each snapshot over at its receipt time."""
    cap = read_ws_capture(ws)
    snaps = sorted(read_http_capture(http), key=lambda r: r.receipt)
    norm = Normalizer(venue, session="cap")  # type: ignore[arg-type]
    events: list[Event] = []
    for frame in cap.frames:
        while snaps and snaps[0].receipt <= frame.receipt:
            rec = snaps.pop(0)
            events += norm.on_snapshot(rec.params["symbol"], decode_snapshot(rec.body), int(rec.receipt * 1e9))
        events += norm.on_message(decode_frame(frame.text), int(frame.receipt * 1e9))
    for rec in snaps:
        events += norm.on_snapshot(rec.params["symbol"], decode_snapshot(rec.body), int(rec.receipt * 1e9))
    first, last = int(cap.opened_at * 1e9), int(cap.frames[-1].receipt * 1e9) + 1
    session = {
        "session": "cap",
        "venue": venue,
        "started_ns": first,
        "ended_ns": last,
        "symbols": sorted({e.symbol for e in events}),
        "channels": ["trades", "ticker", "l2"],
        "streams": cap.streams,
        "depth": None,
        "clock_offset_ns": None,
        "clock_offset_bound_ns": None,
    }
    return events, session, (first - 10**9, last + 10**9)


@pytest.mark.parametrize(("name", "venue"), [("usdm_futures", "futures"), ("spot", "spot")])
def test_shared_capture_has_zero_gaps(shared_captures: Path, name: str, venue: str) -> None:
    """Every symbol of the real capture is continuous by Binance's rules: no gap, reset or seq hole."""
    events, session, (since, until) = capture_events(
        shared_captures / f"{name}.ws.txt", shared_captures / f"{name}.http.txt", venue
    )
    con = duckdb.connect(":memory:")
    write_store(con, events, [session])
    deltas = con.execute("SELECT count(*), count(DISTINCT symbol) FROM l2 WHERE kind = 'delta'").fetchone()
    assert deltas is not None and deltas[0] > 50 and deltas[1] == 4
    report = run_dq(
        DqConfig(since_ns=since, until_ns=until, checks=("sequence", "integrity")), DuckDBEngine(connection=con)
    )
    seq, integrity = report.results
    assert seq.ok and seq.counts.get("gaps", 0) == 0 and seq.counts.get("resets", 0) == 0, seq.findings
    assert integrity.ok, integrity.findings
