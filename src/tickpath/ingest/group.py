"""Several ``ingest`` processes as one group, and one de-duplicated store from their files.

Members of a group name the same stream and durable (``?durable=NAME``); JetStream hands each pull
request different messages, so adding a member (a machine) adds capacity with no code change. Each
member writes its own file (DuckDB takes one writer) and de-duplicates its own commits on the event
key. What a member cannot see is the other members' files: a batch committed by member A whose ack
was lost (A's NATS node died before the ack reached the stream's leader) is redelivered after
``ack_wait``, possibly to member B, and B commits it again. The group's output is therefore
:func:`merge_members`: the members' rows with one row per event key ``(session, venue, symbol,
seq)`` per table, the earliest ingest kept; that is the exactly-once store (``tickpath ingest --merge``),
which ``tickpath dq`` reads like any other. (nats-server 2.10's multi-filter consumers could
partition subjects per member instead; Debian's 2.9 has none.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tickpath.errors import ConfigError
from tickpath.tables import SCHEMAS

_KEY = "session, venue, symbol, seq"


@dataclass
class MergeResult:
    """Rows per table in the merged store, and how many members' rows were the same event again."""

    rows: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "duplicates": self.duplicates}


def _select(table: str, sources: list[str]) -> str:
    union = " UNION ALL ".join(f"SELECT * FROM {s}.{table}" for s in sources)
    if table == "feed_sessions":  # a row at start and one at stop: the stopped one wins
        order = "PARTITION BY session, venue ORDER BY ended_ns DESC NULLS LAST"
    else:
        order = f"PARTITION BY {_KEY} ORDER BY ingest_ns NULLS LAST"
    return f"SELECT * FROM ({union}) QUALIFY row_number() OVER ({order}) = 1"


def merge_members(out: str | Path, members: list[str | Path]) -> MergeResult:
    """Write ``out`` (a new DuckDB file) with every member's rows once per event key."""
    if not members:
        raise ConfigError("--merge needs at least one member file")
    missing = [str(m) for m in members if not Path(m).is_file()]
    if missing:
        raise ConfigError(f"no such ingest output: {', '.join(missing)}")
    if Path(out).exists():
        raise ConfigError(f"{out} exists: merge into a new file")
    res = MergeResult()
    con = duckdb.connect(str(out))
    try:
        names = []
        for i, m in enumerate(members):
            con.execute(f"ATTACH '{Path(m).resolve()}' AS m{i} (READ_ONLY)")
            names.append(f"m{i}")
        for table in SCHEMAS:
            have = [n for n in names if _has_table(con, n, table)]
            if not have:
                continue
            con.execute(f"CREATE TABLE {table} AS {_select(table, have)}")
            total = sum(_count(con, f"{n}.{table}") for n in have)
            res.rows[table] = _count(con, table)
            res.duplicates[table] = total - res.rows[table] if table != "feed_sessions" else 0
    finally:
        con.close()
    return res


def _has_table(con: duckdb.DuckDBPyConnection, db: str, table: str) -> bool:
    q = "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_name = ?"
    row = con.execute(q, [db, table]).fetchone()
    return bool(row and row[0])


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0
