"""The feed section: rates and receipt-minus-event latency over time, straight from the DuckDB store."""

from __future__ import annotations

from typing import Any

import duckdb

from tickpath.report import plots
from tickpath.report.collect import Artifact
from tickpath.report.html import Image, Section, esc, table

_TABLES = {"trades": "trades", "tickers": "ticker", "l2": "l2"}


def _series(con: duckdb.DuckDBPyConnection, tables: list[str], t0: int) -> tuple[list[Any], list[Any], list[Any]]:
    rates, lat, counts = [], [], []
    for tbl in tables:
        label = _TABLES[tbl]
        rows = con.execute(
            f"""SELECT (receipt_ns - ?) // 1000000000 AS s, count(*) AS n,
                       median(receipt_ns / 1e6 - event_time_ms) AS lat_ms,
                       quantile_cont(receipt_ns / 1e6 - event_time_ms, 0.99) AS p99_ms
                FROM {tbl} GROUP BY s ORDER BY s""",
            [t0],
        ).fetchall()
        if not rows:
            continue
        rates.append((label, [(float(s), float(n)) for s, n, _, _ in rows]))
        lat.append((f"{label} p50", [(float(s), float(m)) for s, _, m, _ in rows if m is not None]))
        lat.append((f"{label} p99", [(float(s), float(p)) for s, _, _, p in rows if p is not None]))
        total, symbols = con.execute(f"SELECT count(*), count(DISTINCT symbol) FROM {tbl}").fetchone() or (0, 0)
        counts.append([label, total, symbols])
    return rates, lat, counts


def feed_section(art: Artifact, slug: str, name: str) -> Section:
    s = Section(f"feed-{slug}", f"Feed: {name}")
    con = duckdb.connect(str(art.path), read_only=True)
    try:
        tables = [t for t in _TABLES if t in art.data]
        starts = [con.execute(f"SELECT min(receipt_ns) FROM {t}").fetchone() for t in tables]
        t0 = min((r[0] for r in starts if r and r[0] is not None), default=None)
        if t0 is None:
            s.add('<p class="note">The store holds no events.</p>')
            return s
        rates, lat, counts = _series(con, tables, t0)
        marks: list[tuple[float, str]] = []
        if "l2" in tables:
            for sec, reason in con.execute(
                "SELECT (receipt_ns - ?) / 1e9, reason FROM l2 WHERE kind = 'reset' ORDER BY receipt_ns", [t0]
            ).fetchall():
                marks.append((float(sec), "gap" if reason and "gap" in reason else "resync"))
        sessions = []
        if "feed_sessions" in art.data:
            sessions = con.execute(
                "SELECT session, venue, array_to_string(symbols, ','), clock_offset_ns, clock_offset_bound_ns "
                "FROM feed_sessions"
            ).fetchall()
    finally:
        con.close()
    s.add(
        f'<p class="kv">store <code>{esc(art.path)}</code> · latency = receipt time minus exchange event '
        f"time, raw (includes any clock offset between this machine and the exchange)</p>"
    )
    s.add(table(["channel", "events", "symbols"], counts))
    if sessions:
        s.add(
            "<h3>Sessions</h3>"
            + table(["session", "venue", "symbols", "clock offset (ns)", "offset bound (ns)"], sessions, left=3)
        )
    s.add(f'<p class="kv">resets/resyncs: {len(marks)}, of them gaps: {sum(1 for _, m in marks if m == "gap")}</p>')
    s.add_image(
        Image(
            f"{s.anchor}-rate.png",
            "events per second per channel",
            plots.time_series("Events per second", rates, ylabel="events/s", marks=marks),
        )
    )
    s.add_image(
        Image(
            f"{s.anchor}-latency.png",
            "receipt minus event latency over time",
            plots.time_series("Receipt − event time (per second)", lat, ylabel="ms", marks=marks),
        )
    )
    return s
