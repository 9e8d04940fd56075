"""``tickpath feed --workers N``: N worker processes under one supervisor.

Symbols are placed by :mod:`tickpath.feed.sharding` (a stable hash), so worker ``k`` always gets the
same symbols. Each worker (:mod:`tickpath.feed.workers`) is a whole feed: connections, books, sink
writers. The supervisor starts them in their own process groups (a terminal's Ctrl-C reaches the
supervisor only, which sends each worker exactly one SIGTERM, so no worker's flush is interrupted by
a second signal), restarts a worker that dies with exponential backoff (its symbols resync from
fresh snapshots; the others never notice), merges their status lines into one summary, and serves
one ``/metrics`` with every worker's series labelled ``worker="k"`` (:mod:`tickpath.feed.metrics`).
What a dead worker had committed stays committed: its sinks flush per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import pickle
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError
from tickpath.feed.config import FeedConfig
from tickpath.feed.sharding import ShardSpec, plan_workers
from tickpath.feed.workers import duckdb_targets, sink_labels, worker_sinks, write_views
from tickpath.logs import log_event
from tickpath.venues.binance.channels import all_market_streams

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0  # a worker still flushing after this is killed


@dataclass
class WorkerState:
    """One worker slot: its symbols, its current process, and what its runs reported."""

    index: int
    config: FeedConfig
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    last: dict[str, Any] | None = None  # the current run's latest status or summary
    finished: list[dict[str, Any]] = field(default_factory=list)  # earlier runs' last summaries
    done: bool = False

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def summaries(self) -> list[dict[str, Any]]:
        return self.finished + ([self.last] if self.last is not None else [])


# A worker's status is one JSON line; a whole-exchange share (2,000 symbols, their streams) runs to
# hundreds of KB, past asyncio's default 64 KiB line limit, which ended the supervisor.
STATUS_LINE_LIMIT = 64 * 1024 * 1024


def worker_configs(config: FeedConfig, workers: int) -> list[tuple[int, FeedConfig]]:
    """``(k, config)`` of each worker that has work: its share of the symbols (same hash inside
    ``config.shard``), its sinks, no status line, /metrics on a free loopback port when the supervisor
    serves one. With an explicit symbol list a worker the hash gives no symbol is left out (the others
    keep their indices, so placement is unchanged); the first worker that has symbols subscribes the
    all-market streams. With ``--symbols all``/filters every worker runs (listings may come) and worker
    0 owns the all-market streams."""
    base = config.shard or ShardSpec()
    if config.selection is None:
        plan = plan_workers(config.symbols, base, workers)
        ks = [k for k in range(workers) if plan[k]]
    else:
        ks = list(range(workers))
    if not ks and base.index == 0 and all_market_streams(config.channels):
        ks = [0]  # machine shard 0 still owns the all-market streams: one worker runs for them
    if not ks:
        raise ConfigError(f"shard {base.label()} owns none of {','.join(config.symbols)}")
    out = []
    for k in ks:
        out.append(
            (
                k,
                dataclasses.replace(
                    config,
                    shard=base.with_worker(k, workers, all_market_worker=ks[0]),
                    sinks=worker_sinks(config.sinks, k, workers),
                    # capture files are named by connection, which every worker numbers from 0
                    record_dir=None if config.record_dir is None else config.record_dir / f"w{k}",
                    status=False,
                    metrics_port=0 if config.metrics_port is not None else None,
                    metrics_host="127.0.0.1",
                ),
            )
        )
    return out


class Supervisor:
    """Runs the workers until ``config.duration_s`` passes or it is cancelled (SIGINT/SIGTERM)."""

    def __init__(
        self,
        config: FeedConfig,
        workers: int,
        *,
        clock: Clock = DEFAULT_CLOCK,
        restart_base_s: float = 0.5,
        restart_max_s: float = 30.0,
        healthy_after_s: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"--workers {workers} must be at least 1")
        self.config = config
        self.clock = clock
        self.restart_base_s, self.restart_max_s, self.healthy_after_s = restart_base_s, restart_max_s, healthy_after_s
        self.requested = workers
        self.workers = [WorkerState(k, c) for k, c in worker_configs(config, workers)]
        self.started_ns = 0
        self._deadline: float | None = None
        self._stopping = False
        self.metrics_url: str | None = None

    def _now(self) -> float:
        return self.clock.monotonic_ns() / 1e9

    def remaining_s(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._now()

    async def run(self) -> dict[str, Any]:
        from tickpath.feed.metrics import WorkersMetricsServer

        self.started_ns = self.clock.wall_ns()
        if self.requested > 1:  # workers write Parquet (worker_sinks); one worker writes DuckDB itself
            for path in duckdb_targets(self.config.sinks):
                await asyncio.to_thread(write_views, path)  # before any worker: readable from the start
        if self.config.duration_s is not None:
            self._deadline = self._now() + self.config.duration_s
        server = None
        if self.config.metrics_port is not None:
            server = WorkersMetricsServer(self, self.config.metrics_host, self.config.metrics_port)
            await server.start()
            self.metrics_url = server.url
        tasks = [asyncio.create_task(self._keep(w), name=f"worker-{w.index}") for w in self.workers]
        try:
            await asyncio.gather(*tasks)
        finally:
            self._stopping = True
            await asyncio.shield(self._stop_all(tasks))
            if server is not None:
                await server.stop()
        return self.summary()

    async def _keep(self, w: WorkerState) -> None:
        """Run worker ``w``, restarting it after a crash until the run's end."""
        failures = 0
        while not self._stopping:
            remaining = self.remaining_s()
            if remaining is not None and remaining <= 0:
                break
            cfg = w.config if remaining is None else dataclasses.replace(w.config, duration_s=remaining)
            began = self._now()
            code = await self._run_once(w, cfg)
            w.exit_codes.append(code)
            if code in (0, ConfigError.exit_code) or self._stopping:
                break  # done, or bad input that a restart would only repeat
            if (remaining := self.remaining_s()) is not None and remaining <= 0:
                break  # ended with its duration (its exit code is a verdict, not a crash)
            failures = 0 if self._now() - began >= self.healthy_after_s else failures + 1
            delay = min(self.restart_max_s, self.restart_base_s * 2 ** max(failures - 1, 0))
            w.restarts += 1
            log_event(log, logging.WARNING, "worker_restart", worker=w.index, exit_code=code, delay_s=delay)
            await asyncio.sleep(delay)
        w.done = True

    async def _run_once(self, w: WorkerState, cfg: FeedConfig) -> int:
        if w.last is not None:
            w.finished.append(w.last)
            w.last = None
        w.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.feed.workers",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # signals come from the supervisor only
            limit=STATUS_LINE_LIMIT,
        )
        assert w.proc.stdin is not None and w.proc.stdout is not None
        w.proc.stdin.write(pickle.dumps(cfg))
        await w.proc.stdin.drain()
        w.proc.stdin.close()
        log_event(log, logging.INFO, "worker_started", worker=w.index, pid=w.proc.pid, symbols=len(cfg.symbols))
        async for line in w.proc.stdout:
            with contextlib.suppress(ValueError, KeyError):
                w.last = json.loads(line)["summary"]
        return await w.proc.wait()

    async def _stop_all(self, tasks: list[asyncio.Task[None]]) -> None:
        for w in self.workers:
            if w.up and w.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signal.SIGTERM)
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for w in self.workers:
            if w.up and w.proc is not None:
                log_event(log, logging.ERROR, "worker_killed", worker=w.index, after_s=STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
        if pending:
            await asyncio.wait(pending)

    def summary(self) -> dict[str, Any]:
        """Every worker run's summary merged (counts summed), plus per-worker restarts and exits."""
        labels = sink_labels(self.config.sinks)
        parts = [relabel_sinks(s, labels) for w in self.workers for s in w.summaries()]
        merged = merge_summaries(parts) if parts else {}
        merged["started_ns"] = self.started_ns
        for key in ("symbols", "streams"):  # a restarted worker reports its symbols again
            merged[key] = sorted(set(merged.get(key) or []))
        merged["metrics_port"] = None
        merged["workers"] = [
            {
                "worker": w.index,
                "symbols": list(w.config.symbols),
                "up": w.up,
                "restarts": w.restarts,
                "exit_codes": list(w.exit_codes),
                "sessions": [s.get("session") for s in w.summaries()],
            }
            for w in self.workers
        ]
        merged["restarts"] = sum(w.restarts for w in self.workers)
        return merged


def relabel_sinks(summary: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``summary`` with its sinks named as the user's ``--sink`` list names them (by position: a
    worker has one sink per URL, in order). Without it a ``duckdb:`` target (a Parquet sink in each
    worker) and a ``parquet:`` sink were both ``parquet#i``, and a ``duckdb`` key was missing."""
    sinks = summary.get("sinks")
    if not isinstance(sinks, dict) or len(sinks) != len(labels):
        return summary
    return {**summary, "sinks": dict(zip(labels, sinks.values(), strict=True))}


_FIRST = ("venue", "clock_offset", "last_error", "trim_interval_s")
# event-loop lag percentiles cannot be summed: the merged figure is the worst worker's
_MIN, _MAX = ("started_ns",), ("ended_ns", "p50_ms", "p99_ms", "max_ms")


def merge_summaries(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers summed, lists joined, dicts merged key by key; sessions listed; latency per run (a
    percentile cannot be summed)."""
    out: dict[str, Any] = {}
    keys = [k for p in parts for k in p]
    for key in dict.fromkeys(keys):
        values = [p[key] for p in parts if key in p and p[key] is not None]
        if key == "session":
            out["session"] = ",".join(str(v) for v in values)
        elif key == "latency":
            out["latency"] = {"per_run": values}
        elif key in _FIRST:
            out[key] = next((v for v in values if v), values[0] if values else None)
        elif key in _MIN:
            out[key] = min(values) if values else None
        elif key in _MAX:
            out[key] = max(values) if values else None
        else:
            out[key] = _merge_values(values)
    return out


def _merge_values(values: list[Any]) -> Any:
    if not values:
        return None
    if all(isinstance(v, bool) for v in values):
        return any(values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(isinstance(v, list) for v in values):
        return [x for v in values for x in v]
    if all(isinstance(v, dict) for v in values):
        return merge_summaries(values)
    return values[0]
