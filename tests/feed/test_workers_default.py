"""``--workers`` by default: the number of cores where the workers' store is the one a single process
writes (Parquet, Pub/Sub) and for a whole-exchange selection into duckdb:, 1 where it is not (an
explicit list into duckdb:, jsonl:, nats: spools, --record), said why."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import pytest

from tickpath.cli import feed as feed_cli
from tickpath.cli.main import main
from tickpath.feed.config import FeedConfig
from tickpath.feed.supervisor import worker_configs
from tickpath.feed.universe import parse_selection
from tickpath.feed.workers import default_workers, worker_sinks, write_views

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")


def _cfg(*sinks: str, **kw: object) -> FeedConfig:
    kw.setdefault("symbols", SYMBOLS)
    return FeedConfig(venue="spot", sinks=sinks, **kw)  # type: ignore[arg-type]


def test_default_is_the_core_count_only_where_splitting_is_safe(tmp_path: Path) -> None:
    assert default_workers(_cfg(f"parquet:{tmp_path}"), cores=4) == (4, "")
    assert default_workers(_cfg(f"parquet:{tmp_path}", "pubsub://p/t"), cores=2) == (2, "")
    for sinks in (("duckdb:x.duckdb",), (f"parquet:{tmp_path}", "jsonl:-"), ("nats://127.0.0.1:4222",)):
        n, why = default_workers(_cfg(*sinks), cores=4)
        assert n == 1 and why, sinks
    n, why = default_workers(_cfg(f"parquet:{tmp_path}", record_dir=tmp_path / "cap"), cores=4)
    assert n == 1 and "--record" in why


def test_a_whole_exchange_selection_splits_a_duckdb_target_unless_a_store_is_there(tmp_path: Path) -> None:
    """--symbols all (or a filter) into duckdb: is the capture that needs the cores: views over
    per-worker Parquet, but never over a single-process store already at PATH."""
    path = tmp_path / "t.duckdb"
    whole = {"symbols": (), "selection": parse_selection("all")}
    assert default_workers(_cfg(f"duckdb:{path}", **whole), cores=4) == (4, "")
    write_views(str(path))  # a workers' views file: still splittable
    assert default_workers(_cfg(f"duckdb:{path}", **whole), cores=4) == (4, "")
    single = tmp_path / "single.duckdb"
    con = duckdb.connect(str(single))
    con.execute("CREATE TABLE trades AS SELECT 1 AS x")
    con.close()
    n, why = default_workers(_cfg(f"duckdb:{single}", **whole), cores=4)
    assert n == 1 and "single-process store" in why and str(single) in why
    n, why = default_workers(_cfg(f"duckdb:{path}"), cores=4)  # an explicit list stays one file
    assert n == 1 and "explicit symbol list" in why


def test_nats_spool_and_record_dir_are_per_worker(tmp_path: Path) -> None:
    url = "nats://10.0.0.1:4222,10.0.0.2:4222?replicas=3&spool=/var/spool/tp/&stream=T"
    assert worker_sinks((url,), 1, 2) == (
        "nats://10.0.0.1:4222,10.0.0.2:4222?replicas=3&spool=/var/spool/tp/w1&stream=T",
    )
    assert worker_sinks(("nats://h:4222",), 1, 2) == ("nats://h:4222",)  # a private temporary spool each
    cfg = _cfg(f"parquet:{tmp_path}", record_dir=tmp_path / "cap")
    assert {c.record_dir for _, c in worker_configs(cfg, 2)} == {tmp_path / "cap" / "w0", tmp_path / "cap" / "w1"}


def test_cli_default_supervises_parquet_and_not_duckdb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[int] = []

    def fake_supervise(config: FeedConfig, workers: int, *, as_json: bool) -> int:
        seen.append(workers)
        return 0

    monkeypatch.setattr(feed_cli, "_supervise", fake_supervise)
    monkeypatch.setattr(feed_cli, "default_workers", lambda cfg: default_workers(cfg, cores=2))
    args = ["feed", "--venue", "spot", "--symbols", ",".join(SYMBOLS), "--no-status"]
    assert main([*args, "--sink", f"parquet:{tmp_path}"]) == 0
    assert seen == [2]
    ran: list[str] = []

    async def fake_run(self: object) -> None:
        ran.append("one process")

    monkeypatch.setattr(feed_cli.Feed, "run", fake_run)
    monkeypatch.setattr(feed_cli, "_report", lambda snap, as_json: None)
    monkeypatch.setattr(feed_cli, "_verdict", lambda snap: 0)
    assert main([*args, "--sink", f"duckdb:{tmp_path}/t.duckdb"]) == 0
    assert ran == ["one process"] and seen == [2]


@pytest.mark.parametrize("bad", ["0", "-2", "many", ""])
def test_bad_workers_are_one_line_errors(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["feed", "--venue", "spot", "--symbols", "BTCUSDT", "--workers", bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--workers" in err
    with pytest.raises(argparse.ArgumentTypeError):
        feed_cli._workers(bad)
