"""Stream provisioning waits out a JetStream with no leader yet instead of exiting.

Two ``--shard`` feeds started together against a cluster that had just started once ended one of
them on "JetStream is not enabled" (a 503 "temporarily unavailable" read as no responders) or a
timeout. Now a cluster that cannot answer yet is retried, as ``ingest`` retries, and a create that
lost a race to the other publisher reads the stream that publisher made.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from tests.ingest.support import nats_cluster
from tickpath.clock import ManualClock
from tickpath.errors import ConfigError, ConnectionFailedError
from tickpath.nats.provision import StreamSpec, ensure_stream
from tickpath.nats.retry import ClusterUnansweredError
from tickpath.sinks.nats import NatsSink, NatsSinkConfig

SERVERS = ["nats://127.0.0.1:4222"]


class _Info:
    def __init__(self, subjects: list[str]) -> None:
        self.config = type("C", (), {"subjects": subjects})()


class ScriptedJs:
    """A JetStream context whose stream_info/add_stream answers are scripted (an exception or a value)."""

    def __init__(self, info: list[Any], add: list[Any]) -> None:
        self.info, self.add = list(info), list(add)
        self.calls: list[str] = []

    async def stream_info(self, name: str) -> Any:
        self.calls.append("info")
        return self._answer(self.info)

    async def add_stream(self, config: Any) -> Any:
        self.calls.append("add")
        return self._answer(self.add)

    @staticmethod
    def _answer(script: list[Any]) -> Any:
        r = script.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r


def _unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(code=503, err_code=10008, description="JetStream system temporarily unavailable")


async def test_no_leader_yet_is_waited_for_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tickpath.nats")
    clock = ManualClock()
    js = ScriptedJs([_unavailable(), NatsTimeoutError(), NotFoundError()], [None])
    assert await ensure_stream(js, StreamSpec(), SERVERS, wait_s=30.0, clock=clock) is True
    assert js.calls == ["info", "info", "info", "add"]
    assert clock.monotonic_ns() == int(0.75e9)  # 0.25 s, then 0.5 s
    assert "nats_sink_waiting_for_stream" in caplog.text and "nats_stream_created" in caplog.text


async def test_a_create_that_lost_the_race_reads_the_winners_stream() -> None:
    """The other shard created it between our look and our create: not an error, not created by us."""
    in_use = BadRequestError(code=400, err_code=10058, description="stream name already in use")
    js = ScriptedJs([NotFoundError(), _Info(["tickpath.>"])], [in_use])
    assert await ensure_stream(js, StreamSpec(), SERVERS, clock=ManualClock()) is False
    assert js.calls == ["info", "add", "info"]


async def test_the_winners_stream_must_still_take_our_subjects() -> None:
    in_use = BadRequestError(code=400, err_code=10058, description="stream name already in use")
    js = ScriptedJs([NotFoundError(), _Info(["other.>"])], [in_use])
    with pytest.raises(ConfigError, match="do not take this sink's tickpath"):
        await ensure_stream(js, StreamSpec(), SERVERS, clock=ManualClock())


async def test_no_jetstream_and_refusals_are_not_waited_for() -> None:
    clock = ManualClock()
    with pytest.raises(ConnectionFailedError, match="JetStream is not enabled"):
        await ensure_stream(ScriptedJs([ServiceUnavailableError()], []), StreamSpec(), SERVERS, clock=clock)
    refused = BadRequestError(code=400, err_code=10052, description="replicas > 1 not supported in non-clustered mode")
    with pytest.raises(ConfigError, match="replicas > 1 not supported"):
        await ensure_stream(ScriptedJs([NotFoundError()], [refused]), StreamSpec(replicas=3), SERVERS, clock=clock)
    assert clock.monotonic_ns() == 0


async def test_the_wait_ends_at_its_budget_with_exit_4() -> None:
    clock = ManualClock()
    js = ScriptedJs([_unavailable()] * 10, [])
    with pytest.raises(ClusterUnansweredError, match="temporarily unavailable") as info:
        await ensure_stream(js, StreamSpec(), SERVERS, wait_s=2.0, clock=clock)
    assert info.value.exit_code == 4
    assert clock.monotonic_ns() == int(2e9) and js.calls == ["info"] * 5  # 0, .25, .75, 1.75, 2.0


def test_wait_stream_s_is_a_sink_url_option() -> None:
    assert NatsSinkConfig.from_url("nats://h:4222?wait_stream_s=5").wait_stream_s == 5.0
    with pytest.raises(ConfigError, match="wait_stream_s"):
        NatsSinkConfig.from_url("nats://h:4222?wait_stream_s=-1")


@pytest.mark.integration
async def test_sink_starts_once_a_cluster_without_quorum_gets_it_back(tmp_path: Path) -> None:
    """A real 3-node cluster with two nodes down has no JetStream quorum: the sink's start waits (it
    does not exit), and completes once the nodes are back, creating the replicas-3 stream."""
    async with nats_cluster(3) as c:
        await c.kill(1)
        await c.kill(2)
        sink = NatsSink.from_url(
            f"{c.client_urls[0]}?replicas=3&spool={tmp_path / 'spool'}&wait_stream_s=60&connect_timeout_s=1"
        )
        start = asyncio.create_task(sink.start())
        await asyncio.sleep(2.5)
        assert not start.done(), start  # waiting, not failed
        await c.restart(1)
        await c.restart(2)
        await asyncio.wait_for(start, 60)
        try:
            info = await sink._nc.jetstream().stream_info("TICKPATH")
            assert info.config.num_replicas == 3
        finally:
            await sink.close()
