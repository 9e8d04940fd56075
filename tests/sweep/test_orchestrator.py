"""Orchestrator logic on a manual clock: early loser destruction, failures, timeouts, teardown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tickpath.clock import ManualClock
from tickpath.errors import InfraError
from tickpath.sweep.orchestrator import Orchestrator
from tickpath.sweep.plan import candidates

from .helpers import FakeProvisioner, ScriptedStore, local_config, ok_result, probe_doc

S = 1_000_000_000


def _setup(tmp_path: Path, zones: list[str], **sweep: object) -> tuple[Orchestrator, FakeProvisioner, ScriptedStore]:
    cfg = local_config(tmp_path, zones, **sweep)
    clock = ManualClock()
    store = ScriptedStore(clock)
    prov = FakeProvisioner(clock, store)
    orch = Orchestrator(cfg, "unit-1", prov, clock=clock, candidates=candidates(cfg))
    return orch, prov, store


async def test_loser_destroyed_when_its_result_arrives_not_at_the_end(tmp_path: Path) -> None:
    """With keep=1, a slower zone reporting after a faster one is destroyed at once, before the rest report."""
    orch, prov, store = _setup(tmp_path, ["a", "b", "c"], result_timeout_s=100)
    store.script = {
        "a": (2 * S, ok_result(probe_doc(500))),
        "b": (5 * S, ok_result(probe_doc(900))),
        "c": (30 * S, ok_result(probe_doc(700))),
    }
    out = await orch.run()
    assert out.winners == ["a"]
    assert out.ranking == ["a", "c", "b"]
    assert 5 * S <= prov.destroyed_at["b"] < 6 * S  # destroyed within one poll of its result
    assert prov.destroyed_at["c"] >= 30 * S
    assert prov.live == {"a"}
    assert orch.states["a"].status == "kept"
    assert prov.finished_kept == {"a"}


async def test_a_candidate_that_could_still_win_is_not_destroyed_early(tmp_path: Path) -> None:
    """With keep=2, the second result is kept alive until a third beats it."""
    orch, prov, store = _setup(tmp_path, ["a", "b", "c"], keep=2, result_timeout_s=100)
    store.script = {
        "a": (1 * S, ok_result(probe_doc(900))),
        "b": (2 * S, ok_result(probe_doc(800))),
        "c": (10 * S, ok_result(probe_doc(100))),
    }
    out = await orch.run()
    assert out.winners == ["c", "b"]
    assert prov.destroyed_at["a"] >= 10 * S
    assert prov.live == {"b", "c"}


async def test_failed_probe_is_destroyed_immediately_and_never_ranked(tmp_path: Path) -> None:
    """A failure result is marked failed, destroyed as it arrives, and left out of the ranking."""
    orch, prov, store = _setup(tmp_path, ["a", "b"], result_timeout_s=100)
    store.script = {
        "a": (1 * S, json.dumps({"status": "failed", "error": "connection refused"}).encode()),
        "b": (20 * S, ok_result(probe_doc(9000))),
    }
    out = await orch.run()
    assert out.ranking == ["b"] and out.winners == ["b"]
    assert orch.states["a"].failed and "connection refused" in (orch.states["a"].error or "")
    assert prov.destroyed_at["a"] < 2 * S


async def test_silent_candidate_times_out_fails_and_is_destroyed(tmp_path: Path) -> None:
    """A candidate that never reports is failed after result_timeout_s and destroyed."""
    orch, prov, store = _setup(tmp_path, ["a", "b"], result_timeout_s=10)
    store.script = {"a": (1 * S, ok_result(probe_doc(500)))}
    out = await orch.run()
    st = orch.states["b"]
    assert st.failed and "no result within 10 s" in (st.error or "")
    assert 10 * S <= prov.destroyed_at["b"] <= 11 * S
    assert out.winners == ["a"] and prov.live == {"a"}


async def test_apply_failure_is_destroyed_and_others_continue(tmp_path: Path) -> None:
    """A capacity error on one candidate fails it (partial resources destroyed); the sweep goes on."""
    orch, prov, store = _setup(tmp_path, ["a", "b"], result_timeout_s=100)
    prov.fail_apply = {"a"}
    store.script = {"b": (1 * S, ok_result(probe_doc(500)))}
    out = await orch.run()
    assert orch.states["a"].failed and "InsufficientInstanceCapacity" in (orch.states["a"].error or "")
    assert "a" in prov.destroyed_at and out.winners == ["b"]


async def test_lossy_candidate_fails_instead_of_ranking_on_survivors(tmp_path: Path) -> None:
    """A zone with the best percentiles but 20% lost samples is failed, not crowned."""
    orch, _prov, store = _setup(tmp_path, ["a", "b"], result_timeout_s=100)
    store.script = {"a": (1 * S, ok_result(probe_doc(100, ws_loss=0.2))), "b": (2 * S, ok_result(probe_doc(900)))}
    out = await orch.run()
    assert out.winners == ["b"]
    assert "lost 20.0%" in (orch.states["a"].error or "")


async def test_weighted_metric_ranks_by_the_mix(tmp_path: Path) -> None:
    """0.5*ws.p99 + 0.5*tcp.p50 can prefer a zone whose ws.p99 alone is worse."""
    orch, _prov, store = _setup(tmp_path, ["a", "b"], metric="0.5*ws.p99 + 0.5*tcp.p50", result_timeout_s=100)
    store.script = {
        "a": (1 * S, ok_result(probe_doc(500, tcp_p50_us=2000))),
        "b": (1 * S, ok_result(probe_doc(600, tcp_p50_us=100))),
    }
    out = await orch.run()
    assert out.ranking == ["b", "a"]
    assert orch.states["b"].score == pytest.approx(350.0)


async def test_cancellation_destroys_everything_even_if_cancelled_again(tmp_path: Path) -> None:
    """Cancelling mid-sweep (Ctrl-C) destroys every candidate; a second cancel does not stop the teardown."""
    cfg = local_config(tmp_path, ["a", "b", "c"], result_timeout_s=100)
    clock = ManualClock(autojump=False)
    store = ScriptedStore(clock)
    prov = FakeProvisioner(clock, store, apply_blocks=True)
    orch = Orchestrator(cfg, "unit-2", prov, clock=clock, candidates=candidates(cfg))
    task = asyncio.create_task(orch.run())
    for _ in range(20):
        await asyncio.sleep(0)
    assert prov.live == {"a", "b", "c"}
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert prov.live == set()
    assert all(s.status == "destroyed" for s in orch.states.values())


async def test_destroy_failure_is_reported_with_the_cleanup_command(tmp_path: Path) -> None:
    """If a loser cannot be destroyed, the run fails and names `tickpath sweep cleanup --sweep-id`."""
    orch, prov, store = _setup(tmp_path, ["a", "b"], result_timeout_s=100)
    store.script = {"a": (1 * S, ok_result(probe_doc(100))), "b": (1 * S, ok_result(probe_doc(900)))}

    async def broken(candidate: object) -> None:
        raise InfraError("DependencyViolation")

    prov.destroy = broken  # type: ignore[method-assign]
    with pytest.raises(InfraError, match="cleanup --sweep-id unit-1"):
        await orch.run()
    assert orch.states["b"].status == "destroy_failed"
