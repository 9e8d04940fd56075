"""NATS JetStream sink: ``--sink nats://host:4222[,host2:4222]?stream=TICKPATH&replicas=3...``.

Every event goes to subject ``<prefix>.<venue>.<channel>.<symbol>`` with two headers:
``Nats-Msg-Id`` (the event key, so the server drops a retried publish inside the stream's duplicate
window) and ``Tickpath-Publish-Ns`` (wall-clock ns when it was sent, which ``ingest`` stores as
``publish_ns``). The stream is created when absent and left alone when present.

Publishing is asynchronous: each message carries a reply subject under one inbox subscription, the
server's ack settles it, and at most ``max_inflight`` are unacknowledged at once. When NATS is down
or slow the sink degrades in two steps:

1. back-pressure: ``write`` waits (up to ``backpressure_s``) for in-flight slots, which slows the
   feed's bounded queues rather than growing memory;
2. spool: after that, and for any message whose ack failed or timed out, messages go to a bounded
   on-disk :class:`~tickpath.sinks.spool.Spool`. While the spool holds anything, new messages are
   appended behind it, and a drainer task publishes it in order once NATS answers again, committing
   only acknowledged batches. Only a full spool drops messages; that is counted and logged loudly.

Counters (``stats``): ``written``/``published`` (acknowledged), ``retried`` (re-sent after a failed
or timed-out ack), ``spooled`` (went through the spool), ``spool_pending``, ``duplicates`` (acks the
server flagged as duplicates) and ``dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, SinkError
from tickpath.events import Event, SessionInfo, encode_event, encode_session, event_key
from tickpath.logs import log_event
from tickpath.natsproto import (
    PUBLISH_NS_HEADER,
    buffered_bytes,
    check_name,
    check_prefix,
    connect,
    covers,
    flush_frames,
    install_ack_parser,
    install_fast_parser,
    jetstream_unavailable,
    queue_frames,
    set_direct_handler,
    split_url,
)
from tickpath.sinks.base import GAUGE, Sink, SinkStats
from tickpath.sinks.spool import Spool

log = logging.getLogger(__name__)

# connect, install_fast_parser and set_direct_handler live in tickpath.natsproto (re-exported here).
__all__ = [
    "PUBLISH_NS_HEADER",
    "NatsSink",
    "NatsSinkConfig",
    "NatsSinkStats",
    "connect",
    "install_fast_parser",
    "set_direct_handler",
    "subject_for",
]

MSG_ID_HEADER = "Nats-Msg-Id"
_REC = struct.Struct(">HH")
# HPUB <subject> <reply> <header bytes> <total bytes>, the header block, the payload.
_FRAME = b"HPUB %s %s%d %d %d\r\nNATS/1.0\r\nNats-Msg-Id: %s\r\nTickpath-Publish-Ns: %d\r\n\r\n%s\r\n"
_HDR_FIXED = b"NATS/1.0\r\nNats-Msg-Id: \r\nTickpath-Publish-Ns: \r\n\r\n"


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
    close_timeout_s: float = 30.0
    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.replicas > 5:
            raise ConfigError(f"JetStream replicas must be 1..5, not {self.replicas}")
        if self.storage not in ("file", "memory"):
            raise ConfigError(f"storage must be 'file' or 'memory', not {self.storage!r}")
        if self.retention not in ("limits", "interest", "workqueue"):
            raise ConfigError(f"retention must be limits, interest or workqueue, not {self.retention!r}")
        if self.max_inflight < 1 or self.drain_batch < 1:
            raise ConfigError("max_inflight and drain_batch must be at least 1")
        check_prefix(self.prefix)
        check_name("stream", self.stream)
        if self.ack_timeout_s <= 0 or self.spool_max_mb <= 0:
            raise ConfigError("ack_timeout_s and spool_max_mb must be positive")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> NatsSinkConfig:
        """Parse ``nats://[user:pass@]host:port[,host:port...]?key=value&...``; options override."""
        servers, credentials, query = split_url(url, "a NATS sink URL")
        kw: dict[str, Any] = {"servers": servers, **credentials}
        types = {f.name: f.type for f in fields(cls)}
        for key, value in [*parse_qsl(query), *options.items()]:
            if key not in types or key == "servers":
                raise ConfigError(f"unknown NATS sink option {key!r}; known: {', '.join(sorted(types))}")
            kw[key] = _coerce(key, types[key], value)
        return cls(**kw)


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


class _Batch:
    """Acknowledgement tracking for one drained spool batch."""

    __slots__ = ("done", "failed", "remaining")

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.failed = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, ok: bool) -> None:
        if not ok:
            self.failed += 1
        self.remaining -= 1
        if self.remaining == 0 and not self.done.done():
            self.done.set_result(None)


# (subject, msg id, payload) of one message, as published and as spooled.
_Msg = tuple[str, str, bytes]


def _pack(m: _Msg) -> bytes:
    s, k = m[0].encode(), m[1].encode()
    return _REC.pack(len(s), len(k)) + s + k + m[2]


def _unpack(rec: bytes) -> _Msg:
    ls, lk = _REC.unpack_from(rec)
    o = _REC.size
    return rec[o : o + ls].decode(), rec[o + ls : o + ls + lk].decode(), rec[o + ls + lk :]


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
        self._inbox = ""
        self._inbox_len = 0
        self._buffer_limit = 8 * 1024 * 1024
        self._next_id = 0
        # reply id -> (message, monotonic send time, drained batch or None); insertion = send order
        self._pending: dict[int, tuple[_Msg, int, _Batch | None]] = {}
        self._space = asyncio.Event()
        self._idle = asyncio.Event()  # nothing in flight and nothing spooled
        self._no_pending = asyncio.Event()  # nothing in flight
        self._connected = asyncio.Event()
        self._spool: Spool | None = None
        self._spooling = False
        self._wake_drainer = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._last_drop_log = 0.0
        self._closed = False
        self.stats = NatsSinkStats()

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = DEFAULT_CLOCK, **options: Any) -> NatsSink:
        """Build a sink from ``nats://host:4222?stream=...``; ``options`` override query parameters."""
        return cls(NatsSinkConfig.from_url(url, **options), clock=clock)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, make sure the stream exists, open the spool and start the drain and ack timers."""
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError, ServiceUnavailableError

        cfg = self.config
        spool_dir = cfg.spool or tempfile.mkdtemp(prefix="tickpath-spool-")
        self._spool = Spool(spool_dir, max_bytes=int(cfg.spool_max_mb * 1024 * 1024))
        self.stats.spool_pending = len(self._spool)
        if len(self._spool):
            # A previous run left messages behind: they go out first, in order.
            self._spooling = True
            log_event(log, logging.WARNING, "nats_spool_resumed", records=len(self._spool), path=spool_dir)

        async def _disconnected() -> None:
            self._connected.clear()
            if not self._closed:
                log_event(log, logging.WARNING, "nats_disconnected")

        async def _reconnected() -> None:
            self._connected.set()
            self._wake_drainer.set()
            log_event(log, logging.INFO, "nats_reconnected", server=str(self._nc.connected_url.netloc))

        auth: dict[str, Any] = {}
        if cfg.user:
            auth = {"user": cfg.user, "password": cfg.password}
        elif cfg.token:
            auth = {"token": cfg.token}
        try:
            self._nc = await connect(
                cfg.servers,
                timeout_s=cfg.connect_timeout_s,
                disconnected_cb=_disconnected,
                reconnected_cb=_reconnected,
                pending_size=self._buffer_limit,
                skip_subject_validation=True,
                **auth,
            )
        except BaseException:
            self._remove_empty_spool()
            raise
        self._connected.set()
        js = self._nc.jetstream(timeout=cfg.connect_timeout_s)
        try:
            try:
                info = await js.stream_info(cfg.stream)
                subjects = list(info.config.subjects or [])
                if not any(covers(s, cfg.prefix) for s in subjects):
                    # Left alone, as promised, but told: every publish would go unanswered and spool.
                    raise ConfigError(
                        f"JetStream stream {cfg.stream} exists with subjects {', '.join(subjects) or '(none)'}, "
                        f"which do not take this sink's {cfg.prefix}.>; use ?stream= for another stream, "
                        f"?prefix= for subjects it takes, or add {cfg.prefix}.> to its subjects"
                    )
            except NotFoundError:
                await js.add_stream(
                    StreamConfig(
                        name=cfg.stream,
                        subjects=[f"{cfg.prefix}.>"],
                        retention=RetentionPolicy(cfg.retention),
                        storage=StorageType(cfg.storage),
                        num_replicas=cfg.replicas,
                        duplicate_window=cfg.duplicate_window_s,
                        max_age=cfg.max_age_s or None,
                        max_bytes=cfg.max_bytes,
                    )
                )
                log_event(
                    log,
                    logging.INFO,
                    "nats_stream_created",
                    stream=cfg.stream,
                    replicas=cfg.replicas,
                    storage=cfg.storage,
                )
        except ConfigError:
            await self._nc.close()
            self._remove_empty_spool()
            raise
        except Exception as exc:
            await self._nc.close()
            self._remove_empty_spool()
            if isinstance(exc, ServiceUnavailableError):  # no responders on $JS.API: no JetStream
                raise jetstream_unavailable(cfg.servers) from exc
            raise SinkError(f"cannot create or inspect JetStream stream {cfg.stream}: {exc}") from exc
        self._inbox = f"{self._nc.new_inbox()}."
        self._inbox_len = len(self._inbox)
        sub = await self._nc.subscribe(
            f"{self._inbox}*", cb=self._on_ack, pending_msgs_limit=1_000_000, pending_bytes_limit=512 * 1024 * 1024
        )
        if hasattr(self._nc, "_process_msg") and isinstance(getattr(sub, "_id", None), int):
            self._install_fast_acks(sub._id)
        self._space.set()
        self._idle.set()
        self._no_pending.set()
        self._tasks = [
            asyncio.create_task(self._drainer(), name="nats-spool-drainer"),
            asyncio.create_task(self._sweeper(), name="nats-ack-timer"),
        ]

    async def flush(self) -> None:
        """Wait until every accepted message is acknowledged by JetStream or parked in the spool.

        Bounded by ``ack_timeout_s`` even when NATS is down (unacknowledged messages then go to the
        spool), so the feed's periodic flush never stalls on an outage. :meth:`drain` waits for the
        spool too.
        """
        if self._nc is None:
            return
        await self._no_pending.wait()

    async def drain(self) -> None:
        """Wait until every accepted message is acknowledged, spool included (unbounded)."""
        if self._nc is None:
            return
        await self._idle.wait()

    async def close(self) -> None:
        """Drain the spool and in-flight acks (up to ``close_timeout_s``), then disconnect.

        Whatever the spool still holds stays on disk (and is counted in ``spool_pending``); a later
        run with the same ``spool=`` directory sends it first.
        """
        if self._closed:
            return
        self._closed = True
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._drain_all(), self.config.close_timeout_s)
            except TimeoutError:
                log_event(
                    log,
                    logging.ERROR,
                    "nats_close_timeout",
                    inflight=len(self._pending),
                    spool_pending=len(self._spool or ()),
                    spool=self._spool_path(),
                )
            for t in self._tasks:
                t.cancel()
            for t in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            # Anything still unacknowledged goes to the spool so it is not lost.
            self._fail_pending(list(self._pending))
            with contextlib.suppress(Exception):
                await self._nc.close()
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

    async def _drain_all(self) -> None:
        while self._pending or self._spooling:
            self._wake_drainer.set()
            await asyncio.sleep(0.01)

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
        if self._nc is None:
            raise SinkError("NATS sink used before start()")
        self.stats.accepted += len(batch)
        prefix = self.config.prefix
        msgs = [(f"{prefix}.{e.venue}.{e.channel}.{e.symbol}", event_key(e), encode_event(e)) for e in batch]
        async with self._lock:
            i = 0
            while i < len(msgs):
                if self._spooling:
                    self._to_spool(msgs[i:])
                    return
                if len(self._pending) >= self.config.max_inflight and not await self._wait_space():
                    log_event(
                        log,
                        logging.WARNING,
                        "nats_backpressure_spooling",
                        inflight=len(self._pending),
                        waited_s=self.config.backpressure_s,
                    )
                    self._to_spool(msgs[i:])
                    return
                room = self.config.max_inflight - len(self._pending)
                chunk = msgs[i : i + room]
                sent = await self._send_many(chunk, None)
                if sent < len(chunk):  # the client refused (disconnected, buffer full)
                    self._to_spool(chunk[sent:] + msgs[i + room :])
                    return
                i += len(chunk)

    @property
    def buffered(self) -> int:
        """In flight (awaiting an ack) plus parked in the spool: held, neither written nor dropped."""
        return len(self._pending) + (len(self._spool) if self._spool is not None else 0)

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
                headers={"Nats-Msg-Id": session.key()},
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

    async def _wait_space(self) -> bool:
        deadline = time.monotonic() + self.config.backpressure_s
        while len(self._pending) >= self.config.max_inflight:
            self._space.clear()
            left = deadline - time.monotonic()
            if left <= 0 or self._spooling:
                return not self._spooling and len(self._pending) < self.config.max_inflight
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._space.wait(), left)
        return not self._spooling

    async def _send_many(self, msgs: Sequence[_Msg], batch: _Batch | None) -> int:
        """Publish messages with reply subjects; returns how many the client took.

        The HPUB frames are built here and queued on the client's write buffer in one go (nats-py's
        ``publish`` costs a future and a header regex per message, which caps it far below the
        100k msg/s the feed needs); the client's flusher writes them and its reconnect logic
        replays the buffer after a reconnect, exactly as for ``publish``.
        """
        nc = self._nc
        if nc.is_closed:
            return 0
        now = self.clock.monotonic_ns()
        pub_ns = self.clock.wall_ns()
        inbox = self._inbox
        pending = self._pending
        limit = self._buffer_limit
        frames: list[bytes] = []
        self._idle.clear()
        self._no_pending.clear()
        size = 0
        n = 0
        # The header block is rendered inside the frame; only the msg id's length varies.
        inbox_b = inbox.encode()
        hdr_base = len(_HDR_FIXED) + len(b"%d" % pub_ns)
        connected = nc.is_connected  # no await below: it cannot change during the loop
        buffered = buffered_bytes(nc)
        rid = self._next_id
        for m in msgs:
            if not connected and buffered + size > limit:
                break  # disconnected and the reconnect buffer is full: the caller spools the rest
            rid += 1
            key = m[1].encode()
            data = m[2]
            hlen = hdr_base + len(key)
            frame = _FRAME % (m[0].encode(), inbox_b, rid, hlen, hlen + len(data), key, pub_ns, data)
            frames.append(frame)
            size += len(frame)
            pending[rid] = (m, now, batch)
            n += 1
        self._next_id = rid
        if frames:  # one buffer for the transport instead of one small write per message
            queue_frames(nc, b"".join(frames), n)
        if n:
            try:
                await flush_frames(nc)
            except Exception as exc:  # the link broke under us: the acks will time out and retry
                log_event(log, logging.DEBUG, "nats_flush_failed", error=repr(exc))
        self.stats.inflight = len(pending)
        self._check_idle()
        return n

    def _to_spool(self, msgs: Sequence[_Msg]) -> None:
        assert self._spool is not None
        self._spooling = True
        self._idle.clear()
        n = self._spool.append_many([_pack(m) for m in msgs])
        self.stats.spooled += n
        self.stats.spool_pending = len(self._spool)
        lost = len(msgs) - n
        if lost:
            self.stats.dropped += lost
            now = time.monotonic()
            if now - self._last_drop_log > 5.0:  # loud, but not once per message
                self._last_drop_log = now
                log_event(
                    log,
                    logging.ERROR,
                    "nats_spool_full_dropping",
                    dropped_total=self.stats.dropped,
                    spool=self._spool_path(),
                    spool_max_mb=self.config.spool_max_mb,
                )
        self._wake_drainer.set()
        self._check_idle()

    # -- acknowledgements --------------------------------------------------------------------
    async def _on_ack(self, msg: Any) -> None:
        """Subscription callback path (used only if the fast path below is unavailable)."""
        hdr = b"NATS/1.0 503" if msg.headers and msg.headers.get("Status") == "503" else None
        self._ack(msg.subject.encode(), b"", msg.data, hdr)

    def _install_fast_acks(self, sid: int) -> None:
        """Settle acks straight from the protocol parser instead of via a Msg, a queue and a task.

        nats-py builds a ``Msg``, queues it and awaits a callback for each reply; at 100k acks/s that
        is most of the sink's CPU. Acks for our inbox subscription are handled inline and every
        other message takes nats-py's normal path. A read made only of plain acks goes to
        :meth:`_acks` in one call (about 0.9 instead of 2.7 CPU-us per ack); anything unusual in a
        read (a 503 status, a PING) sends it frame by frame to :meth:`_ack`.
        """
        set_direct_handler(self._nc, sid, self._ack)
        install_ack_parser(self._nc, sid, self._inbox.encode(), self._acks)

    def _acks(self, rids: list[bytes], bodies: list[bytes]) -> None:
        """A read's run of acks at once (:func:`~tickpath.natsproto.install_ack_parser`).

        The common case, all PubAcks of direct publishes with neither errors nor duplicates, is
        checked with one search over the joined payloads and settled by one loop of dict pops;
        anything else (an error, a duplicate, an empty payload) takes the per-frame :meth:`_ack`.
        """
        joined = b"".join(bodies)
        try:
            ids = list(map(int, rids))
        except ValueError:  # not one of our reply ids: _ack skips those one by one
            ids = []
        if not ids or b'"error"' in joined or b'"duplicate"' in joined or not all(bodies):
            prefix = self._inbox.encode()
            for suffix, body in zip(rids, bodies, strict=True):
                self._ack(prefix + suffix, b"", body, None)
            return
        pop = self._pending.pop
        acked = 0
        for rid in ids:
            entry = pop(rid, None)
            if entry is None:
                continue  # late ack of a message already re-sent: the server de-duplicates it
            if entry[2] is None:
                acked += 1  # _settle's count, kept inline: the common case, once per ack
            else:
                self._settle(entry, True)
        stats = self.stats
        stats.written += acked
        stats.published += acked
        self._after_settle()

    def _ack(self, subject: bytes, _reply: bytes, data: bytes, headers: bytes | None) -> None:
        try:
            rid = int(subject[self._inbox_len :])
        except ValueError:
            return
        entry = self._pending.pop(rid, None)
        if entry is None:
            return  # late ack of a message we already re-sent: the server de-duplicates it
        # A 503 status header means no responders (no stream leader right now); an ack body with
        # "error" is a JetStream API error; anything else is a PubAck.
        ok = not (headers and b" 503" in headers[:16]) and bool(data) and b'"error"' not in data
        if ok and entry[2] is None:  # the common case, kept inline: one direct publish acknowledged
            stats = self.stats
            stats.written += 1
            stats.published += 1
            if b'"duplicate"' in data:
                stats.duplicates += 1
            if not self._space.is_set() and len(self._pending) < self.config.max_inflight:
                self._space.set()
            if not self._pending:
                self._after_settle()
            return
        if ok and b'"duplicate"' in data:
            self.stats.duplicates += 1
        self._settle(entry, ok)
        self._after_settle()

    def _settle(self, entry: tuple[_Msg, int, _Batch | None], ok: bool) -> None:
        m, _, batch = entry
        if batch is not None:
            batch.settle(ok)  # the drainer counts and commits
            return
        if ok:
            self.stats.written += 1
            self.stats.published += 1
        else:
            self.stats.retried += 1
            self._to_spool([m])

    def _after_settle(self) -> None:
        if len(self._pending) < self.config.max_inflight:
            self._space.set()
        self.stats.inflight = len(self._pending)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._pending:
            self._no_pending.set()
            if not self._spooling:
                self._idle.set()

    def _fail_pending(self, rids: list[int]) -> None:
        for rid in rids:
            entry = self._pending.pop(rid, None)
            if entry is not None:
                self._settle(entry, False)
        self._after_settle()

    async def _sweeper(self) -> None:
        """Fail publishes whose ack did not come within ``ack_timeout_s`` (oldest first)."""
        timeout_ns = int(self.config.ack_timeout_s * 1e9)
        period = min(0.25, self.config.ack_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            now = self.clock.monotonic_ns()
            expired = []
            for rid, (_, sent, _) in self._pending.items():
                if now - sent < timeout_ns:
                    break
                expired.append(rid)
            if expired:
                log_event(log, logging.WARNING, "nats_ack_timeout", messages=len(expired))
                self._fail_pending(expired)

    # -- spool drain -------------------------------------------------------------------------
    async def _drainer(self) -> None:
        """Publish the spool in order whenever NATS answers; commit only acknowledged batches."""
        assert self._spool is not None
        backoff = 0.05
        while True:
            if not self._spooling:
                self._wake_drainer.clear()
                await self._wake_drainer.wait()
                continue
            await self._connected.wait()
            records = self._spool.peek(self.config.drain_batch)
            if not records:
                async with self._lock:
                    if len(self._spool) == 0:
                        self._spooling = False
                        self._space.set()
                        self._check_idle()
                        log_event(log, logging.INFO, "nats_spool_drained")
                continue
            msgs = [_unpack(r) for r in records]
            batch = _Batch(len(msgs))
            sent = await self._send_many(msgs, batch)
            if sent < len(msgs):
                for _ in range(len(msgs) - sent):
                    batch.settle(False)
            await batch.done
            if batch.failed:
                self.stats.retried += batch.failed
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self._spool.commit(len(msgs))
            self.stats.written += len(msgs)
            self.stats.published += len(msgs)
            self.stats.spool_pending = len(self._spool)
