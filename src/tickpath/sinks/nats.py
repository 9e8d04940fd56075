"""NATS JetStream sink: ``--sink nats://host:4222[,host2:4222]?stream=TICKPATH&replicas=3...``.

Every event goes to subject ``<prefix>.<venue>.<channel>.<symbol>`` with two headers:
``Nats-Msg-Id`` (the event key, so the server drops a retried publish inside the stream's duplicate
window) and ``Tickpath-Publish-Ns`` (wall-clock ns when it was sent, which ``ingest`` stores as
``publish_ns``). The stream is created when absent and left alone when present
(:func:`tickpath.nats.provision.ensure_stream`).

This module is the :class:`~tickpath.sinks.base.Sink` face of :class:`tickpath.nats.publisher.Publisher`,
which does the work: asynchronous publishing with acks and at most ``max_inflight`` in flight, then
back-pressure (``write`` waits up to ``backpressure_s``), then a bounded on-disk
:class:`~tickpath.sinks.spool.Spool` drained in order once NATS answers again. Only a full spool
drops messages; that is counted and logged loudly.

Counters (``stats``): ``written``/``published`` (acknowledged), ``retried`` (re-sent after a failed
or timed-out ack), ``spooled`` (went through the spool), ``spool_pending``, ``duplicates`` (acks the
server flagged as duplicates) and ``dropped``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo, encode_event, encode_session, event_key
from tickpath.logs import log_event
from tickpath.nats.client import connect
from tickpath.nats.frames import MSG_ID_HEADER, PUBLISH_NS_HEADER
from tickpath.nats.internals import install_ack_parser, set_direct_handler, subscription_id
from tickpath.nats.provision import StreamSpec, ensure_stream
from tickpath.nats.publisher import NatsLink, Publisher, PublisherConfig
from tickpath.nats.url import NatsUrl
from tickpath.sinks.base import GAUGE, Sink, SinkStats
from tickpath.sinks.spool import Spool

log = logging.getLogger(__name__)

__all__ = ["PUBLISH_NS_HEADER", "NatsSink", "NatsSinkConfig", "NatsSinkStats", "subject_for"]

_BUFFER_LIMIT = 8 * 1024 * 1024  # the client's reconnect buffer


def subject_for(prefix: str, event: Event) -> str:
    """``<prefix>.<venue>.<channel>.<symbol>``: one subject per stream of events."""
    return f"{prefix}.{event.venue}.{event.channel}.{event.symbol}"


@dataclass(frozen=True)
class NatsSinkConfig:
    """Everything the JetStream sink can be told; each field is also a URL query parameter."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    stream: str = "TICKPATH"
    prefix: str = "tickpath"
    replicas: int = 1
    storage: str = "file"  # file | memory
    retention: str = "limits"  # limits | interest | workqueue
    max_age_s: float = 0.0  # 0 = keep forever
    max_bytes: int = -1
    duplicate_window_s: float = 120.0
    max_inflight: int = 4096
    ack_timeout_s: float = 5.0
    backpressure_s: float = 2.0
    spool: str = ""  # directory; empty = a private temporary directory
    spool_max_mb: float = 512.0
    drain_batch: int = 1024
    connect_timeout_s: float = 5.0
    # How long start-up waits for a cluster with no JetStream leader yet (just started, a node lost).
    wait_stream_s: float = 30.0
    close_timeout_s: float = 30.0
    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.stream_spec()  # replicas, storage, retention, prefix and stream name
        if self.max_inflight < 1 or self.drain_batch < 1:
            raise ConfigError("max_inflight and drain_batch must be at least 1")
        if self.ack_timeout_s <= 0 or self.spool_max_mb <= 0:
            raise ConfigError("ack_timeout_s and spool_max_mb must be positive")
        if not 0 <= self.wait_stream_s < float("inf"):
            raise ConfigError(f"wait_stream_s must be zero or a positive number of seconds, not {self.wait_stream_s}")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> NatsSinkConfig:
        """Parse ``nats://[user:pass@]host:port[,host:port...]?key=value&...``; options override."""
        parsed = NatsUrl.parse(url, "a NATS sink URL")
        kw: dict[str, Any] = {"servers": parsed.server_urls}
        if parsed.user is not None:
            kw.update(user=parsed.user, password=parsed.password or "")
        elif parsed.token is not None:
            kw["token"] = parsed.token
        types = {f.name: f.type for f in fields(cls)}
        for key, value in [*parse_qsl(parsed.query), *options.items()]:
            if key not in types or key == "servers":
                raise ConfigError(f"unknown NATS sink option {key!r}; known: {', '.join(sorted(types))}")
            kw[key] = _coerce(key, types[key], value)
        return cls(**kw)

    def stream_spec(self) -> StreamSpec:
        return StreamSpec(
            self.stream,
            self.prefix,
            self.replicas,
            self.storage,
            self.retention,
            self.max_age_s,
            self.max_bytes,
            self.duplicate_window_s,
        )

    def publisher_config(self) -> PublisherConfig:
        return PublisherConfig(
            self.max_inflight,
            self.ack_timeout_s,
            self.backpressure_s,
            self.drain_batch,
            self.close_timeout_s,
            _BUFFER_LIMIT,
            self.spool_max_mb,
        )

    def auth(self) -> dict[str, str]:
        """nats-py connect options for the user/password or token (else none)."""
        if self.user:
            return {"user": self.user, "password": self.password}
        return {"token": self.token} if self.token else {}


def _coerce(key: str, typ: Any, value: Any) -> Any:
    t = str(typ)
    try:
        if t == "int":
            return int(value)
        if t == "float":
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"NATS sink option {key}={value!r} is not a number") from exc
    return str(value)


@dataclass
class NatsSinkStats(SinkStats):
    """The sink's counters (see the module docstring); ``spool_pending`` and ``inflight`` are levels."""

    published: int = 0
    retried: int = 0
    spooled: int = 0
    spool_pending: int = field(default=0, metadata=GAUGE)
    duplicates: int = 0
    inflight: int = field(default=0, metadata=GAUGE)

    @property
    def pending(self) -> int:
        return self.spool_pending


class NatsSink(Sink):
    """Publishes events to a JetStream stream with acks, bounded in-flight, spool and de-dup ids."""

    name = "nats"
    stats: NatsSinkStats

    def __init__(self, config: NatsSinkConfig, *, clock: Clock = DEFAULT_CLOCK) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self._nc: Any = None
        self._spool: Spool | None = None
        self._publisher: Publisher | None = None
        self._closed = False
        self.stats = NatsSinkStats()

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = DEFAULT_CLOCK, **options: Any) -> NatsSink:
        """Build a sink from ``nats://host:4222?stream=...``; ``options`` override query parameters."""
        return cls(NatsSinkConfig.from_url(url, **options), clock=clock)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the spool, connect, make sure the stream exists, then start publishing."""
        cfg = self.config
        spool_dir = cfg.spool or tempfile.mkdtemp(prefix="tickpath-spool-")
        self._spool = Spool(spool_dir, max_bytes=int(cfg.spool_max_mb * 1024 * 1024))
        self.stats.spool_pending = len(self._spool)
        if len(self._spool):  # a previous run left messages behind: they go out first, in order
            log_event(log, logging.WARNING, "nats_spool_resumed", records=len(self._spool), path=spool_dir)
        try:
            self._nc = await self._connect()
        except BaseException:
            self._remove_empty_spool()
            raise
        try:
            js = self._nc.jetstream(timeout=cfg.connect_timeout_s)
            await ensure_stream(js, cfg.stream_spec(), cfg.servers, wait_s=cfg.wait_stream_s, clock=self.clock)
            await self._start_publisher()
        except BaseException:
            await self._nc.close()
            self._remove_empty_spool()
            raise

    async def _connect(self) -> Any:
        async def disconnected() -> None:
            if self._publisher is not None:
                self._publisher.on_disconnected()
            if not self._closed:
                log_event(log, logging.WARNING, "nats_disconnected")

        async def reconnected() -> None:
            if self._publisher is not None:
                self._publisher.on_connected()
            log_event(log, logging.INFO, "nats_reconnected", server=str(self._nc.connected_url.netloc))

        return await connect(
            self.config.servers,
            timeout_s=self.config.connect_timeout_s,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            pending_size=_BUFFER_LIMIT,
            skip_subject_validation=True,
            **self.config.auth(),
        )

    async def _start_publisher(self) -> None:
        """Subscribe the ack inbox with the fast ack parsers, then start the publisher on it.

        nats-py would build a ``Msg``, queue it and await a callback for each reply; at 100k acks/s
        that is most of the sink's CPU. A read made only of plain acks goes to ``on_acks`` in one
        call (about 0.9 instead of 2.7 CPU-us per ack); anything unusual in a read (a 503 status, a
        PING) goes frame by frame to ``on_ack``.
        """
        assert self._spool is not None
        inbox = f"{self._nc.new_inbox()}."
        pub = Publisher(
            NatsLink(self._nc),
            inbox,
            self._spool,
            self.stats,
            self.config.publisher_config(),
            clock=self.clock,
            log=log,
        )

        async def on_msg(msg: Any) -> None:  # reached only if a frame bypasses the direct handler
            hdr = b"NATS/1.0 503" if msg.headers and msg.headers.get("Status") == "503" else None
            pub.on_ack(msg.subject.encode(), b"", msg.data, hdr)

        sub = await self._nc.subscribe(
            f"{inbox}*", cb=on_msg, pending_msgs_limit=1_000_000, pending_bytes_limit=512 * 1024 * 1024
        )
        sid = subscription_id(sub)
        set_direct_handler(self._nc, sid, pub.on_ack)
        install_ack_parser(self._nc, sid, inbox.encode(), pub.on_acks)
        self._publisher = pub
        pub.start()

    async def flush(self) -> None:
        """Wait until every accepted message is acknowledged by JetStream or parked in the spool.

        Bounded by ``ack_timeout_s`` even when NATS is down (unacknowledged messages then go to the
        spool), so the feed's periodic flush never stalls on an outage. :meth:`drain` waits for the
        spool too.
        """
        if self._publisher is not None:
            await self._publisher.wait_acked()

    async def drain(self) -> None:
        """Wait until every accepted message is acknowledged, spool included (unbounded)."""
        if self._publisher is not None:
            await self._publisher.wait_idle()

    async def close(self) -> None:
        """Drain the spool and in-flight acks (up to ``close_timeout_s``), then disconnect.

        Whatever the spool still holds stays on disk (and is counted in ``spool_pending``); a later
        run with the same ``spool=`` directory sends it first.
        """
        if self._closed:
            return
        self._closed = True
        if self._publisher is not None:
            await self._publisher.close()
        if self._nc is not None:
            try:
                await self._nc.close()
            except Exception as exc:
                log_event(log, logging.DEBUG, "nats_close_failed", error=repr(exc))
        if self._spool is not None:
            self.stats.spool_pending = len(self._spool)
            self._spool.close()
            if len(self._spool):
                log_event(log, logging.WARNING, "nats_spool_left", records=len(self._spool), spool=self._spool_path())
            else:
                self._remove_empty_spool()
        if self.stats.dropped:
            log_event(
                log,
                logging.ERROR,
                "nats_sink_dropped",
                dropped=self.stats.dropped,
                spool=self._spool_path(),
                spool_max_mb=self.config.spool_max_mb,
            )

    def _spool_path(self) -> str:
        return str(self._spool.directory) if self._spool else ""

    def _remove_empty_spool(self) -> None:
        """A spool directory this sink made itself (no ``spool=``) goes when it holds nothing."""
        if self.config.spool or self._spool is None or len(self._spool):
            return
        self._spool.close()
        shutil.rmtree(self._spool.directory, ignore_errors=True)

    def undelivered(self) -> str | None:
        n = len(self._spool) if self._spool is not None else 0
        if not n:
            return None
        return (
            f"{n:,} events wait in the NATS sink's spool at {self._spool_path()}: a feed with "
            f"spool={self._spool_path()} sends them first"
        )

    # -- writing -----------------------------------------------------------------------------
    async def write(self, batch: Sequence[Event]) -> None:
        """Publish a batch in order; awaits for in-flight slots (back-pressure), then spools."""
        if self._publisher is None:
            raise SinkError("NATS sink used before start()")
        self.stats.accepted += len(batch)
        prefix = self.config.prefix
        await self._publisher.publish(
            [(f"{prefix}.{e.venue}.{e.channel}.{e.symbol}", event_key(e), encode_event(e)) for e in batch]
        )

    @property
    def buffered(self) -> int:
        """In flight (awaiting an ack) plus parked in the spool: held, neither written nor dropped."""
        inflight = self._publisher.inflight if self._publisher is not None else 0
        return inflight + (len(self._spool) if self._spool is not None else 0)

    async def write_session(self, session: SessionInfo) -> None:
        """Publish the feed's ``feed_sessions`` row on ``<prefix>.<venue>.session`` for ``ingest``.

        Two per run (start and stop), so it takes JetStream's plain publish and awaits its ack; it
        stays out of the event counters. A row that cannot be published is logged and skipped: the
        events are unaffected, and ``dq`` on the ingested store then lacks the clock offset.
        """
        if self._nc is None:
            raise SinkError("NATS sink used before start()")
        try:
            js = self._nc.jetstream(timeout=self.config.ack_timeout_s)
            await js.publish(
                f"{self.config.prefix}.{session.venue}.session",
                encode_session(session),
                headers={MSG_ID_HEADER: session.key()},
            )
        except Exception as exc:
            log_event(
                log,
                logging.WARNING,
                "nats_session_not_published",
                session=session.session,
                venue=session.venue,
                error=exc,
            )
