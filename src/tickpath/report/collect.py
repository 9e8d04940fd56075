"""Finding and loading result artifacts in a directory tree.

Artifacts are recognised by content, not by name: JSON documents carry a ``schema`` field
(``tickpath.probe/1``, ``tickpath.sweep/1``, ``tickpath.dq/1``, ``tickpath.busbench/1``,
``tickpath.feed/1``); sweep tables are ``latency_results.csv``; feed data is any ``*.duckdb`` file with
tickpath's tables. A file that cannot be read becomes a :class:`Problem`, never an exception.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("sweep", "probe", "feed", "dq", "busbench")
MAX_JSON_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


@dataclass
class Artifact:
    kind: str
    path: Path
    data: Any


@dataclass
class Collection:
    root: Path
    artifacts: list[Artifact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def of(self, kind: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.kind == kind]


def _schema_kind(doc: Any) -> str | None:
    if isinstance(doc, dict):
        schema = doc.get("schema")
        if isinstance(schema, str) and schema.startswith("tickpath."):
            kind = schema[len("tickpath.") :].split("/", 1)[0]
            return kind if kind in KINDS else None
    return None


def _load_json(path: Path, out: Collection) -> None:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            out.problems.append(Problem(path, "larger than 64 MiB, skipped"))
            return
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(Problem(path, f"unreadable: {exc}"))
        return
    except json.JSONDecodeError as exc:
        out.problems.append(Problem(path, f"corrupt JSON at line {exc.lineno}: {exc.msg}"))
        return
    kind = _schema_kind(doc)
    if kind:
        out.artifacts.append(Artifact(kind, path, doc))


def _load_csv(path: Path, out: Collection) -> None:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        out.problems.append(Problem(path, f"unreadable CSV: {exc}"))
        return
    if not rows:
        out.problems.append(Problem(path, "empty CSV"))
        return
    out.artifacts.append(Artifact("sweep_csv", path, rows))


def _check_duckdb(path: Path, out: Collection) -> None:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        out.problems.append(Problem(path, f"not a readable DuckDB file: {exc}"))
        return
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    if tables & {"trades", "tickers", "l2"}:
        out.artifacts.append(Artifact("feed_db", path, sorted(tables)))


def collect(root: Path) -> Collection:
    """Walk ``root`` and load every recognisable artifact; problems are collected, not raised."""
    out = Collection(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.name
        if name.endswith(".json"):
            _load_json(path, out)
        elif name == "latency_results.csv":
            _load_csv(path, out)
        elif name.endswith(".duckdb"):
            _check_duckdb(path, out)
    return out
