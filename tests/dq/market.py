"""A deterministic synthetic market written into DuckDB through tickpath's own events and table
layout, with each defect the dq checks exist for available as a switch.

Model: per 100 ms slot a trade happens with probability 1/2 and a ticker change with 1/3; any slot
with either produces one depth delta at the slot's end, as Binance's @depth@100ms does. Receipt is
the event time plus ~20 ms (clocks in sync unless ``clock_offset_ms`` is set).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Any

import duckdb
import msgspec

from tickpath import tables
from tickpath.dq.duckdb_runner import DuckDBEngine
from tickpath.dq.run import DqConfig, DqReport, run_dq
from tickpath.events import BookDelta, BookReset, BookSnapshot, Event, Ticker, Trade

T0_MS = 1_700_000_000_000
SESSION = "s1"
SYMBOLS = (("futures", "BTCUSDT"), ("spot", "ETHBTC"))


@dataclass(frozen=True)
class Defects:
    gap_at_s: float | None = None  # drop one depth delta (no reset): an unnoticed hole
    reset_at_s: float | None = None  # the feed detected a gap: reset, then a fresh snapshot
    stall_at_s: float | None = None  # depth silent for stall_s while trades go on (ranges merged)
    stall_s: float = 5.0
    session_stall_at_s: float | None = None  # nothing at all for session_stall_s
    session_stall_s: float = 45.0
    clock_offset_ms: float = 0.0  # local clock minus exchange clock, not measured by the feed
    recorded_offset: bool = False  # the feed measured the offset and wrote it to feed_sessions
    crossed_at_s: float | None = None  # one ticker with bid above ask
    duplicate_trade_at_s: float | None = None  # one trade delivered twice
    depth_every_ms: int = 100  # >100: depth arrives slower than the subscribed @depth@100ms
    quiet_at_s: float | None = None  # a market doing nothing for quiet_s: no trades, no changes
    quiet_s: float = 20.0
    lost_trade_row_at_s: float | None = None  # one stored trade row lost (seq gap)
    top_n: int | None = None  # top-N mode: deltas outside the window are filtered (not a gap)
    dead_channel: str | None = None  # "trades" or "ticker": that stream sends nothing from dead_at_s on
    dead_at_s: float = 0.0
    frozen_at_s: float | None = None  # tickers keep coming but repeat the last values, for frozen_s
    frozen_s: float = 20.0
    symbols: tuple[tuple[str, str], ...] = field(default_factory=lambda: SYMBOLS)


def build_events(seconds: float = 70.0, defects: Defects | None = None, seed: int = 7) -> list[Event]:
    d = defects or Defects()
    rng = random.Random(seed)
    events: list[Event] = []
    for venue, symbol in d.symbols:
        events += _symbol_events(venue, symbol, seconds, d, rng)
    return events


def _at(d: Defects, t_s: float | None, now_ms: int, width_ms: int = 100) -> bool:
    return t_s is not None and T0_MS + t_s * 1000 <= now_ms < T0_MS + t_s * 1000 + width_ms


def _symbol_events(venue: str, symbol: str, seconds: float, d: Defects, rng: random.Random) -> list[Event]:
    seqs = {"trades": 0, "ticker": 0, "l2": 0}
    offset_ns = int(d.clock_offset_ms * 1e6)

    def nxt(ch: str) -> int:
        seqs[ch] += 1
        return seqs[ch]

    def receipt(e_ms: int) -> int:
        return e_ms * 1_000_000 + 20_000_000 + rng.randrange(0, 5_000_000) + offset_ns

    out: list[Event] = []
    last_u = 1_000
    out.append(
        BookSnapshot(
            session=SESSION,
            venue=venue,
            symbol=symbol,
            seq=nxt("l2"),  # type: ignore[arg-type]
            event_time_ms=T0_MS - 50,
            transaction_time_ms=None,
            receipt_ns=receipt(T0_MS - 50),
            last_update_id=last_u,
            bids=[("99.5", "1")],
            asks=[("100.5", "1")],
            depth=d.top_n,
        )
    )
    first = True
    pending_from: int | None = None  # first U of updates merged into the next emitted delta
    pending_pu = last_u
    trade_id = 500
    mid = 100.0
    last_top: tuple[str, str] | None = None  # the values a frozen ticker repeats
    frozen_top: tuple[str, str] | None = None
    slots = int(seconds * 10)
    for k in range(slots):
        slot_ms = T0_MS + k * 100
        if (
            d.session_stall_at_s is not None
            and 0 <= slot_ms - T0_MS - d.session_stall_at_s * 1000 < d.session_stall_s * 1000
        ):
            continue
        traded = rng.random() < 0.5
        ticked = rng.random() < 1 / 3
        if d.quiet_at_s is not None and 0 <= slot_ms - T0_MS - d.quiet_at_s * 1000 < d.quiet_s * 1000:
            traded = ticked = False
        dead = d.dead_channel is not None and slot_ms >= T0_MS + d.dead_at_s * 1000
        if traded:
            mid += rng.choice((-0.1, 0.1))
            e_ms = slot_ms + rng.randrange(0, 90)
            trade_id += 1
            r_ns = receipt(e_ms)
            tr = Trade(
                session=SESSION,
                venue=venue,
                symbol=symbol,
                seq=nxt("trades"),
                event_time_ms=e_ms,  # type: ignore[arg-type]
                transaction_time_ms=e_ms,
                receipt_ns=r_ns,
                trade_id=trade_id,
                price=f"{mid:.1f}",
                qty="0.5",
                side="buy",
            )
            if dead and d.dead_channel == "trades":
                pass  # never received: the stream is dead, its seq does not move
            elif not _at(d, d.lost_trade_row_at_s, slot_ms):
                out.append(tr)
            else:
                nxt("trades")  # the row is lost after seq was assigned
            if _at(d, d.duplicate_trade_at_s, slot_ms):
                out.append(
                    Trade(
                        session=SESSION,
                        venue=venue,
                        symbol=symbol,
                        seq=nxt("trades"),  # type: ignore[arg-type]
                        event_time_ms=e_ms,
                        transaction_time_ms=e_ms,
                        receipt_ns=r_ns + 1000,
                        trade_id=trade_id,
                        price=f"{mid:.1f}",
                        qty="0.5",
                        side="buy",
                    )
                )
        if pending_from is not None and d.depth_every_ms > 100 and (slot_ms - T0_MS) % d.depth_every_ms == 0:
            out.append(
                BookDelta(
                    session=SESSION,
                    venue=venue,
                    symbol=symbol,
                    seq=nxt("l2"),  # type: ignore[arg-type]
                    event_time_ms=slot_ms,
                    transaction_time_ms=slot_ms,
                    receipt_ns=receipt(slot_ms),
                    first_update_id=pending_from,
                    final_update_id=last_u,
                    prev_final_update_id=pending_pu if venue == "futures" else None,
                    bids=[(f"{mid - 0.5:.1f}", "1.5")],
                    asks=[],
                    depth=d.top_n,
                )
            )
            pending_from = None
        if traded or ticked:
            e_ms = slot_ms + rng.randrange(0, 90)
            bid, ask = f"{mid - 0.5:.1f}", f"{mid + 0.5:.1f}"
            if _at(d, d.crossed_at_s, slot_ms):
                bid, ask = f"{mid + 0.5:.1f}", f"{mid - 0.5:.1f}"
            frozen = d.frozen_at_s is not None and 0 <= slot_ms - T0_MS - d.frozen_at_s * 1000 < d.frozen_s * 1000
            if frozen and frozen_top is None:
                frozen_top = last_top
            elif not frozen:
                frozen_top, last_top = None, (bid, ask)
            tb, ta = frozen_top or (bid, ask)
            if not (dead and d.dead_channel == "ticker"):
                out.append(
                    Ticker(
                        session=SESSION,
                        venue=venue,
                        symbol=symbol,
                        seq=nxt("ticker"),  # type: ignore[arg-type]
                        event_time_ms=e_ms if venue == "futures" else None,
                        transaction_time_ms=None,
                        receipt_ns=receipt(e_ms),
                        update_id=last_u + 1,
                        bid_price=tb,
                        bid_qty="2",
                        ask_price=ta,
                        ask_qty="3",
                    )
                )
            # the book changed in this slot: upstream emits one delta at the slot's end
            n_upd = rng.randrange(1, 4)
            if first:
                U, u = last_u - 1, last_u + n_upd  # straddles the snapshot's lastUpdateId (+1)
                first = False
            else:
                U, u = last_u + 1, last_u + n_upd
            pu = last_u
            last_u = u
            e_ms = slot_ms + 100
            if pending_from is None:
                pending_from, pending_pu = U, pu
            stalled = (
                d.stall_at_s is not None
                and T0_MS + d.stall_at_s * 1000 <= slot_ms < T0_MS + (d.stall_at_s + d.stall_s) * 1000
            )
            slow = d.depth_every_ms > 100
            if stalled or slow:
                continue  # upstream merges these updates into its next message
            if d.top_n is not None and k % 3 == 1:
                continue  # changed nothing inside the top N: folded into the next delta's U/u range
            if _at(d, d.gap_at_s, slot_ms):
                pending_from = None
                continue
            if _at(d, d.reset_at_s, slot_ms):
                r_ns = receipt(e_ms)
                out.append(
                    BookReset(
                        session=SESSION,
                        venue=venue,
                        symbol=symbol,
                        seq=nxt("l2"),  # type: ignore[arg-type]
                        event_time_ms=None,
                        transaction_time_ms=None,
                        receipt_ns=r_ns,
                        reason="gap",
                        last_good_update_id=pending_pu,
                    )
                )
                out.append(
                    BookSnapshot(
                        session=SESSION,
                        venue=venue,
                        symbol=symbol,
                        seq=nxt("l2"),  # type: ignore[arg-type]
                        event_time_ms=e_ms,
                        transaction_time_ms=None,
                        receipt_ns=r_ns + 300_000_000,
                        last_update_id=u,
                        bids=[(bid, "1")],
                        asks=[(ask, "1")],
                        depth=d.top_n,
                    )
                )
                pending_from = None
                first = True
                continue
            out.append(
                BookDelta(
                    session=SESSION,
                    venue=venue,
                    symbol=symbol,
                    seq=nxt("l2"),  # type: ignore[arg-type]
                    event_time_ms=e_ms,
                    transaction_time_ms=e_ms,
                    receipt_ns=receipt(e_ms),
                    first_update_id=pending_from,
                    final_update_id=u,
                    prev_final_update_id=pending_pu if venue == "futures" else None,
                    bids=[(bid, "1.5")],
                    asks=[(ask, "0")],
                    depth=d.top_n,
                )
            )
            pending_from = None
    return out


def session_row(defects: Defects | None = None, seconds: float = 70.0) -> dict[str, Any]:
    d = defects or Defects()
    rows = []
    for venue in sorted({v for v, _ in d.symbols}):
        syms = [s for v, s in d.symbols if v == venue]
        streams = [f"{s.lower()}@{k}" for s in syms for k in ("depth@100ms", "aggTrade", "bookTicker")]
        rows.append(
            {
                "session": SESSION,
                "venue": venue,
                "started_ns": (T0_MS - 1000) * 1_000_000,
                "ended_ns": (T0_MS + int(seconds * 1000) + 1000) * 1_000_000 + int(d.clock_offset_ms * 1e6),
                "symbols": syms,
                "channels": ["trades", "ticker", "l2"],
                "streams": streams,
                "depth": d.top_n,
                "clock_offset_ns": -int(d.clock_offset_ms * 1e6) if d.recorded_offset else None,
                "clock_offset_bound_ns": 2_000_000 if d.recorded_offset else None,
            }
        )
    return {"rows": rows}


def write_store(con: duckdb.DuckDBPyConnection, events: list[Event], sessions: list[dict[str, Any]]) -> None:
    for t in tables.SCHEMAS:
        con.execute(tables.duckdb_ddl(t))
    by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in tables.EVENT_TABLES}
    for e in events:
        by_table[tables.table_for(e)].append(tables.event_row(e))
    for t, rows in by_table.items():
        if rows:
            arrow = tables.to_arrow(t, rows)  # noqa: F841 - read by DuckDB's replacement scan
            con.execute(f"INSERT INTO {t} SELECT * FROM arrow")
    if sessions:
        sarrow = tables.to_arrow("feed_sessions", sessions)  # noqa: F841
        con.execute("INSERT INTO feed_sessions SELECT * FROM sarrow")


def make_store(path: str, seconds: float = 70.0, defects: Defects | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    write_store(con, build_events(seconds, defects), session_row(defects, seconds)["rows"])
    return con


WINDOW = (T0_MS * 1_000_000 - 10_000_000_000, T0_MS * 1_000_000 + 200_000_000_000)


def shared_store(defects: Defects | None = None) -> duckdb.DuckDBPyConnection:
    """The 70 s store of ``defects`` in memory, shared by tests that only read it: dq's checks only
    read (their shared l2 pass is a temp table they drop). A test that changes its store builds its
    own with :func:`make_store`. The last few are kept (tests of one defect run close together):
    each holds ~10 MB, and a test process sees some twenty."""
    return _shared_store(defects or Defects())


@functools.lru_cache(maxsize=4)
def _shared_store(defects: Defects) -> duckdb.DuckDBPyConnection:
    return make_store(":memory:", defects=defects)


def shared_report(defects: Defects | None = None) -> DqReport:
    """Every check over :data:`WINDOW` with the default thresholds on :func:`shared_store`, judged
    once per test process (a report is only read)."""
    return _shared_report(defects or Defects())


@functools.cache
def _shared_report(defects: Defects) -> DqReport:
    return run_dq(DqConfig(since_ns=WINDOW[0], until_ns=WINDOW[1]), DuckDBEngine(connection=_shared_store(defects)))


KILLED_AT_S = 40.0


def killed_store(path: str, restarted: bool = False) -> None:
    """The feed died at 40 s (its rows stop, its session row never got ended_ns); ``restarted``: a
    new session of the same venues started 5 s later and closed properly."""
    events = build_events(70.0)
    cut = (T0_MS + int(KILLED_AT_S * 1000)) * 1_000_000
    dead = [e for e in events if e.receipt_ns < cut]
    rows = [{**r, "ended_ns": None} for r in session_row()["rows"]]
    later: list[Event] = []
    if restarted:
        later = [msgspec.structs.replace(e, session="s2") for e in events if e.receipt_ns >= cut + 5 * 10**9]
        rows += [{**r, "session": "s2", "started_ns": cut + 5 * 10**9 - 10**9} for r in session_row()["rows"]]
    con = duckdb.connect(path)
    write_store(con, dead + later, rows)
    con.close()
