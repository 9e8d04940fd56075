"""A results directory with one artifact of every kind, built with the real writers where they exist."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from tickpath.events import BookDelta, BookReset, BookSnapshot, Trade
from tickpath.stats import LatencyRecorder
from tickpath.tables import EVENT_TABLES, duckdb_ddl, event_row, table_for, to_arrow


def _rec(base_us: float, spread: float, n: int = 2000) -> LatencyRecorder:
    rec = LatencyRecorder()
    for i in range(n):
        rec.record(int((base_us + spread * (i % 97) / 97 + (spread * 20 if i % 500 == 0 else 0)) * 1000))
    return rec


def _probe_doc(name: str, base_us: float) -> dict[str, object]:
    methods = {}
    for m, mult in (("tcp", 1.0), ("ws", 2.0)):
        rec = _rec(base_us * mult, 30)
        methods[m] = {
            "summary": rec.summary().to_dict("us"),
            "histogram": rec.encode(),
            "per_ip": {"127.0.0.1:443": {"summary": rec.summary().to_dict("us"), "histogram": rec.encode()}},
        }
    methods["path"] = {
        "destination": "127.0.0.1",
        "traceroute": {
            "tool": "traceroute",
            "available": True,
            "hops": [{"hop": 1, "addresses": ["127.0.0.1"], "rtts_ms": [0.05, 0.04, 0.06], "lost": 0}],
        },
        "mtr": {"tool": "mtr", "available": False, "note": "mtr is not installed"},
    }
    return {
        "schema": "tickpath.probe/1",
        "candidate": name,
        "host": {"hostname": "agent-" + name},
        "target": {"venue": "futures", "ws_url": "ws://127.0.0.1:1"},
        "methods": methods,
        "clock": {"clocksource": "kvm-clock", "ptp_hardware_clock": False},
        "errors": [],
    }


def _bus_doc(size: int, rate: float) -> dict[str, object]:
    doc: dict[str, object] = {
        "schema": "tickpath.busbench/1",
        "pub": "nats://127.0.0.1:1",
        "sub": "nats://127.0.0.1:2",
        "clock": "CLOCK_MONOTONIC of one process",
        "size": size,
        "target_rate": rate,
        "achieved_rate": rate,
        "lost": 0,
    }
    for key, base in (("latency_from_intended", 150.0), ("latency_from_actual", 120.0)):
        rec = _rec(base, 40)
        doc[key] = {**rec.to_dict("us"), "p99.9": rec.percentile(99.9) / 1e3, "p100": rec.percentile(100) / 1e3}
    return doc


def _feed_db(path: Path) -> None:
    con = duckdb.connect(str(path))
    for t in (*EVENT_TABLES, "feed_sessions"):
        con.execute(duckdb_ddl(t))
    t0 = 1_700_000_000_000_000_000
    events: list[object] = []
    common = {"session": "s1", "venue": "futures", "symbol": "BTCUSDT", "transaction_time_ms": None}
    events.append(
        BookSnapshot(
            **common,
            seq=1,
            event_time_ms=t0 // 1_000_000,
            receipt_ns=t0 + 5_000_000,
            last_update_id=100,
            bids=[("100.0", "1")],
            asks=[("101.0", "2")],
        )
    )
    for i in range(1, 300):
        ts = t0 + i * 20_000_000
        recv = ts + 3_000_000 + i * 1000
        events.append(
            BookDelta(
                **common,
                seq=i + 1,
                event_time_ms=ts // 1_000_000,
                receipt_ns=recv,
                first_update_id=100 + i,
                final_update_id=100 + i,
                prev_final_update_id=99 + i,
                bids=[("100.0", str(i))],
                asks=[],
            )
        )
        events.append(
            Trade(
                **common,
                seq=i,
                event_time_ms=ts // 1_000_000,
                receipt_ns=ts + 4_000_000,
                trade_id=i,
                price="100.5",
                qty="0.1",
                side="buy",
            )
        )
    events.append(BookReset(**common, seq=301, event_time_ms=None, receipt_ns=t0 + 4_000_000_000, reason="gap"))
    rows: dict[str, list[dict[str, object]]] = {}
    for e in events:
        rows.setdefault(table_for(e), []).append(event_row(e))  # type: ignore[arg-type]
    for table, tr in rows.items():
        arrow = to_arrow(table, tr)  # noqa: F841 - read by name in the SQL
        con.execute(f"INSERT INTO {table} SELECT * FROM arrow")
    con.close()


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """sweep/ (CSV, summary, per-candidate probe JSON), probe/, feed/ (DuckDB), dq/, busbench/."""
    root = tmp_path / "results"
    sweep = root / "sweep"
    sweep.mkdir(parents=True)
    rows = [
        ("1", "frankfurt", "local", "reported", "no", "yes", "2100.0", ""),
        ("2", "virginia", "local", "destroyed", "no", "no", "5200.0", ""),
        ("", "tokyo", "local", "failed", "yes", "no", "", "no result within 60 s"),
    ]
    with (sweep / "latency_results.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "candidate", "az_id", "status", "failed", "kept", "score_us", "error"])
        w.writerows(rows)
    (sweep / "summary.json").write_text(
        json.dumps(
            {
                "schema": "tickpath.sweep/1",
                "winner": "frankfurt",
                "metric": "ws.p99",
                "why": "frankfurt has the lowest ws.p99 (2100 µs) of 2 candidates that reported",
            }
        )
    )
    (sweep / "candidates").mkdir()
    for name, base in (("frankfurt", 1000.0), ("virginia", 2500.0)):
        (sweep / "candidates" / f"{name}.json").write_text(
            json.dumps({"state": {"name": name, "status": "reported"}, "result": {"probe": _probe_doc(name, base)}})
        )
    (sweep / "candidates" / "tokyo.json").write_text(json.dumps({"state": {"name": "tokyo"}, "result": None}))
    (root / "probe").mkdir()
    (root / "probe" / "probe.json").write_text(json.dumps(_probe_doc("local", 50.0)))
    (root / "feed").mkdir()
    _feed_db(root / "feed" / "ticks.duckdb")
    (root / "feed" / "futures.summary.json").write_text(
        json.dumps(
            {
                "schema": "tickpath.feed/1",
                "session": "s1",
                "venue": "futures",
                "events": {"l2": 300, "trades": 299},
                "resyncs": 1,
                "gaps": 1,
                "reconnects": 0,
                "malformed": 2,
                "clock_offset": {"offset_us": 37012.5, "bound_us": 850.0},
                "sinks": {"duckdb": {"written": 600, "dropped": 0}},
            }
        )
    )
    (root / "dq").mkdir()
    (root / "dq" / "dq.json").write_text(
        json.dumps(
            {
                "schema": "tickpath.dq/1",
                "ok": False,
                "window": {"text": "last 5 minutes"},
                "checks": [
                    {
                        "name": "latency",
                        "title": "Latency",
                        "ok": True,
                        "summary": "p99 4.1 ms",
                        "metrics": {"p99_ms": 4.1},
                    },
                    {
                        "name": "sequence",
                        "title": "Sequence continuity",
                        "ok": False,
                        "summary": "1 gap",
                        "findings": [{"symbol": "BTCUSDT", "gap": 3}],
                    },
                ],
            }
        )
    )
    bus = root / "busbench"
    bus.mkdir()
    for size, rate in ((256, 1000.0), (256, 10000.0)):
        (bus / f"run-{size}-{int(rate)}.json").write_text(json.dumps(_bus_doc(size, rate)))
    return root
