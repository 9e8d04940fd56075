"""Pub/Sub sink driven through the real google-cloud-pubsub client against an in-test gRPC server."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import msgspec
import pytest

from tests.ingest.support import make_events
from tests.support.pubsub_server import PublisherServer
from tickpath.errors import ConfigError
from tickpath.events import SessionInfo, decode_event, event_key
from tickpath.sinks.pubsub import PubSubSink, PubSubSinkConfig


@pytest.fixture
def server() -> Iterator[PublisherServer]:
    with PublisherServer() as s:
        yield s


def _sink(server: PublisherServer, **opts: object) -> PubSubSink:
    return PubSubSink.from_url("pubsub://proj", endpoint=server.endpoint, **opts)


def test_defaults_follow_the_issue() -> None:
    """Batches of 2,500 messages / 100 ms / 1 MB and topics crypto.binance.<channel> by default."""
    cfg = PubSubSinkConfig.from_url("pubsub://my-proj")
    assert (cfg.max_messages, cfg.max_latency_ms, cfg.max_bytes) == (2500, 100.0, 1_000_000)
    assert cfg.topic_prefix == "crypto.binance" and cfg.ordering is False
    sink = PubSubSink(cfg)
    assert sink.topic_for("l2") == "projects/my-proj/topics/crypto.binance.l2"


def test_url_sets_prefix_and_options() -> None:
    """The URL path is the topic prefix; query parameters set batching, flow control and ordering."""
    cfg = PubSubSinkConfig.from_url(
        "pubsub://p/md.bn?max_messages=10&ordering=true&flow_messages=50", serializer="orjson"
    )
    assert (cfg.topic_prefix, cfg.max_messages, cfg.ordering, cfg.flow_messages, cfg.serializer) == (
        "md.bn",
        10,
        True,
        50,
        "orjson",
    )


@pytest.mark.parametrize(
    "url, match",
    [
        ("pubsub://p?nope=1", "unknown Pub/Sub sink option"),
        ("pubsub://p?ordering=maybe", "boolean"),
        ("pubsub://p?max_bytes=20000000", "10,000,000"),
        ("pubsub://p?serializer=pickle", "serializer"),
        ("nats://p", "pubsub://"),
        ("pubsub:///topic", "project"),
    ],
)
def test_bad_options_are_config_errors(url: str, match: str) -> None:
    """Malformed options fail with a ConfigError that names the problem."""
    with pytest.raises(ConfigError, match=match):
        PubSubSinkConfig.from_url(url)


@pytest.mark.parametrize("serializer", ["msgspec", "orjson"])
async def test_every_event_arrives_with_attributes_on_its_topic(server: PublisherServer, serializer: str) -> None:
    """Each event is one message on crypto.binance.<channel> with venue/symbol/channel/sequence."""
    events = make_events(90)
    sink = _sink(server, serializer=serializer, max_latency_ms=10, format="event")
    await sink.start()
    await sink.write(events)
    await sink.close()
    assert sink.stats.published == 90 == sink.stats.written and sink.stats.errors == 0
    assert len(server.messages) == 90
    got = {event_key(decode_event(m.data)): m for m in server.messages}
    for e in events:
        m = got[event_key(e)]
        assert decode_event(m.data) == e
        assert m.topic == f"projects/proj/topics/crypto.binance.{e.channel}"
        assert m.attributes["venue"] == e.venue and m.attributes["symbol"] == e.symbol
        assert m.attributes["channel"] == e.channel and m.attributes["sequence"] == str(e.seq)
        assert int(m.attributes["publish_ns"]) > 0
        assert m.ordering_key == ""


async def test_batch_limits_are_honoured(server: PublisherServer) -> None:
    """No Publish request carries more messages than max_messages."""
    sink = _sink(server, max_messages=7, max_latency_ms=50)
    await sink.start()
    await sink.write(make_events(100))
    await sink.close()
    assert len(server.messages) == 100
    assert max(server.request_sizes) <= 7
    assert len(server.request_sizes) >= 100 // 7


async def test_ordering_keys_per_symbol_keep_sequence_order(server: PublisherServer) -> None:
    """With ordering on, the key is venue.symbol and each key's messages arrive in seq order."""
    sink = _sink(server, ordering=True, max_messages=5, max_latency_ms=5)
    await sink.start()
    for chunk in range(0, 150, 30):
        await sink.write(make_events(150)[chunk : chunk + 30])
    await sink.close()
    seqs: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for m in server.messages:
        assert m.ordering_key == f"spot.{m.attributes['symbol']}"
        seqs[(m.topic, m.ordering_key)].append(int(m.attributes["sequence"]))
    assert seqs and all(v == sorted(v) for v in seqs.values())


async def test_flow_control_bounds_outstanding_messages_under_a_slow_server(server: PublisherServer) -> None:
    """A slow server makes write wait: outstanding messages never exceed the flow-control limit."""
    server.delay_s = 0.05
    sink = _sink(server, flow_messages=20, max_messages=5, max_latency_ms=5)
    await sink.start()
    for i in range(0, 200, 50):
        await sink.write(make_events(200)[i : i + 50])
        assert sink.stats.outstanding <= 20
    await sink.close()
    assert sink.stats.outstanding_max <= 20
    assert len(server.messages) == 200 and sink.stats.dropped == 0


async def test_failed_publishes_are_retried_and_counted(server: PublisherServer) -> None:
    """Requests the server rejects are published again; every event still arrives exactly once."""
    server.fail_next = 2
    sink = _sink(server, max_messages=10, max_latency_ms=5, format="event")
    await sink.start()
    events = make_events(60)
    await sink.write(events)
    await sink.close()
    assert server.failed_requests == 2
    assert sink.stats.retried >= 2 and sink.stats.errors == 0
    keys = [event_key(decode_event(m.data)) for m in server.messages]
    assert sorted(keys) == sorted(event_key(e) for e in events)


async def test_publishes_failing_past_max_retries_are_errors_not_hangs(server: PublisherServer) -> None:
    """A server that keeps failing exhausts the retries: counted as errors, close still returns."""
    server.fail_next = 10_000
    sink = _sink(server, max_retries=1, max_messages=10, max_latency_ms=5)
    await sink.start()
    await sink.write(make_events(20))
    await sink.close()
    assert sink.stats.errors == 20 and sink.stats.dropped == 20
    assert sink.stats.retried == 20 and sink.stats.published == 0


async def test_close_waits_for_every_outstanding_publish(server: PublisherServer) -> None:
    """Shutdown returns only after the slow server has acknowledged all messages."""
    server.delay_s = 0.2
    sink = _sink(server, max_messages=50, max_latency_ms=5)
    await sink.start()
    await sink.write(make_events(120))
    assert len(server.messages) < 120  # still in flight when close() is called
    await sink.close()
    assert len(server.messages) == 120 and sink.stats.outstanding == 0


@pytest.mark.parametrize("serializer", ["msgspec", "orjson"])
async def test_row_format_is_what_the_bigquery_subscriptions_write(server: PublisherServer, serializer: str) -> None:
    """By default a message is the event's table row plus event_date, exactly the BigQuery table's columns."""
    import orjson

    from tickpath.gcp.plan import table_schema
    from tickpath.tables import CHANNEL_TABLE, bigquery_row

    events = make_events(30)
    sink = _sink(server, serializer=serializer, max_latency_ms=10)
    await sink.start()
    await sink.write(events)
    await sink.close()
    rows = {
        (r["session"], r["venue"], r["symbol"], r["seq"], m.topic.rsplit(".", 1)[1]): (r, m)
        for m in server.messages
        for r in [orjson.loads(m.data)]
    }
    assert len(rows) == 30
    for e in events:
        row, m = rows[(e.session, e.venue, e.symbol, e.seq, e.channel)]
        assert row["publish_ns"] == int(m.attributes["publish_ns"])
        assert row == bigquery_row(e, publish_ns=row["publish_ns"])
        columns = [c["name"] for c in table_schema(CHANNEL_TABLE[e.channel])]
        assert sorted(row) == sorted(columns)


SESSION = SessionInfo(
    session="run-1",
    venue="futures",
    started_ns=1_700_000_000_123_000_000,
    symbols=["BTCUSDT"],
    channels=["l2", "trades"],
    streams=["btcusdt@depth@100ms", "btcusdt@aggTrade"],
    clock_offset_ns=1_500_000,
    clock_offset_bound_ns=400_000,
)


@pytest.mark.parametrize("fmt", ["row", "event"])
async def test_session_rows_reach_the_session_topic_outside_the_event_counters(
    server: PublisherServer, fmt: str
) -> None:
    """The feed's start and stop rows go to crypto.binance.session, which gcp setup writes into feed_sessions."""
    import orjson

    from tickpath.events import decode_session
    from tickpath.gcp.plan import table_schema
    from tickpath.tables import session_bigquery_row

    sink = _sink(server, format=fmt)
    await sink.start()
    await sink.write_session(SESSION)
    await sink.write_session(msgspec.structs.replace(SESSION, ended_ns=1_700_000_600_000_000_000))
    await sink.close()
    assert [m.topic for m in server.messages] == ["projects/proj/topics/crypto.binance.session"] * 2
    assert [m.attributes["state"] for m in server.messages] == ["started", "stopped"]
    assert all(m.attributes["venue"] == "futures" and m.attributes["session"] == "run-1" for m in server.messages)
    if fmt == "row":
        row = orjson.loads(server.messages[0].data)
        assert row == session_bigquery_row(SESSION.row()) and row["event_date"] == "2023-11-14"
        assert sorted(row) == sorted(c["name"] for c in table_schema("feed_sessions"))
    else:
        assert decode_session(server.messages[1].data).row()["ended_ns"] == 1_700_000_600_000_000_000
    assert (sink.stats.accepted, sink.stats.written, sink.stats.published) == (0, 0, 0)
    assert sink.stats.sessions_published == 2


async def test_a_session_row_that_cannot_be_published_is_retried_then_skipped(server: PublisherServer) -> None:
    """A failing session publish is retried; past max_retries it is logged, and the events still flow."""
    server.fail_next = 1
    sink = _sink(server, max_retries=1, max_latency_ms=10)
    await sink.start()
    await sink.write_session(SESSION)  # fails once, then succeeds
    assert sink.stats.sessions_published == 1
    server.fail_next = 2
    await sink.write_session(SESSION)  # fails twice: given up, not raised
    assert sink.stats.sessions_published == 1
    await sink.write(make_events(5))
    await sink.close()
    assert sink.stats.written == 5 and server.failed_requests == 3
