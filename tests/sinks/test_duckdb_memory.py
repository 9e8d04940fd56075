"""The DuckDB sink bounds DuckDB's buffer pool (``duckdb:PATH?memory_limit=``, default 128 MB): a
writer otherwise keeps every block it wrote, so a long feed's RSS grew with its store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpath.errors import ConfigError
from tickpath.feed.workers import duckdb_targets, worker_sinks
from tickpath.sinks.duckdb import DEFAULT_MEMORY_LIMIT, DuckDBSink
from tickpath.sinks.registry import open_sink


def _limit(sink: DuckDBSink) -> str:
    assert sink._con is not None
    return str(sink._con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


async def test_the_buffer_pool_is_bounded_by_default_and_by_option(tmp_path: Path) -> None:
    default = open_sink(f"duckdb:{tmp_path}/a.duckdb")
    asked = open_sink(f"duckdb:{tmp_path}/b.duckdb?memory_limit=512MB")
    unbounded = open_sink(f"duckdb:{tmp_path}/c.duckdb?memory_limit=off")
    assert isinstance(default, DuckDBSink) and isinstance(asked, DuckDBSink) and isinstance(unbounded, DuckDBSink)
    assert (default.memory_limit, asked.memory_limit, unbounded.memory_limit) == (DEFAULT_MEMORY_LIMIT, "512MB", None)
    assert asked.path == tmp_path / "b.duckdb"  # the option is not part of the file name
    for s in (default, asked, unbounded):
        await s.start()
    try:
        # DuckDB reports sizes in its own units (122.0 MiB for 128MB, 488.2 MiB for 512MB)
        assert _limit(default).startswith("122") and _limit(asked).startswith("488")
        assert not _limit(unbounded).startswith(("122", "488"))  # DuckDB's own default
    finally:
        for s in (default, asked, unbounded):
            await s.close()


@pytest.mark.parametrize("bad", ["memory_limit=lots", "memory_limit=12", "threads=4"])
def test_bad_options_are_one_line_config_errors(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        open_sink(f"duckdb:{tmp_path}/t.duckdb?{bad}")
    assert "\n" not in str(exc.value) and "duckdb:" in str(exc.value)


def test_workers_take_the_file_without_the_writers_options(tmp_path: Path) -> None:
    url = f"duckdb:{tmp_path}/t.duckdb?memory_limit=1GB"
    assert duckdb_targets((url,)) == [f"{tmp_path}/t.duckdb"]
    assert worker_sinks((url,), 0, 2) == (f"parquet:{tmp_path}/t.duckdb.parts?label=duckdb",)
