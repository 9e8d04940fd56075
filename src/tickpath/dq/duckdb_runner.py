"""Runs check queries on the embedded DuckDB store (the default), read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from tickpath.dq.sql import Dialect
from tickpath.errors import ConfigError
from tickpath.tables import SCHEMAS


class DuckDBEngine:
    """A read-only connection to a DuckDB file (or an existing connection, for tests and benches)."""

    dialect: Dialect = "duckdb"
    dataset: str | None = None

    def __init__(self, path: str | Path | None = None, *,
                 connection: duckdb.DuckDBPyConnection | None = None) -> None:
        if connection is not None:
            self._con = connection
            self.name = "duckdb (connection)"
        else:
            if path is None:
                raise ConfigError("DuckDB store needs a path (--db)")
            p = Path(path)
            if not p.exists():
                raise ConfigError(f"no DuckDB store at {p}; run `tickpath feed` first or pass --db PATH")
            try:
                self._con = duckdb.connect(str(p), read_only=True)
            except duckdb.Error as exc:
                raise ConfigError(f"cannot open DuckDB store {p}: {exc}") from exc
            self.name = f"duckdb {p}"
        self._check_tables()

    def _check_tables(self) -> None:
        have = {r[0] for r in self._con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()}
        missing = [t for t in SCHEMAS if t not in have]
        if missing:
            raise ConfigError(f"{self.name} has no table {', '.join(missing)}: not a tickpath store")

    def query(self, sql: str) -> list[dict[str, Any]]:
        try:
            cur = self._con.execute(sql)
            cols = [d[0] for d in cur.description or []]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            raise ConfigError(f"DuckDB query failed: {exc}") from exc

    def close(self) -> None:
        self._con.close()
