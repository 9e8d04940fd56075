"""Running the checks: one window, one engine (DuckDB or BigQuery), one report.

Each check's SQL is composed for the engine's dialect (:mod:`tickpath.dq.sql`), run, and judged
(:mod:`tickpath.dq.checks`). The sessions overlapping the window are read first: they tell the
judges each stream's cadence and the feed's clock offset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tickpath.clock import Clock, SystemClock
from tickpath.dq.channels import channel_results
from tickpath.dq.checks import CHECKS, CheckResult, Context, Thresholds
from tickpath.dq.sql import (
    EXTENT,
    L2_PASS,
    L2_PASS_TABLE,
    SESSIONS,
    STREAM_EXTENT,
    Dialect,
    Window,
    body,
    compose,
    stream_keys_unique,
)
from tickpath.errors import ConfigError
from tickpath.logs import log_event

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_S = 3600.0


class Engine(Protocol):
    """Where the tables live: runs one query of its dialect and returns rows as dicts."""

    @property
    def name(self) -> str: ...
    @property
    def dialect(self) -> Dialect: ...
    @property
    def dataset(self) -> str | None: ...
    @property
    def writer_gone(self) -> bool:
        """True when no process can be writing the store now (DuckDB's lock proves it): a session
        without its close record is then over, and is judged up to its last row."""
        ...

    def query(self, sql: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class DqConfig:
    since_ns: int | None = None  # default: until minus one hour
    until_ns: int | None = None  # default: now
    checks: tuple[str, ...] = tuple(CHECKS)
    thresholds: Thresholds = field(default_factory=Thresholds)
    require_data: bool = True  # an empty window is an error, not a pass

    def window(self, clock: Clock) -> Window:
        until = self.until_ns if self.until_ns is not None else clock.wall_ns()
        since = self.since_ns if self.since_ns is not None else until - int(DEFAULT_LOOKBACK_S * 1e9)
        return Window(since, until)


@dataclass
class DqReport:
    engine: str
    window: Window
    results: list[CheckResult]
    rows_in_window: dict[str, int]
    elapsed_s: float
    sql: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "tickpath.dq/1",
            "ok": self.ok,
            "engine": self.engine,
            "window": {
                "since_ns": self.window.since_ns,
                "until_ns": self.window.until_ns,
                "text": self.window.describe(),
                "clock": "local receipt time (receipt_ns), UTC",
            },
            "rows_in_window": self.rows_in_window,
            "elapsed_s": round(self.elapsed_s, 3),
            "checks": [r.to_dict() for r in self.results],
        }


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ConfigError(f"unknown check {', '.join(unknown)}; checks are {', '.join(CHECKS)}")
    return tuple(names)


def render_sql(
    config: DqConfig, engine_dialect: Dialect, dataset: str | None, clock: Clock | None = None
) -> dict[str, str]:
    """The SQL each check runs on the given dialect (``--print-sql``), self-contained: when sequence and
    integrity run together on DuckDB they share one ordered l2 pass (:data:`L2_PASS`) instead."""
    window = config.window(clock or SystemClock())
    return {
        name: compose(body(CHECKS[name].template, window, dialect=engine_dialect), window, engine_dialect, dataset)
        for name in check_names(config.checks)
    }


# Checks that read the shared ordered l2 pass when they run together on DuckDB.
_L2_PASS_CHECKS = frozenset({"sequence", "integrity"})


def check_rows(
    engine: Engine, window: Window, names: Sequence[str], cadences: Sequence[int] | None, *, keyed: bool = False
) -> Generator[tuple[str, list[dict[str, Any]]], None, None]:
    """Each named check's raw rows, in order, as the check's query returns them (before judging).

    On DuckDB, when sequence and integrity both run, their l2 ordering is one shared pass stored in
    a temp table first (:data:`L2_PASS`), dropped when the iteration ends; ``keyed`` (DuckDB, once
    :func:`~tickpath.dq.sql.stream_keys_unique` holds) sorts and groups streams on their hashed key.
    The rows are the same either way."""
    l2_pass = engine.dialect == "duckdb" and set(names) >= _L2_PASS_CHECKS
    stored = False
    try:
        for name in names:
            shared = l2_pass and name in _L2_PASS_CHECKS
            if shared and not stored:
                engine.query(
                    f"CREATE OR REPLACE TEMP TABLE {L2_PASS_TABLE} AS "
                    + compose(body(L2_PASS, window, dialect="duckdb", keyed=keyed), window, "duckdb")
                )
                stored = True
            text = body(
                CHECKS[name].template,
                window,
                cadences,
                dialect=engine.dialect,
                l2_pass=shared,
                keyed=keyed,
                writer_gone=engine.writer_gone,
            )
            yield name, engine.query(compose(text, window, engine.dialect, engine.dataset))
    finally:
        if stored:
            engine.query(f"DROP TABLE IF EXISTS {L2_PASS_TABLE}")


def run_dq(
    config: DqConfig, engine: Engine, *, clock: Clock | None = None, progress: Callable[[str], None] | None = None
) -> DqReport:
    """Run the configured checks on ``engine`` over the window and judge them."""
    clock = clock or SystemClock()
    window = config.window(clock)
    names = check_names(config.checks)
    started = time.perf_counter()

    def q(template: str) -> list[dict[str, Any]]:
        return engine.query(
            compose(body(template, window, dialect=engine.dialect), window, engine.dialect, engine.dataset)
        )

    keyed = False
    if engine.dialect == "duckdb":
        streams = q(STREAM_EXTENT)
        extent: dict[str, int] = {}
        for r in streams:
            extent[r["channel"]] = extent.get(r["channel"], 0) + int(r["n"])
        keyed = stream_keys_unique(streams)
    else:
        extent = {r["channel"]: int(r["n"]) for r in q(EXTENT)}
    if config.require_data and not any(extent.values()):
        raise ConfigError(
            f"no trades, tickers or l2 rows received in {window.describe()} in {engine.name}; widen --since/--until"
        )
    ctx = Context.from_sessions(window, q(SESSIONS))
    cadences = sorted(set(ctx.depth_cadence_ms.values())) or None
    results = []
    if progress:
        progress(names[0])
    t0 = time.perf_counter()
    rows = check_rows(engine, window, names, cadences, keyed=keyed)
    try:
        for i, (name, found) in enumerate(rows):
            result = CHECKS[name].judge(found, ctx, config.thresholds)
            log_event(
                log, logging.INFO, "dq_check", check=name, ok=result.ok, seconds=round(time.perf_counter() - t0, 3)
            )
            results.append(result)
            if i + 1 < len(names):
                if progress:
                    progress(names[i + 1])
                t0 = time.perf_counter()
    finally:
        rows.close()  # drops the shared pass even when a judge raised
    # candles, mark price: only where the store has them
    results.extend(channel_results(engine.query, window, dialect=engine.dialect, dataset=engine.dataset))
    return DqReport(engine.name, window, results, extent, time.perf_counter() - started)
