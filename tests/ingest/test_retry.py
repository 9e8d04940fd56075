"""``ingest`` waits for a stream that does not exist yet, or a cluster that does not answer, instead of
exiting 2 or 4: backoff, one log line per attempt, bounded by ``--wait-stream``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.ingest.support import make_events, nats_cluster
from tests.ingest.test_ingest import _assert_exactly_once, _publish
from tickpath.cli.main import main
from tickpath.clock import ManualClock
from tickpath.errors import ConfigError
from tickpath.ingest import IngestConfig, run_ingest
from tickpath.ingest.retry import REELECTION_S, running_give_up_s, wait_budget_s
from tickpath.nats.retry import ClusterUnansweredError, StreamMissingError, retrying


async def test_retrying_backs_off_doubling_and_gives_up_at_the_budget() -> None:
    """Attempts at 0, 0.25, 0.75, 1.75, 3.75 s ...: the delay doubles to 5 s, the last try is at the
    budget's end, and its error is the one raised."""
    clock = ManualClock()
    at: list[float] = []

    async def attempt() -> None:
        at.append(clock.monotonic_ns() / 1e9)
        raise StreamMissingError("no stream")

    with pytest.raises(StreamMissingError):
        await retrying(attempt, what="s", budget_s=12.0, clock=clock)
    assert at == [0.0, 0.25, 0.75, 1.75, 3.75, 7.75, 12.0]


async def test_retrying_returns_once_the_stream_answers_and_zero_budget_fails_at_once() -> None:
    """A transient error then success returns the value; budget 0 raises the first error untried."""
    clock = ManualClock()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ClusterUnansweredError("no leader")
        return "info"

    assert await retrying(flaky, what="s", budget_s=None, clock=clock) == "info"
    assert calls == 4
    calls = 0
    with pytest.raises(ClusterUnansweredError):
        await retrying(flaky, what="s", budget_s=0, clock=clock)
    assert calls == 1


async def test_other_errors_are_not_retried() -> None:
    """A configuration error the server states (a refused consumer) is not a moment: raised at once."""
    clock = ManualClock()
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ConfigError("refused")

    with pytest.raises(ConfigError):
        await retrying(refused, what="s", budget_s=None, clock=clock)
    assert calls == 1


def test_budgets() -> None:
    """Forever for a service; an --idle-exit run waits out a re-election; --wait-stream wins."""
    assert wait_budget_s(None, None, 5.0) is None
    assert wait_budget_s(None, 1.0, 5.0) == REELECTION_S
    assert wait_budget_s(None, 90.0, 5.0) == 90.0
    assert wait_budget_s(2.0, 1.0, 5.0) == 2.0
    assert running_give_up_s(0.0, 1.0, 3.0) == 3.0 and running_give_up_s(None, 1.0, 3.0) is None


def test_negative_wait_stream_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--wait-stream -1 is a one-line config error naming the option."""
    rc = main(["ingest", "--from", "nats://127.0.0.1:1", "--to", f"duckdb:{tmp_path / 'x'}", "--wait-stream", "-1"])
    assert rc == 2 and "--wait-stream" in capsys.readouterr().err


@pytest.mark.integration
async def test_ingest_started_before_its_stream_waits_and_loads_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An --idle-exit ingest started before the feed created the stream waits (logging it), then
    loads every event once."""
    events = make_events(300)
    db = tmp_path / "t.duckdb"
    caplog.set_level(logging.INFO, logger="tickpath.nats.retry")
    async with nats_cluster() as c:
        url = c.client_urls[0]
        cfg = IngestConfig(url, f"duckdb:{db}", batch=100, idle_exit_s=0.5, fetch_timeout_s=0.2)
        run = asyncio.create_task(run_ingest(cfg))
        async with asyncio.timeout(10):
            while "ingest_waiting_for_stream" not in caplog.text:
                await asyncio.sleep(0.05)
        assert not run.done() and not db.exists()  # waiting, and nothing opened yet
        await _publish(url, events, tmp_path / "spool")
        res = await asyncio.wait_for(run, 30)
    assert res.inserted == 300 and res.duplicates == 0
    _assert_exactly_once(db, events)
    assert "does not exist" in caplog.text  # the reason is in the wait line
