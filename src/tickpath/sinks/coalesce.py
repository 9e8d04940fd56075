"""Arrow tables held per storage table until they are inserted together (the DuckDB sink's buffer).

DuckDB writes a transaction's rows of a table straight to the table's blocks, compressed once, when
they fill at least one row group or the table is empty; a smaller commit into a table that has rows
goes through the WAL and is compressed again at the next checkpoint. For ``l2`` rows the WAL path
costs ~1.5x the CPU of the direct one (measured: 20,000- and 100,000-row commits vs one of 200,000).
So the sink holds the tables it receives per storage table, :meth:`TableBuffer.take` cuts each table
at whole row groups, and the sink's file uses row groups of :data:`ROW_GROUP_ROWS` (DuckDB's default
is 122,880), so that a commit of a second's rows reaches the direct path from 30,720 rows of a
table. Held chunks are never copied: a cut concatenates and slices them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

# The sink's row group size (ATTACH ... ROW_GROUP_SIZE), also DuckDB's threshold for a direct write.
# Measured on l2 rows (one thread): 50,000-row commits cost 2.14 us/row with it vs 3.49 with 122,880
# (through the WAL), whole-store commits the same (2.1), the file ~5 % larger; 16,384 made some
# checkpoints far dearer (2x the file). A multiple of DuckDB's 2,048-row vector.
ROW_GROUP_ROWS = 30_720
DUCKDB_ROW_GROUP_ROWS = 122_880  # DuckDB's own default


@dataclass
class _Chunk:
    table: pa.Table
    accepted_ns: int  # monotonic time it was accepted (a remainder keeps its chunk's time)
    nbytes: int


@dataclass
class Take:
    """What one insert takes: per storage table the rows to insert, and where the cut falls."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rows: int = 0
    nbytes: int = 0
    cuts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (whole chunks, rows of the next)


class TableBuffer:
    """Arrow tables accepted and not yet inserted, in order per storage table."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[_Chunk]] = {}
        self.rows = 0
        self.nbytes = 0

    def add(self, tables: Mapping[str, pa.Table], now_ns: int) -> None:
        """Hold ``tables`` (one per storage table), accepted at monotonic ``now_ns``."""
        for name, table in tables.items():
            if table.num_rows:
                nbytes = table.nbytes
                self._chunks.setdefault(name, []).append(_Chunk(table, now_ns, nbytes))
                self.rows += table.num_rows
                self.nbytes += nbytes

    def table_rows(self, name: str) -> int:
        return sum(c.table.num_rows for c in self._chunks.get(name, ()))

    def largest_table_rows(self) -> int:
        return max((self.table_rows(n) for n in self._chunks), default=0)

    def oldest_ns(self) -> int | None:
        """When the oldest row still held was accepted (None when nothing is held)."""
        return min((c[0].accepted_ns for c in self._chunks.values() if c), default=None)

    def take(self, multiple: int | None = None) -> Take:
        """Everything held, or (``multiple``) each table's rows in whole multiples of ``multiple``
        (a table holding fewer waits). Nothing is removed until :meth:`drop`."""
        out = Take()
        for name, chunks in self._chunks.items():
            held = sum(c.table.num_rows for c in chunks)
            want = held if multiple is None else held // multiple * multiple
            if not want:
                continue
            parts: list[pa.Table] = []
            whole = rows = nbytes = 0
            for c in chunks:
                n = c.table.num_rows
                if rows + n > want:
                    break
                parts.append(c.table)
                whole, rows, nbytes = whole + 1, rows + n, nbytes + c.nbytes
            rest = want - rows
            if rest:
                nxt = chunks[whole]
                parts.append(nxt.table.slice(0, rest))
                nbytes += nxt.nbytes * rest // nxt.table.num_rows
            out.tables[name] = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            out.cuts[name] = (whole, rest)
            out.rows += want
            out.nbytes += nbytes
        return out

    def drop(self, taken: Take) -> None:
        """Release what ``taken`` took (after it was committed). Chunks added since stay held: they
        were appended after the cut."""
        for name, (whole, rest) in taken.cuts.items():
            chunks = self._chunks[name]
            del chunks[:whole]
            if rest:
                c = chunks[0]
                left = c.table.num_rows - rest
                chunks[0] = _Chunk(c.table.slice(rest), c.accepted_ns, c.nbytes * left // c.table.num_rows)
        self.rows -= taken.rows
        self.nbytes = sum(c.nbytes for cs in self._chunks.values() for c in cs)
