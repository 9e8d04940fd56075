"""JetStream sink: subjects, de-dup ids, stream creation, acks, back-pressure, spool and drops.

Integration tests run real ``nats-server`` processes (skipped when it is not installed).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import nats
import pytest

from tests.ingest.support import make_events, nats_cluster
from tickpath.errors import ConfigError
from tickpath.events import decode_event, event_key
from tickpath.sinks.nats import PUBLISH_NS_HEADER, NatsSink, NatsSinkConfig

FAST = {"ack_timeout_s": 0.5, "backpressure_s": 0.3, "close_timeout_s": 10.0}


def test_url_options_parse_into_a_frozen_config() -> None:
    """Query parameters and keyword options set the sink config; hosts may be a list."""
    cfg = NatsSinkConfig.from_url(
        "nats://a:4222,b?stream=MD&replicas=3&storage=memory&prefix=md&max_inflight=64&spool_max_mb=1.5",
        ack_timeout_s=2,
    )
    assert cfg.servers == ("nats://a:4222", "nats://b:4222")
    assert (cfg.stream, cfg.replicas, cfg.storage, cfg.prefix) == ("MD", 3, "memory", "md")
    assert cfg.max_inflight == 64 and cfg.spool_max_mb == 1.5 and cfg.ack_timeout_s == 2.0


@pytest.mark.parametrize(
    "url, match",
    [
        ("nats://h?bogus=1", "unknown NATS sink option"),
        ("nats://h?replicas=7", "replicas"),
        ("nats://h?storage=tape", "storage"),
        ("nats://h?max_inflight=x", "not a number"),
        ("http://h", "nats://"),
        ("nats://h?stream=a.b", "stream name"),
        ("nats://h?stream=MD/X", "stream name"),  # a path separator: JetStream names become file names
        ("nats://h?prefix=md.", "prefix='md.'"),  # an empty token: 'md..trades' is no subject
        ("nats://h?prefix=md..x", "subject tokens"),
        ("nats://h?prefix=md%20x", "subject tokens"),
        ("nats://h?prefix=md.*", "subject tokens"),
    ],
)
def test_bad_url_options_are_config_errors(url: str, match: str) -> None:
    """Every malformed option fails with a ConfigError naming the problem; stream names and subject
    prefixes follow the same rule as ``tickpath ingest``'s (tickpath.nats.provision.check_name/check_prefix)."""
    with pytest.raises(ConfigError, match=match):
        NatsSinkConfig.from_url(url)


def test_credentials_are_not_in_the_config_repr() -> None:
    """A password in the URL never shows up when the config is printed or logged."""
    cfg = NatsSinkConfig.from_url("nats://alice:s3cret@h:4222")
    assert cfg.user == "alice" and cfg.password == "s3cret"
    assert "s3cret" not in repr(cfg)


async def _stream_msgs(url: str, stream: str = "TICKPATH") -> list[nats.aio.msg.Msg]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        n = (await js.stream_info(stream)).state.messages
        out = []
        for seq in range(1, n + 1):
            out.append(await js.get_msg(stream, seq))
        return out
    finally:
        await nc.close()


@pytest.mark.integration
async def test_publishes_every_event_with_subject_msg_id_and_publish_time(tmp_path: Path) -> None:
    """Each event lands once on tickpath.<venue>.<channel>.<symbol> with its key as Nats-Msg-Id."""
    events = make_events(90)
    async with nats_cluster() as c:
        sink = NatsSink.from_url(c.client_urls[0], spool=str(tmp_path / "spool"), **FAST)
        await sink.start()
        for i in range(0, 90, 20):
            await sink.write(events[i : i + 20])
        await sink.close()
        stored = await _stream_msgs(c.client_urls[0])
    assert sink.stats.published == 90 == sink.stats.written
    assert sink.stats.dropped == 0 and sink.stats.spooled == 0
    assert len(stored) == 90
    by_key = {m.headers["Nats-Msg-Id"]: m for m in stored}
    for e in events:
        m = by_key[event_key(e)]
        assert m.subject == f"tickpath.spot.{e.channel}.{e.symbol}"
        assert decode_event(m.data) == e
        assert int(m.headers[PUBLISH_NS_HEADER]) > 1_700_000_000_000_000_000


@pytest.mark.integration
async def test_stream_created_with_config_and_existing_stream_left_alone(tmp_path: Path) -> None:
    """A missing stream is created with the given storage; an existing one keeps its own settings."""
    async with nats_cluster() as c:
        url = c.client_urls[0]
        sink = NatsSink.from_url(
            f"{url}?stream=NEW&prefix=md&storage=memory&duplicate_window_s=30", spool=str(tmp_path / "s1")
        )
        await sink.start()
        await sink.close()
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info("NEW")
        assert info.config.storage == "memory" and info.config.subjects == ["md.>"]
        assert info.config.duplicate_window == 30
        await js.add_stream(name="OLD", subjects=["old.>"], max_msgs=5)
        sink2 = NatsSink.from_url(f"{url}?stream=OLD&prefix=old&storage=memory", spool=str(tmp_path / "s2"))
        await sink2.start()
        await sink2.close()
        old = await js.stream_info("OLD")
        await nc.close()
    assert old.config.max_msgs == 5 and old.config.storage == "file"


@pytest.mark.integration
async def test_an_existing_stream_that_does_not_take_the_prefix_is_refused_at_start(tmp_path: Path) -> None:
    """A stream bound to other subjects would leave every publish unanswered (all spooled, exit 0 before):
    start refuses with the stream's subjects named, and leaves no empty spool directory of its own behind."""
    import tempfile

    async with nats_cluster() as c:
        url = c.client_urls[0]
        nc = await nats.connect(url)
        await nc.jetstream().add_stream(name="TICKPATH", subjects=["tickpath.>"])
        await nc.close()
        before = set(Path(tempfile.gettempdir()).glob("tickpath-spool-*"))
        sink = NatsSink.from_url(f"{url}?prefix=other")
        with pytest.raises(ConfigError, match=r"stream TICKPATH exists with subjects tickpath\.>.*other\.>"):
            await sink.start()
        assert set(Path(tempfile.gettempdir()).glob("tickpath-spool-*")) == before
        ok = NatsSink.from_url(f"{url}?prefix=tickpath", spool=str(tmp_path / "s"))  # the same stream, its prefix
        await ok.start()
        await ok.close()


def test_covers_follows_nats_wildcards() -> None:
    """A stream filter takes a sink's subjects only if it matches all of <prefix>.>."""
    from tickpath.nats.provision import covers

    assert covers("tickpath.>", "tickpath") and covers(">", "tickpath") and covers("*.>", "tickpath")
    assert covers("md.*.>", "md.x") and covers("md.>", "md.x")
    assert not covers("tickpath.futures.>", "tickpath")  # narrower: spot would go unanswered
    assert not covers("other.>", "tickpath") and not covers("tickpath.*", "tickpath")
    assert not covers("tickpath", "tickpath")


@pytest.mark.integration
async def test_republished_events_are_deduplicated_by_the_server(tmp_path: Path) -> None:
    """Publishing the same events again (a retry) stores nothing new: the server sees the msg ids."""
    events = make_events(60)
    async with nats_cluster() as c:
        for run in range(2):
            sink = NatsSink.from_url(c.client_urls[0], spool=str(tmp_path / f"s{run}"))
            await sink.start()
            await sink.write(events)
            await sink.close()
        stored = await _stream_msgs(c.client_urls[0])
    assert len(stored) == 60
    assert sink.stats.duplicates == 60


@pytest.mark.integration
async def test_outage_spools_then_drains_in_order_after_restart(tmp_path: Path) -> None:
    """With NATS killed mid-stream, writes back-pressure then spool; after restart all arrive in order."""
    events = make_events(600)
    async with nats_cluster() as c:
        sink = NatsSink.from_url(c.client_urls[0], spool=str(tmp_path / "spool"), max_inflight=50, **FAST)
        await sink.start()
        await sink.write(events[:200])
        await sink.flush()
        await c.kill(0)
        for i in range(200, 600, 50):
            await sink.write(events[i : i + 50])
        # The feed flushes every second: during an outage that must not stall (acks time out to the spool).
        await asyncio.wait_for(sink.flush(), 3)
        assert sink.stats.inflight == 0
        assert sink.stats.spooled > 0
        assert sink.stats.spool_pending > 0
        assert sink.buffered == sink.stats.spool_pending  # held for the pipeline's count: not dropped
        await c.restart(0)
        await asyncio.wait_for(sink.drain(), 20)
        await sink.close()
        stored = await _stream_msgs(c.client_urls[0])
    keys = [m.headers["Nats-Msg-Id"] for m in stored]
    assert sorted(keys) == sorted(event_key(e) for e in events)  # every event exactly once
    assert sink.stats.dropped == 0 and sink.stats.spool_pending == 0 and sink.buffered == 0
    assert sink.stats.published == 600
    # The spool drains in order: per stream, what came through it is stored in seq order.
    last: dict[tuple[str, str], int] = {}
    for m in stored[200:]:
        e = decode_event(m.data)
        k = (e.channel, e.symbol)
        assert e.seq > last.get(k, 0)
        last[k] = e.seq


@pytest.mark.integration
async def test_full_spool_drops_loudly_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """When NATS is down and the spool is full, drops are counted and logged at ERROR, never silent."""
    events = make_events(3000)
    async with nats_cluster() as c:
        sink = NatsSink.from_url(
            c.client_urls[0],
            spool=str(tmp_path / "spool"),
            spool_max_mb=0.05,
            max_inflight=20,
            ack_timeout_s=0.3,
            backpressure_s=0.2,
            close_timeout_s=0.5,
        )
        await sink.start()
        await c.kill(0)
        logger = logging.getLogger("tickpath.sinks.nats")
        logger.addHandler(caplog.handler)  # the CLI's configure() stops propagation to the root logger
        try:
            with caplog.at_level(logging.ERROR, logger="tickpath.sinks.nats"):
                for i in range(0, 3000, 500):
                    await sink.write(events[i : i + 500])
                await sink.close()
        finally:
            logger.removeHandler(caplog.handler)
    st = sink.stats
    assert st.dropped > 0
    assert st.spooled + st.dropped + st.published >= 3000 - 20
    assert st.spool_pending > 0  # what fit stays on disk for the next run
    messages = [r.getMessage() for r in caplog.records]
    assert any("nats_spool_full_dropping" in m for m in messages)
    assert any(f"nats_sink_dropped dropped={st.dropped}" in m for m in messages)


@pytest.mark.integration
async def test_spool_left_by_a_previous_run_is_sent_first(tmp_path: Path) -> None:
    """Messages spooled when a run ended with NATS down are published by the next run, in order."""
    events = make_events(120)
    spool = str(tmp_path / "spool")
    async with nats_cluster() as c:
        first = NatsSink.from_url(
            c.client_urls[0], spool=spool, ack_timeout_s=0.3, backpressure_s=0.2, close_timeout_s=0.3
        )
        await first.start()
        await c.kill(0)
        await first.write(events[:100])
        await first.close()
        left = first.stats.spool_pending
        assert left == 100
        note = first.undelivered()  # what the feed's exit message says: how many, where, how to resume
        assert note is not None and "100 events" in note and f"spool={spool}" in note
        await c.restart(0)
        second = NatsSink.from_url(c.client_urls[0], spool=spool, **FAST)
        await second.start()
        await second.write(events[100:])
        await second.close()
        assert second.undelivered() is None
        stored = await _stream_msgs(c.client_urls[0])
    assert [m.headers["Nats-Msg-Id"] for m in stored] == [event_key(e) for e in events]
