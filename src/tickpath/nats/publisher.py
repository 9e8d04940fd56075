"""JetStream publishing with acks, a bounded in-flight window, a spool and an ack timer.

Each message carries a reply subject ``<inbox><reply id>`` under one inbox subscription; the server's
ack settles it, and at most ``max_inflight`` are unacknowledged at once. When NATS is down or slow
the publisher degrades in two steps:

1. back-pressure: :meth:`Publisher.publish` waits (up to ``backpressure_s``) for in-flight slots,
   which slows the caller's bounded queues rather than growing memory;
2. spool: after that, and for any message whose ack failed or timed out (the sweeper, every
   ``min(0.25 s, ack_timeout_s / 4)``), messages go to a bounded on-disk spool. While the spool
   holds anything, new messages are appended behind it, and a drainer task publishes it in order
   once NATS answers again, committing only acknowledged batches. Only a full spool drops
   messages; that is counted and logged loudly.

All waiting and time reading goes through the injected :class:`~tickpath.clock.Clock`, so the ack
timer, back-pressure and drain are exact under :class:`~tickpath.clock.VirtualClock`. The link to
the server is a :class:`Link` (:class:`NatsLink` over a nats-py client), the spool a
:class:`SpoolStore` (the sink's :class:`~tickpath.sinks.spool.Spool`); both can be in-memory in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.logs import log_event
from tickpath.nats import frames
from tickpath.nats.internals import buffered_bytes, flush_frames, queue_frames

__all__ = ["Counters", "Link", "Msg", "NatsLink", "Publisher", "PublisherConfig", "SpoolStore", "pack", "unpack"]

_log = logging.getLogger(__name__)

# (subject, msg id, payload) of one message, as published and as spooled.
Msg = tuple[str, str, bytes]
_REC = struct.Struct(">HH")


def pack(m: Msg) -> bytes:
    """A message as one spool record (lengths of subject and id, then the three)."""
    s, k = m[0].encode(), m[1].encode()
    return _REC.pack(len(s), len(k)) + s + k + m[2]


def unpack(rec: bytes) -> Msg:
    """The message of one spool record (:func:`pack`)."""
    ls, lk = _REC.unpack_from(rec)
    o = _REC.size
    return rec[o : o + ls].decode(), rec[o + ls : o + ls + lk].decode(), rec[o + ls + lk :]


class Link(Protocol):
    """Where the publisher's frames go: a client's write buffer and its connection state."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def is_closed(self) -> bool: ...

    def buffered_bytes(self) -> int: ...

    def queue(self, data: bytes, messages: int) -> None: ...

    async def flush(self) -> None: ...


class NatsLink:
    """:class:`Link` over a connected nats-py client (:func:`tickpath.nats.client.connect`)."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def is_closed(self) -> bool:
        return bool(self.nc.is_closed)

    def buffered_bytes(self) -> int:
        return buffered_bytes(self.nc)

    def queue(self, data: bytes, messages: int) -> None:
        queue_frames(self.nc, data, messages)

    async def flush(self) -> None:
        await flush_frames(self.nc)


class SpoolStore(Protocol):
    """The bounded, ordered on-disk store the publisher parks messages in."""

    directory: Path

    def __len__(self) -> int: ...

    def append_many(self, records: list[bytes]) -> int: ...

    def peek(self, n: int) -> list[bytes]: ...

    def commit(self, n: int) -> None: ...


class Counters(Protocol):
    """The counters the publisher keeps (the sink's stats): acknowledged, re-sent, spooled..."""

    written: int
    published: int
    retried: int
    spooled: int
    spool_pending: int
    duplicates: int
    inflight: int
    dropped: int


@dataclass(frozen=True)
class PublisherConfig:
    """The window, timers and batch sizes of a :class:`Publisher`."""

    max_inflight: int = 4096
    ack_timeout_s: float = 5.0
    backpressure_s: float = 2.0
    drain_batch: int = 1024
    close_timeout_s: float = 30.0
    buffer_limit: int = 8 * 1024 * 1024  # the client's reconnect buffer, in bytes
    spool_max_mb: float = 512.0  # for the logs only: the spool enforces it


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


_Entry = tuple[Msg, int, _Batch | None]  # message, monotonic send time, drained batch or None


class Publisher:
    """Publishes messages with acks; see the module docstring. Construct inside the event loop,
    then :meth:`start`; hand acks to :meth:`on_ack` / :meth:`on_acks` and link changes to
    :meth:`on_connected` / :meth:`on_disconnected`."""

    def __init__(
        self,
        link: Link,
        inbox: str,
        spool: SpoolStore,
        counters: Counters,
        config: PublisherConfig = PublisherConfig(),
        *,
        clock: Clock = DEFAULT_CLOCK,
        log: logging.Logger = _log,
    ) -> None:
        self.link, self.spool, self.stats, self.config, self.clock = link, spool, counters, config, clock
        self._log = log
        self._inbox = inbox.encode()  # ends with '.': the reply id follows
        self._next_id = 0
        self._pending: dict[int, _Entry] = {}  # reply id -> entry; insertion = send order
        self._space = asyncio.Event()
        self._idle = asyncio.Event()  # nothing in flight and nothing spooled
        self._no_pending = asyncio.Event()  # nothing in flight
        self._connected = asyncio.Event()
        self._wake_drainer = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._spooling = len(spool) > 0  # a previous run's messages go out first, in order
        self._last_drop_log_ns: int | None = None
        counters.spool_pending = len(spool)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the spool drainer and the ack timer (the link is up)."""
        self._connected.set()
        self._space.set()
        self._no_pending.set()
        self._check_idle()
        self._tasks = [
            asyncio.create_task(self._drainer(), name="nats-spool-drainer"),
            asyncio.create_task(self._sweeper(), name="nats-ack-timer"),
        ]

    def on_connected(self) -> None:
        self._connected.set()
        self._wake_drainer.set()

    def on_disconnected(self) -> None:
        self._connected.clear()

    async def wait_acked(self) -> None:
        """Until nothing is in flight (acknowledged, or parked in the spool after a timeout)."""
        await self._no_pending.wait()

    async def wait_idle(self) -> None:
        """Until nothing is in flight and the spool is empty."""
        await self._idle.wait()

    async def close(self) -> None:
        """Drain the spool and in-flight acks (up to ``close_timeout_s``), stop the tasks, and park
        whatever is still unacknowledged in the spool."""
        deadline = self.clock.monotonic_ns() + int(self.config.close_timeout_s * 1e9)
        if self._tasks and not await self._until(self._drain_all(), deadline):
            log_event(
                self._log,
                logging.ERROR,
                "nats_close_timeout",
                inflight=len(self._pending),
                spool_pending=len(self.spool),
                spool=str(self.spool.directory),
            )
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        self._fail_pending(list(self._pending))  # not lost: spooled for the next run

    @property
    def inflight(self) -> int:
        return len(self._pending)

    async def _drain_all(self) -> None:
        while self._pending or self._spooling:
            self._wake_drainer.set()
            await self._sleep(0.01)

    async def _sleep(self, seconds: float) -> None:
        await self.clock.sleep_until_ns(self.clock.monotonic_ns() + int(seconds * 1e9))

    async def _until(self, aw: Awaitable[Any], deadline_ns: int) -> bool:
        """Await ``aw`` until the clock reaches ``deadline_ns``: True when it finished (else cancelled)."""
        task = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.clock.sleep_until_ns(deadline_ns))
        try:
            await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            return False
        task.result()  # its exception, if any
        return True

    # -- publishing --------------------------------------------------------------------------
    async def publish(self, msgs: Sequence[Msg]) -> None:
        """Publish in order; awaits in-flight slots (back-pressure), then spools."""
        cfg = self.config
        async with self._lock:
            i = 0
            while i < len(msgs):
                if self._spooling:
                    self._to_spool(msgs[i:])
                    return
                if len(self._pending) >= cfg.max_inflight and not await self._wait_space():
                    log_event(
                        self._log,
                        logging.WARNING,
                        "nats_backpressure_spooling",
                        inflight=len(self._pending),
                        waited_s=cfg.backpressure_s,
                    )
                    self._to_spool(msgs[i:])
                    return
                room = cfg.max_inflight - len(self._pending)
                chunk = msgs[i : i + room]
                sent = await self._send_many(chunk, None)
                if sent < len(chunk):  # the client refused (disconnected, buffer full)
                    self._to_spool([*chunk[sent:], *msgs[i + room :]])
                    return
                i += len(chunk)

    async def _wait_space(self) -> bool:
        """Wait up to ``backpressure_s`` for an in-flight slot; False: none came (or spooling began)."""
        deadline = self.clock.monotonic_ns() + int(self.config.backpressure_s * 1e9)
        while len(self._pending) >= self.config.max_inflight:
            self._space.clear()
            if self.clock.monotonic_ns() >= deadline or self._spooling:
                return not self._spooling and len(self._pending) < self.config.max_inflight
            await self._until(self._space.wait(), deadline)
        return not self._spooling

    async def _send_many(self, msgs: Sequence[Msg], batch: _Batch | None) -> int:
        """Queue HPUB frames with reply subjects on the link in one buffer; how many it took.

        nats-py's ``publish`` costs a future and a header regex per message, far below the 100k
        msg/s the feed needs; the client's flusher writes this buffer and its reconnect logic
        replays it, exactly as for ``publish``. The frames are rendered inline (the hot path).
        """
        link = self.link
        if link.is_closed:
            return 0
        now = self.clock.monotonic_ns()
        pub_ns = self.clock.wall_ns()
        pending, inbox, limit = self._pending, self._inbox, self.config.buffer_limit
        self._idle.clear()
        self._no_pending.clear()
        template, hdr_base = frames.HPUB, frames.header_bytes(pub_ns)
        connected = link.is_connected  # no await below: it cannot change during the loop
        buffered = link.buffered_bytes()
        out: list[bytes] = []
        size = n = 0
        rid = self._next_id
        for m in msgs:
            if not connected and buffered + size > limit:
                break  # disconnected and the reconnect buffer is full: the caller spools the rest
            rid += 1
            key, data = m[1].encode(), m[2]
            hlen = hdr_base + len(key)
            frame = template % (m[0].encode(), inbox, rid, hlen, hlen + len(data), key, pub_ns, data)
            out.append(frame)
            size += len(frame)
            pending[rid] = (m, now, batch)
            n += 1
        self._next_id = rid
        if n:
            link.queue(b"".join(out), n)
            try:
                await link.flush()
            except Exception as exc:  # the link broke under us: the acks will time out and retry
                log_event(self._log, logging.DEBUG, "nats_flush_failed", error=repr(exc))
        self.stats.inflight = len(pending)
        self._check_idle()
        return n

    def _to_spool(self, msgs: Sequence[Msg]) -> None:
        self._spooling = True
        self._idle.clear()
        n = self.spool.append_many([pack(m) for m in msgs])
        self.stats.spooled += n
        self.stats.spool_pending = len(self.spool)
        lost = len(msgs) - n
        if lost:
            self.stats.dropped += lost
            now = self.clock.monotonic_ns()
            if self._last_drop_log_ns is None or now - self._last_drop_log_ns > 5_000_000_000:
                self._last_drop_log_ns = now  # loud, but not once per message
                log_event(
                    self._log,
                    logging.ERROR,
                    "nats_spool_full_dropping",
                    dropped_total=self.stats.dropped,
                    spool=str(self.spool.directory),
                    spool_max_mb=self.config.spool_max_mb,
                )
        self._wake_drainer.set()
        self._check_idle()

    # -- acknowledgements --------------------------------------------------------------------
    def on_acks(self, rids: list[bytes], bodies: list[bytes]) -> None:
        """A read's run of acks at once (:func:`~tickpath.nats.internals.install_ack_parser`), given
        the reply subjects after the inbox prefix.

        The common case, all PubAcks of direct publishes with neither errors nor duplicates, is
        checked with one search over the joined payloads and settled by one loop of dict pops;
        anything else (an error, a duplicate, an empty payload) takes the per-frame :meth:`on_ack`.
        """
        joined = b"".join(bodies)
        try:
            ids = list(map(int, rids))
        except ValueError:  # not one of our reply ids: on_ack skips those one by one
            ids = []
        if not ids or not frames.ack_ok(joined, None) or frames.ack_duplicate(joined) or not all(bodies):
            for suffix, body in zip(rids, bodies, strict=True):
                self.on_ack(self._inbox + suffix, b"", body, None)
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

    def on_ack(self, subject: bytes, _reply: bytes, data: bytes, headers: bytes | None) -> None:
        """One ack frame (a :data:`~tickpath.nats.internals.DirectHandler`): subject, reply, payload,
        raw headers. A 503 status, an empty or an ``"error"`` payload fails the message."""
        try:
            rid = int(subject[len(self._inbox) :])
        except ValueError:
            return
        entry = self._pending.pop(rid, None)
        if entry is None:
            return  # late ack of a message we already re-sent: the server de-duplicates it
        ok = frames.ack_ok(data, headers)
        if ok and frames.ack_duplicate(data):
            self.stats.duplicates += 1
        if ok and entry[2] is None:  # the common case, kept inline: one direct publish acknowledged
            stats = self.stats
            stats.written += 1
            stats.published += 1
            if not self._space.is_set() and len(self._pending) < self.config.max_inflight:
                self._space.set()
            if not self._pending:
                self._after_settle()
            return
        self._settle(entry, ok)
        self._after_settle()

    def _settle(self, entry: _Entry, ok: bool) -> None:
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
            await self._sleep(period)
            now = self.clock.monotonic_ns()
            expired = []
            for rid, (_, sent, _) in self._pending.items():
                if now - sent < timeout_ns:
                    break
                expired.append(rid)
            if expired:
                log_event(self._log, logging.WARNING, "nats_ack_timeout", messages=len(expired))
                self._fail_pending(expired)

    # -- spool drain -------------------------------------------------------------------------
    async def _drainer(self) -> None:
        """Publish the spool in order whenever NATS answers; commit only acknowledged batches."""
        backoff = 0.05
        while True:
            if not self._spooling:
                self._wake_drainer.clear()
                await self._wake_drainer.wait()
                continue
            await self._connected.wait()
            records = self.spool.peek(self.config.drain_batch)
            if not records:
                await self._end_spooling()
                continue
            msgs = [unpack(r) for r in records]
            batch = _Batch(len(msgs))
            sent = await self._send_many(msgs, batch)
            for _ in range(len(msgs) - sent):
                batch.settle(False)
            await batch.done
            if batch.failed:
                self.stats.retried += batch.failed
                await self._sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            self.spool.commit(len(msgs))
            self.stats.written += len(msgs)
            self.stats.published += len(msgs)
            self.stats.spool_pending = len(self.spool)

    async def _end_spooling(self) -> None:
        async with self._lock:  # no publish appends behind the spool while it is declared empty
            if len(self.spool) == 0:
                self._spooling = False
                self._space.set()
                self._check_idle()
                log_event(self._log, logging.INFO, "nats_spool_drained")
