"""The sweep itself: apply every candidate at once, collect results, destroy losers early, keep winners.

Lifecycle of a candidate::

    pending -> applying -> running -> reported -> (destroying -> destroyed) | kept
                   \\-> failed (apply error, probe error, or no result before the timeout) -> destroyed

A reported candidate is destroyed as soon as ``keep`` others are strictly ahead of it (it can never
be a winner, see :func:`~tickpath.sweep.ranking.doomed`); a failed one at once. Whatever ends the
run, a result, an error, Ctrl-C or SIGTERM, the ``finally`` path destroys everything not kept, and
shields that teardown from further cancellation so a second Ctrl-C cannot strand an instance.

With ``instances_per_candidate > 1`` a candidate reports once every instance has (or the timeout
fails the silent ones): it is ranked on the merged histograms of its usable instances, each
instance keeps its own score (the spread is placement luck), and a winner keeps only its best
instance; the others are destroyed (:mod:`tickpath.sweep.instances`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import InfraError, TickpathError
from tickpath.logs import log_event
from tickpath.sweep.config import SweepConfig
from tickpath.sweep.instances import (
    InstanceState,
    best_instance,
    describe_spread,
    merge_instances,
    spread,
    spread_keys,
)
from tickpath.sweep.plan import Candidate
from tickpath.sweep.provision import Provisioner
from tickpath.sweep.ranking import doomed, extract_figures, rank
from tickpath.sweep.store import result_name

log = logging.getLogger("tickpath.sweep")

FINAL = ("destroyed", "kept", "destroy_failed")
MAX_STORE_ERRORS = 5  # consecutive failed polls of the result store before the sweep gives up
ProgressFn = Callable[[str, "CandidateState"], None]


@dataclass
class CandidateState:
    """Everything known about one candidate; timestamps are this machine's monotonic clock (ns)."""

    candidate: Candidate
    status: str = "pending"
    error: str | None = None
    failed: bool = False
    figures: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    explain: str = ""
    result: dict[str, Any] | None = None
    applied_ns: int | None = None
    result_ns: int | None = None
    destroy_started_ns: int | None = None
    destroyed_ns: int | None = None
    reported_unix: float | None = None  # the agent's own wall-clock stamp of finishing
    instances: list[InstanceState] = field(default_factory=list)
    best_instance: int | None = None
    spread: dict[str, float] = field(default_factory=dict)  # max - min across instances (µs)
    spread_keys: list[str] = field(default_factory=list)
    merged_histograms: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    trimmed: list[int] | None = None  # instances of a kept candidate destroyed (all but the best)

    def __post_init__(self) -> None:
        if not self.instances:
            self.instances = [InstanceState(0)]

    @property
    def name(self) -> str:
        return self.candidate.name

    def to_dict(self) -> dict[str, Any]:
        def s(ns: int | None) -> float | None:
            return None if ns is None else round(ns / 1e9, 3)

        many: dict[str, Any] = {}
        if len(self.instances) > 1:
            many = {
                "instances": [i.to_dict(self.spread_keys) for i in self.instances],
                "best_instance": self.best_instance,
                "spread_us": self.spread,
                "destroyed_instances": self.trimmed,
                "notes": self.notes,
            }
        return {
            "name": self.name,
            "az_id": self.candidate.az_id,
            "instance_type": self.candidate.instance_type,
            "status": self.status,
            "failed": self.failed,
            "error": self.error,
            "score_us": self.score,
            "explain": self.explain,
            "figures_us": self.figures,
            "applied_s": s(self.applied_ns),
            "result_s": s(self.result_ns),
            "destroy_started_s": s(self.destroy_started_ns),
            "destroyed_s": s(self.destroyed_ns),
            "reported_unix": self.reported_unix,
            **many,
        }


@dataclass
class SweepOutcome:
    """What ``run`` returns: every candidate's state, the ranking, the winners kept."""

    sweep_id: str
    states: dict[str, CandidateState]
    ranking: list[str]
    winners: list[str]
    started_ns: int
    finished_ns: int

    @property
    def elapsed_s(self) -> float:
        return (self.finished_ns - self.started_ns) / 1e9


class Orchestrator:
    """Runs one sweep with a :class:`Provisioner` (Terraform in production, a fake in unit tests)."""

    def __init__(
        self,
        cfg: SweepConfig,
        sweep_id: str,
        provisioner: Provisioner,
        *,
        clock: Clock = DEFAULT_CLOCK,
        progress: ProgressFn | None = None,
        on_change: Callable[[dict[str, CandidateState]], None] | None = None,
        candidates: list[Candidate],
    ) -> None:
        self.cfg = cfg
        self.sweep_id = sweep_id
        self.prov = provisioner
        self.clock = clock
        self._progress = progress
        self._on_change = on_change
        n = cfg.instances_per_candidate
        keys = spread_keys(cfg.metric)
        self.states = {
            c.name: CandidateState(c, instances=[InstanceState(i) for i in range(n)], spread_keys=keys)
            for c in candidates
        }
        self.kept: set[str] = set()
        self._applies: dict[str, asyncio.Task[None]] = {}
        self._destroys: dict[str, asyncio.Task[None]] = {}
        self._sem = asyncio.Semaphore(cfg.max_parallel)

    # -- events ------------------------------------------------------------------------------
    def _set(self, st: CandidateState, status: str, **fields: Any) -> None:
        st.status = status
        for k, v in fields.items():
            setattr(st, k, v)
        log_event(
            log,
            logging.INFO,
            f"candidate_{status}",
            sweep=self.sweep_id,
            candidate=st.name,
            **({"error": st.error} if status == "failed" else {}),
        )
        if self._progress:
            self._progress(status, st)
        if self._on_change:
            self._on_change(self.states)

    def _fail(self, st: CandidateState, reason: str) -> None:
        self._set(st, "failed", failed=True, error=reason)
        self._start_destroy(st)

    # -- apply / destroy ---------------------------------------------------------------------
    async def _apply(self, st: CandidateState) -> None:
        async with self._sem:
            self._set(st, "applying")
            try:
                await self.prov.apply(st.candidate)
            except TickpathError as exc:
                self._fail(st, f"apply failed: {exc}")
                return
        if st.status == "applying":
            self._set(st, "running", applied_ns=self.clock.monotonic_ns())

    def _start_destroy(self, st: CandidateState) -> None:
        if st.name in self._destroys or st.name in self.kept:
            return
        self._destroys[st.name] = asyncio.create_task(self._destroy(st), name=f"destroy-{st.name}")

    async def _destroy(self, st: CandidateState) -> None:
        apply_task = self._applies.get(st.name)
        if apply_task is not None and not apply_task.done():
            # A timeout can fire while Terraform is still applying: stop it, then destroy.
            apply_task.cancel()
            await asyncio.gather(apply_task, return_exceptions=True)
        failed_before = st.status == "failed"
        st.destroy_started_ns = self.clock.monotonic_ns()
        if not failed_before:
            self._set(st, "destroying")
        try:
            await self.prov.destroy(st.candidate)
        except TickpathError as exc:
            self._set(st, "destroy_failed", error=f"{st.error + '; ' if st.error else ''}destroy failed: {exc}")
            return
        self._set(st, "destroyed", destroyed_ns=self.clock.monotonic_ns())

    # -- results -----------------------------------------------------------------------------
    def _judge(self, inst: InstanceState, body: bytes) -> None:
        """Read one instance's result: its figures and score, or why it is unusable."""
        try:
            doc = json.loads(body)
        except json.JSONDecodeError:
            inst.status, inst.error = "failed", "result is not JSON"
            return
        inst.result = doc if isinstance(doc, dict) else None
        if not isinstance(doc, dict):
            inst.status, inst.error = "failed", "result is not a JSON object"
            return
        stamp = doc.get("finished_unix")
        inst.reported_unix = stamp if isinstance(stamp, (int, float)) else None
        inst.status, inst.error = "failed", self._unusable(inst, doc)
        if inst.error is None:
            inst.status = "reported"

    def _unusable(self, inst: InstanceState, doc: dict[str, Any]) -> str | None:
        if doc.get("status") != "ok" or not isinstance(doc.get("probe"), dict):
            # An aws boot script that could not install tickpath says so ("stage": "boot").
            stage = "boot" if doc.get("stage") == "boot" else "probe"
            return f"{stage} failed: {doc.get('error') or 'no probe document'}"
        try:
            inst.figures = extract_figures(doc["probe"])
            inst.score = self.cfg.metric.evaluate(inst.figures)
        except TickpathError as exc:
            errors = doc["probe"].get("errors")
            why = ""
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                why = f" (probe: {errors[0].get('method', '?')}: {errors[0].get('message', '?')})"
            return f"unusable probe result: {exc}{why}"
        for method in sorted({t.method for t in self.cfg.metric.terms}):
            loss = inst.figures.get(f"{method}.loss_ratio", 0.0)
            if loss > self.cfg.max_loss_ratio:
                # Percentiles of the samples that came back flatter a lossy path: never rank it.
                inst.score = None
                return f"{method} lost {loss:.1%} of samples (limit {self.cfg.max_loss_ratio:.1%})"
        return None

    def _take_result(self, st: CandidateState, instance: int, body: bytes) -> None:
        inst = st.instances[instance]
        self._judge(inst, body)
        if all(i.status != "waiting" for i in st.instances):
            self._conclude(st)

    def _conclude(self, st: CandidateState) -> None:
        """Every instance is in (or timed out): rank the candidate on what its instances measured."""
        st.result_ns = self.clock.monotonic_ns()
        usable = [i for i in st.instances if i.status == "reported"]
        with_result = [i for i in st.instances if i.result is not None]
        st.result = with_result[0].result if with_result else None
        stamps = [i.reported_unix for i in st.instances if i.reported_unix is not None]
        st.reported_unix = max(stamps) if stamps else None
        if not usable:
            if len(st.instances) == 1:
                self._fail(st, st.instances[0].error or "no usable result")
            else:
                why = "; ".join(f"instance {i.index}: {i.error}" for i in st.instances)
                self._fail(st, f"every instance failed: {why}")
            return
        merged = merge_instances([i.result["probe"] for i in usable if i.result is not None])
        try:
            score = self.cfg.metric.evaluate(merged.figures)
        except TickpathError as exc:
            self._fail(st, f"instances cannot be merged: {exc}")
            return
        st.figures, st.merged_histograms, st.notes = merged.figures, merged.histograms, list(merged.notes)
        st.best_instance = best_instance(st.instances)
        best = st.instances[st.best_instance or 0]
        st.result = best.result
        st.score = score
        st.explain = self.cfg.metric.explain(st.figures)
        if len(st.instances) > 1:
            st.spread = spread(st.instances, st.spread_keys)
            st.explain += f" ({describe_spread(st.instances, st.spread_keys, st.best_instance)})"
        self._set(st, "reported")

    def _scores(self) -> dict[str, float]:
        return {n: s.score for n, s in self.states.items() if s.score is not None and not s.failed}

    async def _collect(self) -> None:
        interval_ns = int(self.cfg.poll_interval_s * 1e9)
        timeout_ns = int(self.cfg.timeout_s * 1e9)
        store_errors = 0
        while True:
            waiting = [s for s in self.states.values() if s.status in ("pending", "applying", "running")]
            if not waiting:
                return
            try:
                ready = await asyncio.to_thread(self.prov.store.ready, self.sweep_id)
                for st in waiting:
                    for inst in st.instances:
                        name = result_name(st.name, inst.index)
                        if st.status == "running" and inst.status == "waiting" and name in ready:
                            body = await asyncio.to_thread(self.prov.store.get, self.sweep_id, name)
                            self._take_result(st, inst.index, body)
                store_errors = 0
            except TickpathError as exc:
                # A throttled or briefly unreachable store must not end a sweep; a dead one must.
                store_errors += 1
                log_event(
                    log, logging.WARNING, "result_store_error", sweep=self.sweep_id, error=exc, consecutive=store_errors
                )
                if store_errors >= MAX_STORE_ERRORS:
                    raise
            for name in doomed(self._scores(), self.cfg.keep):
                st = self.states[name]
                if st.status == "reported":
                    self._start_destroy(st)
            now = self.clock.monotonic_ns()
            for st in waiting:
                if st.status == "running" and st.applied_ns is not None and now - st.applied_ns > timeout_ns:
                    self._time_out(st)
            if any(s.status in ("pending", "applying", "running") for s in self.states.values()):
                await self.clock.sleep_until_ns(now + interval_ns)

    def _time_out(self, st: CandidateState) -> None:
        """A candidate silent past the timeout fails; one with some instances in is ranked on them."""
        why = f"no result within {self.cfg.timeout_s:g} s of start"
        if not any(i.status != "waiting" for i in st.instances):
            self._fail(st, why)
            return
        for inst in st.instances:
            if inst.status == "waiting":
                inst.status, inst.error = "failed", why
        self._conclude(st)

    async def _keep_best_instance(self, st: CandidateState) -> bool:
        """Destroy every instance of a kept candidate but its best; False if that failed."""
        others = [i.index for i in st.instances if i.index != (st.best_instance or 0)]
        if not others or st.trimmed is not None:
            return True
        try:
            await self.prov.destroy_instances(st.candidate, others)
        except TickpathError as exc:
            st.error = f"could not destroy instances {others} (keeping {st.best_instance}): {exc}"
            log_event(log, logging.ERROR, "instances_destroy_failed", sweep=self.sweep_id, candidate=st.name)
            return False
        st.trimmed = others
        log_event(
            log, logging.INFO, "instances_destroyed", sweep=self.sweep_id, candidate=st.name, kept=st.best_instance
        )
        return True

    # -- the run -----------------------------------------------------------------------------
    async def run(self) -> SweepOutcome:
        """Run the sweep; on any exit path, nothing but the winners is left."""
        started = self.clock.monotonic_ns()
        try:
            await self.prov.prepare()
            for st in self.states.values():
                self._applies[st.name] = asyncio.create_task(self._apply(st), name=f"apply-{st.name}")
            await self._collect()
            order = rank(self._scores())
            winners = order[: self.cfg.keep]
            untrimmed: list[str] = []
            for name in winners:
                self.kept.add(name)
                if not await self._keep_best_instance(self.states[name]):
                    untrimmed.append(name)
                self._set(self.states[name], "kept")
            for st in self.states.values():
                if st.name not in self.kept:
                    self._start_destroy(st)
            await asyncio.gather(*self._destroys.values())
            await self.prov.finish(kept=set(self.kept))
        except BaseException:
            await self._shielded(self._teardown())
            raise
        stuck = [s.name for s in self.states.values() if s.status == "destroy_failed"] + untrimmed
        if stuck:
            raise InfraError(
                f"could not destroy {', '.join(stuck)}; run `tickpath sweep cleanup --sweep-id {self.sweep_id}`"
            )
        return SweepOutcome(self.sweep_id, self.states, order, winners, started, self.clock.monotonic_ns())

    async def _teardown(self) -> None:
        """Stop applies in flight, then destroy every candidate not kept, in parallel."""
        for task in self._applies.values():
            task.cancel()
        await asyncio.gather(*self._applies.values(), return_exceptions=True)
        for st in self.states.values():
            if st.name not in self.kept and st.status not in FINAL:
                self._start_destroy(st)
        await asyncio.gather(*self._destroys.values(), return_exceptions=True)
        for name in self.kept:  # interrupted while a winner's other instances were going
            await self._keep_best_instance(self.states[name])
        try:
            await self.prov.finish(kept=set(self.kept))
        except TickpathError as exc:
            log_event(log, logging.ERROR, "shared_destroy_failed", sweep=self.sweep_id, error=exc)

    @staticmethod
    async def _shielded(coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue  # a second signal must not abandon the teardown
            except Exception:
                return
