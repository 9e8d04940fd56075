"""Google Pub/Sub sink: ``--sink pubsub://PROJECT/TOPIC-PREFIX?ordering=1&max_messages=2500...``.

Events go to topic ``<prefix>.<channel>`` (default prefix ``crypto.binance``, so
``crypto.binance.trades``, ``crypto.binance.ticker``, ``crypto.binance.l2``). With ``format=row`` (the
default) each message is the event's table row (:func:`tickpath.tables.bigquery_row`: the same columns
as DuckDB and Parquet plus ``event_date``), which is what the BigQuery subscriptions that
``tickpath gcp setup`` creates write straight into the tables; ``format=event`` sends the tagged event
JSON of every bus (:func:`tickpath.events.encode_event`). Either is serialised with msgspec or orjson
(``serializer=``), same bytes. Messages carry
attributes ``venue``, ``symbol``, ``channel``, ``sequence``, ``publish_ns`` and, with ``ordering=1``,
the ordering key ``<venue>.<symbol>``.

The feed's ``feed_sessions`` row (its subscriptions and clock offset, sent when the connections open
and again at stop) goes to topic ``<prefix>.session``, as a BigQuery row or as the tagged session
JSON (``format=event``), outside the event counters; ``tickpath gcp setup`` subscribes the
``feed_sessions`` table to it, so dq on BigQuery knows each stream's cadence and the clock offset.

It drives the real ``google-cloud-pubsub`` publisher: batch settings (default 2,500 messages, 100 ms,
1 MB) and publisher flow control with ``BLOCK`` (default 10,000 messages / 64 MB outstanding), so a
slow Pub/Sub makes ``write`` wait (``publish`` blocks in a worker thread) instead of growing memory or
dropping. Every publish future is checked: a failure is re-published (after ``resume_publish`` for
its ordering key) up to ``max_retries`` times from a retry thread and counted as ``retried``; only
then is it counted in ``errors`` and logged. ``close`` waits for every outstanding publish,
including retries, before stopping the client.

``endpoint=HOST:PORT`` talks plaintext gRPC to that address (an emulator or a test server); the
``PUBSUB_EMULATOR_HOST`` variable works as usual; otherwise Application Default Credentials are used.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import orjson

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo, encode_event, encode_session
from tickpath.logs import log_event
from tickpath.sinks.base import GAUGE, Sink, SinkStats
from tickpath.tables import bigquery_row, session_bigquery_row

log = logging.getLogger(__name__)

__all__ = ["PubSubSink", "PubSubSinkConfig", "PubSubSinkStats"]


@dataclass(frozen=True)
class PubSubSinkConfig:
    """Everything the Pub/Sub sink can be told; each field is also a URL query parameter."""

    project: str
    topic_prefix: str = "crypto.binance"
    max_messages: int = 2500  # batch settings
    max_latency_ms: float = 100.0
    max_bytes: int = 1_000_000
    flow_messages: int = 10_000  # publisher flow control (BLOCK): outstanding messages ...
    flow_bytes: int = 64 * 1024 * 1024  # ... and bytes
    ordering: bool = False  # ordering key per venue.symbol
    serializer: str = "msgspec"  # msgspec | orjson (same JSON either way)
    format: str = "row"  # row: BigQuery table row (+ event_date); event: tagged event JSON
    max_retries: int = 5
    endpoint: str = ""  # plaintext gRPC HOST:PORT (emulator, tests)
    close_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.project or "/" in self.project:
            raise ConfigError(f"invalid Pub/Sub project {self.project!r}")
        if not self.topic_prefix:
            raise ConfigError("empty Pub/Sub topic prefix")
        if self.max_messages < 1 or self.max_bytes < 1 or self.max_latency_ms < 0:
            raise ConfigError("batch settings must be positive")
        if self.max_bytes > 10_000_000:
            raise ConfigError("Pub/Sub rejects requests above 10,000,000 bytes: lower max_bytes")
        if self.flow_messages < 1 or self.flow_bytes < self.max_bytes:
            raise ConfigError("flow control needs at least 1 message and one batch worth of bytes")
        if self.serializer not in ("msgspec", "orjson"):
            raise ConfigError(f"serializer must be msgspec or orjson, not {self.serializer!r}")
        if self.format not in ("row", "event"):
            raise ConfigError(f"format must be row or event, not {self.format!r}")
        if self.max_retries < 0:
            raise ConfigError("max_retries cannot be negative")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PubSubSinkConfig:
        """Parse ``pubsub://PROJECT[/TOPIC-PREFIX][?key=value...]``; options override the query."""
        parts = urlsplit(url)
        if parts.scheme != "pubsub":
            raise ConfigError(f"a Pub/Sub sink URL starts with pubsub://, not {url!r}")
        kw: dict[str, Any] = {"project": parts.netloc}
        prefix = parts.path.strip("/")
        if prefix:
            kw["topic_prefix"] = prefix
        types = {f.name: str(f.type) for f in fields(cls)}
        for key, value in [*parse_qsl(parts.query), *options.items()]:
            if key not in types or key == "project":
                raise ConfigError(f"unknown Pub/Sub sink option {key!r}; known: {', '.join(sorted(types))}")
            kw[key] = _coerce(key, types[key], value)
        return cls(**kw)


def _coerce(key: str, typ: str, value: Any) -> Any:
    try:
        if typ == "int":
            return int(value)
        if typ == "float":
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Pub/Sub sink option {key}={value!r} is not a number") from exc
    if typ == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"Pub/Sub sink option {key}={value!r} is not a boolean")
    return str(value)


def _orjson_encode(event: Event) -> bytes:
    return orjson.dumps(msgspec.to_builtins(event))


_json = msgspec.json.Encoder()


def _row_encoder(serializer: str) -> Callable[[Event, int], bytes]:
    dumps: Callable[[Any], bytes] = orjson.dumps if serializer == "orjson" else _json.encode

    def encode(event: Event, publish_ns: int) -> bytes:
        return dumps(bigquery_row(event, publish_ns=publish_ns))

    return encode


def _event_encoder(serializer: str) -> Callable[[Event, int], bytes]:
    enc = encode_event if serializer == "msgspec" else _orjson_encode
    return lambda event, _publish_ns: enc(event)


def _backoff_s(failures_before: int) -> float:
    """Wait before re-publishing after ``failures_before`` + 1 failures: 50 ms doubling, at most 2 s."""
    return min(0.05 * 2.0**failures_before, 2.0)


# One message: (topic, data, ordering key, attributes, attempt)
_Msg = tuple[str, bytes, str, dict[str, str], int]


@dataclass
class PubSubSinkStats(SinkStats):
    """The sink's counters; ``outstanding`` (publishes not settled yet) and its peak are levels."""

    published: int = 0
    retried: int = 0
    outstanding: int = field(default=0, metadata=GAUGE)
    outstanding_max: int = field(default=0, metadata=GAUGE)
    sessions_published: int = 0


class PubSubSink(Sink):
    """Publishes events to Pub/Sub topics with batching, blocking flow control and checked futures."""

    name = "pubsub"
    stats: PubSubSinkStats

    def __init__(
        self,
        config: PubSubSinkConfig,
        *,
        clock: Clock = DEFAULT_CLOCK,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self._client_factory = client_factory
        self._client: Any = None
        self._encode = (_row_encoder if config.format == "row" else _event_encoder)(config.serializer)
        self._json_dumps: Callable[[Any], bytes] = orjson.dumps if config.serializer == "orjson" else _json.encode
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._outstanding = 0
        self._retry_q: queue.Queue[_Msg | None] = queue.Queue()
        self._retry_thread: threading.Thread | None = None
        self._topics: dict[str, str] = {}
        self.stats = PubSubSinkStats()

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = DEFAULT_CLOCK, **options: Any) -> PubSubSink:
        """Build a sink from ``pubsub://PROJECT/PREFIX?...``; ``options`` override query parameters."""
        return cls(PubSubSinkConfig.from_url(url, **options), clock=clock)

    def topic_for(self, channel: str) -> str:
        """Full topic path of a channel: ``projects/P/topics/<prefix>.<channel>``."""
        t = self._topics.get(channel)
        if t is None:
            t = self._topics[channel] = f"projects/{self.config.project}/topics/{self.config.topic_prefix}.{channel}"
        return t

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the publisher client (no network traffic until the first publish)."""
        try:
            self._client = await asyncio.to_thread(self._make_client)
        except ConfigError:
            raise
        except Exception as exc:
            raise SinkError(f"cannot create the Pub/Sub publisher for {self.config.project}: {exc}") from exc
        self._retry_thread = threading.Thread(target=self._retry_loop, name="pubsub-retry", daemon=True)
        self._retry_thread.start()

    def _make_client(self) -> Any:
        from google.cloud import pubsub_v1
        from google.cloud.pubsub_v1 import types

        cfg = self.config
        batch = types.BatchSettings(
            max_bytes=cfg.max_bytes, max_latency=cfg.max_latency_ms / 1000.0, max_messages=cfg.max_messages
        )
        options = types.PublisherOptions(
            enable_message_ordering=cfg.ordering,
            flow_control=types.PublishFlowControl(
                message_limit=cfg.flow_messages,
                byte_limit=cfg.flow_bytes,
                limit_exceeded_behavior=types.LimitExceededBehavior.BLOCK,
            ),
        )
        kwargs: dict[str, Any] = {}
        if cfg.endpoint:
            import grpc
            from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

            kwargs["transport"] = PublisherGrpcTransport(channel=grpc.insecure_channel(cfg.endpoint))
        factory = self._client_factory or pubsub_v1.PublisherClient
        return factory(batch_settings=batch, publisher_options=options, **kwargs)

    async def write(self, batch: Sequence[Event]) -> None:
        """Hand a batch to the publisher; awaits while flow control blocks (back-pressure)."""
        if self._client is None:
            raise SinkError("Pub/Sub sink used before start()")
        self.stats.accepted += len(batch)
        now_ns = self.clock.wall_ns()
        pub_ns = str(now_ns)
        ordering = self.config.ordering
        msgs: list[_Msg] = []
        for e in batch:
            attrs = {
                "venue": e.venue,
                "symbol": e.symbol,
                "channel": e.channel,
                "sequence": str(e.seq),
                "publish_ns": pub_ns,
            }
            key = f"{e.venue}.{e.symbol}" if ordering else ""
            msgs.append((self.topic_for(e.channel), self._encode(e, now_ns), key, attrs, 0))
        await asyncio.to_thread(self._publish_all, msgs)

    def _publish_all(self, msgs: list[_Msg]) -> None:
        for m in msgs:
            self._publish(m)

    def _publish(self, m: _Msg, *, new: bool = True) -> None:
        if new:  # a retry is still counted as outstanding from its first attempt
            with self._lock:
                self._outstanding += 1
        try:
            # Blocks here while flow control says the client holds enough already.
            future = self._client.publish(m[0], m[1], ordering_key=m[2], **m[3])
        except Exception as exc:
            self._settle(m, exc)
            return
        with self._lock:
            stats = self.stats
            stats.outstanding = self._outstanding
            if self._outstanding > stats.outstanding_max:
                stats.outstanding_max = self._outstanding
        future.add_done_callback(lambda f, m=m: self._settle(m, f.exception()))

    def _settle(self, m: _Msg, exc: BaseException | None) -> None:
        """Runs on the client's threads when a publish completes: count it, or queue a retry."""
        retry = exc is not None and m[4] < self.config.max_retries
        with self._lock:
            if exc is None:
                self.stats.written += 1
                self.stats.published += 1
            elif retry:
                self.stats.retried += 1
            else:
                self.stats.errors += 1
                self.stats.dropped += 1
            if not retry:
                self._outstanding -= 1
                self.stats.outstanding = self._outstanding
                self._settled.notify_all()
        if retry:
            self._retry_q.put((m[0], m[1], m[2], m[3], m[4] + 1))
        elif exc is not None:
            log_event(
                log,
                logging.ERROR,
                "pubsub_publish_failed",
                topic=m[0],
                attempts=m[4] + 1,
                error=repr(exc),
                failed_total=self.stats.errors,
            )

    def _retry_loop(self) -> None:
        while True:
            m = self._retry_q.get()
            if m is None:
                return
            time.sleep(_backoff_s(m[4] - 1))  # back off before trying again
            if m[2]:
                # A failed publish pauses its ordering key until told to resume.
                self._client.resume_publish(m[0], m[2])
            self._publish(m, new=False)

    @property
    def buffered(self) -> int:
        """Handed to the publisher and not settled yet (retries included): held, not yet written."""
        return self._outstanding

    async def write_session(self, session: SessionInfo) -> None:
        """Publish the feed's ``feed_sessions`` row on ``<prefix>.session`` and wait for it.

        Two per run, so each is awaited, retried like an event (up to ``max_retries``) and kept out
        of the event counters. A row that cannot be published is logged and skipped: the events are
        unaffected, and dq on BigQuery then lacks the run's cadences and clock offset.
        """
        if self._client is None:
            raise SinkError("Pub/Sub sink used before start()")
        data = (
            self._json_dumps(session_bigquery_row(session.row()))
            if self.config.format == "row"
            else encode_session(session)
        )
        attrs = {
            "venue": session.venue,
            "session": session.session,
            "channel": "session",
            "state": "stopped" if session.ended_ns is not None else "started",
        }
        await asyncio.to_thread(self._publish_session, self.topic_for("session"), data, attrs)

    def _publish_session(self, topic: str, data: bytes, attrs: dict[str, str]) -> None:
        for attempt in range(self.config.max_retries + 1):
            try:
                self._client.publish(topic, data, **attrs).result(timeout=self.config.close_timeout_s)
                with self._lock:
                    self.stats.sessions_published += 1
                return
            except Exception as exc:
                if attempt == self.config.max_retries:
                    log_event(
                        log,
                        logging.WARNING,
                        "pubsub_session_not_published",
                        topic=topic,
                        session=attrs["session"],
                        venue=attrs["venue"],
                        attempts=attempt + 1,
                        error=repr(exc),
                    )
                    return
                time.sleep(_backoff_s(attempt))

    async def flush(self) -> None:
        """Wait until every message handed to the publisher (and its retries) has settled."""
        if self._client is not None:
            await asyncio.to_thread(self._wait_settled, None)

    def _wait_settled(self, timeout: float | None) -> bool:
        with self._settled:
            return self._settled.wait_for(lambda: self._outstanding == 0, timeout)

    async def close(self) -> None:
        """Wait for all outstanding publishes (up to ``close_timeout_s``), then stop the client."""
        if self._client is None:
            return
        done = await asyncio.to_thread(self._wait_settled, self.config.close_timeout_s)
        if not done:
            log_event(log, logging.ERROR, "pubsub_close_timeout", outstanding=self._outstanding)
        self._retry_q.put(None)
        client, self._client = self._client, None
        await asyncio.to_thread(client.stop)
        if self._retry_thread is not None:
            self._retry_thread.join(timeout=5)
        if not done:
            raise SinkError(
                f"{self._outstanding} Pub/Sub publishes still outstanding after {self.config.close_timeout_s:.0f} s"
            )
