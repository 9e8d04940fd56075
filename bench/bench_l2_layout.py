"""What bounds (b), the hot path into DuckDB: DuckDB's own insert of the same depth frames' ``l2``
rows in the stored layout and in alternatives, each as frames per CPU-second against
``orjson.loads`` alone on the same frames (issue 17's yardstick), measured in the same run.

The rows come from the native core (``take_tables``) fed the capture's depth stream, as bench_feed's
part (b) does; each layout is converted with Arrow before the clock starts, so only DuckDB's insert
and checkpoint are timed (one thread, a new file, one INSERT per batch of 5,000 frames, the native
core's batch; then 50,000 and all frames in one INSERT, where DuckDB writes row groups directly;
and the stored layout as the DuckDB sink writes it: its 30,720-row row groups, commits of 50,000
frames or of 122,880 (its batch_rows) with the rest at the end).

The hot path into DuckDB runs the core and the insert on one CPU, so its cost per frame is their sum:
(b) <= 1 / (1 / core + 1 / insert) in units of orjson. With the core at the 2.0x target, (b) >= 1.0
would need an insert alone of >= 2.0x orjson; this measures how far each layout is from that.

Layouts:
- ``stored``: ``bids``/``asks`` as ``LIST<STRUCT<price VARCHAR, qty VARCHAR>>`` (docs/schema.md);
- ``parallel_strings``: ``bid_prices``, ``bid_qtys``, ... as four ``LIST<VARCHAR>``;
- ``decimal``: the stored structs with ``DECIMAL(38,18)`` price and quantity (exact, no heap strings);
- ``double``: four ``LIST<DOUBLE>`` (inexact: shown only as a bound for any list layout);
- ``flat_levels``: one row per price level (frame key, side, price, qty as VARCHAR), no lists.
"""

from __future__ import annotations

import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from bench.bench_feed import MESSAGES_B, SYMBOLS, _stream, _yardstick
from bench.bench_feed_core import _native_warm
from tickpath.sinks.coalesce import ROW_GROUP_ROWS

BATCH_FRAMES = 5_000


def _l2_table(stream: list[str]) -> pa.Table:
    proc = _native_warm({s: None for s in SYMBOLS})
    for text in stream:
        proc.feed(text, 1)
    return proc.take_tables()["l2"]


def _side_lists(table: pa.Table, side: str, cast: pa.DataType | None) -> dict[str, pa.Array]:
    levels = table.column(side).combine_chunks()
    flat = levels.flatten()
    out = {}
    for field in ("price", "qty"):
        values = flat.field(field)
        if cast is not None:
            values = pc.cast(values, cast)
        out[f"{side[:-1]}_{field}s"] = pa.ListArray.from_arrays(levels.offsets, values)
    return out


def _with_lists(table: pa.Table, cast: pa.DataType | None) -> pa.Table:
    base = table.drop_columns(["bids", "asks"])
    for side in ("bids", "asks"):
        for name, arr in _side_lists(table, side, cast).items():
            base = base.append_column(name, arr)
    return base


def _decimal_structs(table: pa.Table) -> pa.Table:
    dec = pa.decimal128(38, 18)
    level = pa.struct([("price", dec), ("qty", dec)])
    out = table
    for side in ("bids", "asks"):
        levels = table.column(side).combine_chunks()
        flat = levels.flatten()
        structs = pa.StructArray.from_arrays(
            [pc.cast(flat.field("price"), dec), pc.cast(flat.field("qty"), dec)], fields=list(level)
        )
        arr = pa.ListArray.from_arrays(levels.offsets, structs)
        out = out.set_column(out.schema.get_field_index(side), side, arr)
    return out


def _flat_levels(table: pa.Table) -> pa.Table:
    parts = []
    for side in ("bids", "asks"):
        levels = table.column(side).combine_chunks()
        lengths = pc.list_value_length(levels).fill_null(0)
        idx = pc.list_parent_indices(levels)
        flat = levels.flatten()
        parts.append(
            pa.table(
                {
                    "symbol": pc.take(table.column("symbol"), idx),
                    "final_update_id": pc.take(table.column("final_update_id"), idx),
                    "receipt_ns": pc.take(table.column("receipt_ns"), idx),
                    "side": pa.array([side[:-1]] * len(flat)),
                    "price": flat.field("price"),
                    "qty": flat.field("qty"),
                }
            )
        )
        assert sum(lengths.to_pylist()) == len(flat)
    return pa.concat_tables(parts)


def _insert_cpu_s(
    table: pa.Table, path: Path, frames: int, batch_frames: int = BATCH_FRAMES, row_group: int | None = None
) -> float:
    """CPU seconds of DuckDB inserting ``table`` in slices of ``batch_frames`` frames' rows, then a
    checkpoint; ``row_group``: the file ATTACHed with that row group size (the sink's), else DuckDB's."""
    if row_group is None:
        con = duckdb.connect(str(path))
    else:
        con = duckdb.connect()
        con.execute(f"ATTACH '{path}' AS store (ROW_GROUP_SIZE {row_group})")
        con.execute("USE store")
    con.execute("SET threads = 1")
    step = max(1, len(table) * batch_frames // max(frames, 1))
    con.register("_first", table.slice(0, 0))
    con.execute("CREATE TABLE l2 AS SELECT * FROM _first")
    c0 = time.process_time()
    for start in range(0, len(table), step):
        con.register("_batch", table.slice(start, step))
        con.execute("INSERT INTO l2 SELECT * FROM _batch")
    con.execute("CHECKPOINT")
    cpu = time.process_time() - c0
    rows = con.execute("SELECT count(*) FROM l2").fetchone()
    con.close()
    assert rows is not None and rows[0] == len(table)
    return cpu


def main() -> dict[str, Any]:
    _, stream = _stream(MESSAGES_B, True)
    yard = _yardstick(stream)
    l2 = _l2_table(stream)
    layouts = {
        "stored": l2,
        "parallel_strings": _with_lists(l2, None),
        "decimal": _decimal_structs(l2),
        "double": _with_lists(l2, pa.float64()),
        "flat_levels": _flat_levels(l2),
    }
    out: dict[str, Any] = {"frames": len(stream), "l2_rows": len(l2), "orjson_msgs_per_cpu_s": round(yard)}
    with TemporaryDirectory(prefix="tickpath-l2-layout-") as tmp:
        for name, table in layouts.items():
            cpu = _insert_cpu_s(table, Path(tmp) / f"{name}.duckdb", len(stream))
            rate = len(stream) / cpu
            out[name] = {"rows": len(table), "msgs_per_cpu_s": round(rate), "ratio_to_orjson": round(rate / yard, 3)}
            print(f"{name:<18} {rate:>12,.0f} frames/CPU-s  {rate / yard:5.2f}x orjson ({len(table):,} rows)")
        runs: list[tuple[str, int, int | None]] = [
            (n, b, None) for n in ("stored", "decimal", "double") for b in (50_000, len(stream))
        ]
        # The sink's own pattern: its row groups, a table's whole row groups once it holds 4, the rest at close.
        runs += [("stored", b, ROW_GROUP_ROWS) for b in (50_000, 4 * ROW_GROUP_ROWS)]
        for name, batch, rg in runs:
            cpu = _insert_cpu_s(layouts[name], Path(tmp) / f"{name}-{batch}-{rg}.duckdb", len(stream), batch, rg)
            rate = len(stream) / cpu
            key = f"{name}_batch_{batch}" + (f"_rg_{rg}" if rg else "")
            out[key] = {"msgs_per_cpu_s": round(rate), "ratio_to_orjson": round(rate / yard, 3)}
            print(f"{key:<32} {rate:>12,.0f} frames/CPU-s  {rate / yard:5.2f}x orjson")
    exact = [v["ratio_to_orjson"] for k, v in out.items() if isinstance(v, dict) and not k.startswith("double")]
    best = max(exact)
    out["best_exact_ratio"] = best
    out["target"] = "(b) >= 1.0x needs an insert alone >= 2.0x orjson with the core at 2.0x"
    print(f"orjson.loads alone: {yard:,.0f} frames/CPU-s; best exact layout's insert alone: {best:.2f}x")
    return out


if __name__ == "__main__":
    main()
