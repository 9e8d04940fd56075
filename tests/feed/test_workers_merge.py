"""The supervisor's merged summary of ``feed --workers N``: sinks named as the user's ``--sink`` list
names them, whatever each worker turned them into."""

from __future__ import annotations

from pathlib import Path

from tickpath.feed.config import FeedConfig
from tickpath.feed.supervisor import Supervisor
from tickpath.feed.workers import sink_labels

SYMBOLS = tuple(f"S{i:02d}USDT" for i in range(20))


def _stats(accepted: int) -> dict[str, int]:
    return {"accepted": accepted, "written": accepted, "dropped": 0, "errors": 0}


def test_sink_labels_follow_the_one_process_names() -> None:
    assert sink_labels(("duckdb:a", "parquet:b")) == ["duckdb", "parquet"]
    assert sink_labels(("parquet:a", " PARQUET:b", "nats://h:4222")) == ["parquet#0", "parquet#1", "nats"]


def test_merged_summary_keeps_a_duckdb_target_apart_from_a_parquet_sink(tmp_path: Path) -> None:
    cfg = FeedConfig(venue="spot", symbols=SYMBOLS, sinks=(f"duckdb:{tmp_path}/t.duckdb", f"parquet:{tmp_path}/lake"))
    sup = Supervisor(cfg, 2)
    # each worker has two Parquet sinks (its duckdb: target is one): the pipeline names them #0, #1
    assert [w.config.sinks[0].split(":")[0] for w in sup.workers] == ["parquet", "parquet"]
    w0, w1 = sup.workers
    w0.finished = [{"session": "a", "emitted": 5, "sinks": {"parquet#0": _stats(5), "parquet#1": _stats(5)}}]
    w0.last = {"session": "b", "emitted": 7, "sinks": {"parquet#0": _stats(7), "parquet#1": _stats(6)}}
    w1.last = {"session": "c", "emitted": 11, "sinks": {"parquet#0": _stats(11), "parquet#1": _stats(11)}}
    merged = sup.summary()
    assert list(merged["sinks"]) == ["duckdb", "parquet"]
    assert merged["sinks"]["duckdb"]["accepted"] == 5 + 7 + 11
    assert merged["sinks"]["parquet"]["accepted"] == 5 + 6 + 11
    assert merged["emitted"] == 23 and merged["session"] == "a,b,c"


def test_a_workers_share_of_a_duckdb_target_is_named_duckdb_in_its_own_stats(tmp_path: Path) -> None:
    """A worker's Parquet share of a duckdb: target keeps the target's name (stats, logs, /metrics)."""
    from tickpath.feed.workers import worker_sinks
    from tickpath.sinks.registry import open_sink

    urls = worker_sinks((f"duckdb:{tmp_path}/t.duckdb", f"parquet:{tmp_path}/lake"), 0, 2)
    sinks = [open_sink(u) for u in urls]
    assert [s.name for s in sinks] == ["duckdb", "parquet"]
    assert type(sinks[0]).__name__ == "ParquetSink" and str(sinks[0].root).endswith("t.duckdb.parts")  # type: ignore[attr-defined]
