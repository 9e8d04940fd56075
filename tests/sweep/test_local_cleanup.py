"""The local tag search: agents are found by --sweep-id on their command line; others are never touched."""

from __future__ import annotations

import subprocess
import sys
import time

from tickpath.sweep.cleanup import local_agents, stop_local_agents


def _fake_agent(sweep_id: str, candidate: str) -> subprocess.Popen[bytes]:
    # Same command-line shape as a real agent; sleeps instead of probing.
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "tickpath.sweep.agent",
            "--sweep-id",
            sweep_id,
            "--candidate",
            candidate,
        ],
        start_new_session=True,
    )


def test_stop_local_agents_is_scoped_to_the_sweep_and_spares_kept_candidates() -> None:
    """Agents of this sweep stop, except kept winners; another sweep's agent is untouched."""
    mine_a, mine_b = _fake_agent("scope-1", "a"), _fake_agent("scope-1", "b")
    other = _fake_agent("scope-2", "a")
    try:
        deadline = time.monotonic() + 10
        while len(local_agents("scope-1")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(local_agents("scope-1")) == sorted([mine_a.pid, mine_b.pid])
        assert local_agents("scope-1", keep={"b"}) == [mine_a.pid]
        assert stop_local_agents("scope-1", keep={"b"}) == [mine_a.pid]
        assert mine_a.wait(5) is not None
        assert mine_b.poll() is None and other.poll() is None
        assert stop_local_agents("scope-1") == [mine_b.pid]
        assert mine_b.wait(5) is not None and other.poll() is None
        assert local_agents("scope-2") == [other.pid]
    finally:
        for p in (mine_a, mine_b, other):
            if p.poll() is None:
                p.kill()
                p.wait(5)
