"""``tickpath ingest``: a durable JetStream consumer that loads the bus into DuckDB or Parquet.

The loop is fetch, decode, commit, acknowledge, in that order. The consumer is durable (its position
lives in the server, so a restart resumes where the last acknowledged batch ended) with explicit
acks: every message of a batch is acknowledged, in one write, only after
:meth:`~tickpath.ingest.store.Store.commit` returned. A crash before the ack re-delivers the batch;
the store's de-duplication on the event key makes that a no-op, so nothing is lost and nothing is
written twice. Several processes on one durable share the stream, each with its own file:
:mod:`tickpath.ingest.group` says why and how their files are merged exactly once.

Latency columns: ``event_time_ms`` (exchange), ``receipt_ns`` (feed), ``publish_ns`` (the
``Tickpath-Publish-Ns`` header the NATS sink sets) and ``ingest_ns`` (this process's wall clock just
before the commit). The run summary has HdrHistogram percentiles of publish->ingest and
receipt->ingest; they compare wall clocks of the feed and ingest machines, so across machines they
include those clocks' offset (values below zero are clamped and counted by the recorder).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, ConnectionFailedError, HandshakeError
from tickpath.ingest import native
from tickpath.ingest.columns import decode_batch, stamp_ingest_ns
from tickpath.ingest.metrics import IngestCollector, delivery_facts
from tickpath.ingest.retry import Silence, running_give_up_s, wait_budget_s
from tickpath.ingest.store import Store, open_store, parse_target
from tickpath.logs import log_event
from tickpath.metrics import MetricsServer, check_port
from tickpath.nats.client import connect
from tickpath.nats.frames import ack_frames
from tickpath.nats.internals import (
    flush_frames,
    install_delivery_parser,
    queue_frames,
    set_direct_handler,
    subscription_id,
)
from tickpath.nats.provision import check_name, check_prefix
from tickpath.nats.retry import js_call, retrying
from tickpath.nats.url import NatsUrl
from tickpath.stats import LatencyRecorder

log = logging.getLogger(__name__)

__all__ = ["IngestConfig", "IngestResult", "consumer_config", "run_ingest"]


@dataclass(frozen=True)
class IngestConfig:
    """What to read, where to write, and when to stop."""

    source: str  # nats://host:4222[,host...]?stream=TICKPATH&durable=tickpath-ingest&prefix=tickpath
    target: str  # duckdb:PATH | parquet:DIR
    batch: int = 5000
    fetch_timeout_s: float = 1.0
    ack_wait_s: float = 30.0
    idle_exit_s: float | None = None  # stop after this long without messages; None = until stopped
    max_messages: int | None = None  # stop after this many messages (tests, benchmarks)
    connect_timeout_s: float = 5.0
    metrics_port: int | None = None  # serve Prometheus /metrics here (0 = any free port)
    metrics_host: str = "127.0.0.1"
    # How long to retry a stream that is missing or a cluster that does not answer (tickpath.ingest.retry);
    # None: forever, or at least retry.REELECTION_S with idle_exit_s; 0: fail at once.
    wait_stream_s: float | None = None

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch must be at least 1, not {self.batch}")
        # A zero or negative ack_wait reaches the server as is (nats-py sends -5 s, and drops 0 so
        # the server's 30 s default applies): refuse both instead.
        for option, value in (
            ("--fetch-timeout", self.fetch_timeout_s),
            ("--ack-wait", self.ack_wait_s),
            ("--connect-timeout", self.connect_timeout_s),
        ):
            if not 0 < value < float("inf"):
                raise ConfigError(f"{option} must be a positive number of seconds, not {value}")
        if self.idle_exit_s is not None and not (0 < self.idle_exit_s < float("inf")):
            raise ConfigError(f"--idle-exit must be a positive number of seconds, not {self.idle_exit_s}")
        if self.wait_stream_s is not None and not (0 <= self.wait_stream_s < float("inf")):
            raise ConfigError(f"--wait-stream must be zero or a positive number of seconds, not {self.wait_stream_s}")
        if self.max_messages is not None and self.max_messages < 1:
            raise ConfigError(f"--max-messages must be at least 1, not {self.max_messages}")
        parse_target(self.target)
        check_port(self.metrics_port)

    def nats(self) -> tuple[list[str], dict[str, str]]:
        """Server URLs (without credentials: they go in messages) and query options (stream,
        durable, prefix) of ``source``."""
        url = NatsUrl.parse(self.source, "an ingest source URL")
        servers, query = url.server_urls, url.query
        opts = {"stream": "TICKPATH", "durable": "tickpath-ingest", "prefix": "tickpath"}
        for k, v in parse_qsl(query):
            if k not in opts:
                raise ConfigError(f"unknown ingest source option {k!r}; known: {', '.join(opts)}")
            opts[k] = v
        for k in ("stream", "durable"):
            check_name(k, opts[k])
        check_prefix(opts["prefix"])
        return list(servers), opts

    def credentials(self) -> dict[str, str]:
        """nats-py connect options for ``user:password@`` or ``token@`` in ``source`` (else none)."""
        return NatsUrl.parse(self.source, "an ingest source URL").credentials.nats_py_options()


@dataclass
class IngestResult:
    """Counts and latency summaries of one ingest run."""

    target: str
    messages: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    sessions: int = 0  # feed_sessions rows received (a feed sends one at start, one at stop)
    batches: int = 0
    elapsed_s: float = 0.0
    active_s: float = 0.0  # start to last batch received (excludes the idle wait before exit)
    per_table: dict[str, int] = field(default_factory=dict)
    redeliveries: int = 0  # messages JetStream delivered more than once (a crash, a lost ack)
    acks_pending: int = 0  # received, not yet acknowledged (levels: /metrics only)
    lag_messages: int = 0  # the stream's messages not yet delivered, as of the last batch
    lag_s: float = 0.0  # commit time minus the stream's time of the newest committed message
    commit_time: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("commit"))
    metrics_port: int | None = None  # where /metrics is served, if it is
    publish_to_ingest: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("publish_to_ingest"))
    receipt_to_ingest: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("receipt_to_ingest"))

    @property
    def rate(self) -> float:
        span = self.active_s or self.elapsed_s
        return self.messages / span if span > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "messages": self.messages,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "sessions": self.sessions,
            "batches": self.batches,
            "elapsed_s": round(self.elapsed_s, 3),
            "messages_per_s": round(self.rate, 1),
            "per_table": dict(self.per_table),
            "redeliveries": self.redeliveries,
            **({"metrics_port": self.metrics_port} if self.metrics_port is not None else {}),
            "latency": {
                "clock": "wall clocks: publish_ns of the feed host, ingest_ns of this host",
                "publish_to_ingest": self.publish_to_ingest.summary().to_dict("us"),
                "receipt_to_ingest": self.receipt_to_ingest.summary().to_dict("us"),
            },
        }


_Delivery = tuple[bytes, bytes, bytes | None]  # (ack subject, payload, raw headers)


class _Puller:
    """Pull requests to a durable consumer, with replies taken straight from the protocol parser.

    nats-py's ``fetch`` builds a ``Msg``, parses every header line and passes each message through a
    queue, which caps ingest far below 100k msg/s. Here each pull request gets its own reply subject
    under one inbox; deliveries are collected as ``(ack subject, data, raw headers)`` by the bulk
    delivery parser (:func:`tickpath.nats.internals.install_delivery_parser`) or, for frames it
    leaves to the fast parser, a direct handler, and a status (404 no messages, 408 expired, 409)
    ends a request. Every delivery lands in exactly one batch, in delivery order: one that arrives
    late (after a client timeout, or between requests) is kept for the next batch rather than
    dropped and redelivered after ``ack_wait``.
    """

    def __init__(self, nc: Any, stream: str, durable: str) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = ""
        self._req = 0
        self._want = 0
        self._buf: list[_Delivery] = []
        self._done = asyncio.Event()
        self.answered = True  # whether the server answered the last request (deliveries or a status)

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox() + "."
        plen = len(self._inbox)
        sub = await self._nc.subscribe(self._inbox + "*")

        def on_message(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
            if not reply:  # a status for one of our requests (its subject is the request inbox)
                if (
                    headers
                    and headers.startswith(b"NATS/1.0 ")
                    and headers[9:12] != b"100"
                    and subject[plen:] == str(self._req).encode()
                ):
                    self._done.set()  # 404 no messages / 408 expired / 409: the request is over
                return
            self._buf.append((reply, data, headers))
            self._delivered()

        set_direct_handler(self._nc, subscription_id(sub), on_message)
        install_delivery_parser(self._nc, subscription_id(sub), self._buf, self._delivered, native.delivery_splitter())

    def interrupt(self) -> None:
        """The link dropped: the request in flight will not be answered, stop waiting for it."""
        self._done.set()

    def _delivered(self) -> None:
        if len(self._buf) >= self._want:
            self._done.set()

    async def fetch(self, batch: int, timeout: float) -> list[_Delivery]:
        """What is available now (no wait); if nothing, wait up to ``timeout`` for up to ``batch``."""
        if self._buf:  # late deliveries of an earlier request come first
            msgs = self._take()
            return msgs
        msgs = await self._request(batch, {"batch": batch, "no_wait": True}, 5.0)
        if msgs:
            return msgs
        return await self._request(batch, {"batch": batch, "expires": int(timeout * 1e9)}, timeout + 5.0)

    async def _request(self, batch: int, body: dict[str, Any], client_timeout: float) -> list[_Delivery]:
        if not self._nc.is_connected:
            # Reconnecting: a request now would only queue up in the client's buffer. Wait a little
            # (the caller decides how long a lost server is worth waiting for).
            await asyncio.sleep(min(client_timeout, 0.25))
            self.answered = False
            return self._take()
        self._req += 1
        self._want = batch
        self._done = asyncio.Event()
        await self._nc.publish(self._subject, orjson.dumps(body), reply=f"{self._inbox}{self._req}")
        # Not ``asyncio.wait_for``: in Python 3.11 it returns the result when the result and a cancel
        # arrive together, so a Ctrl-C would be swallowed. ``asyncio.timeout`` lets the cancel through.
        self.answered = True
        try:
            async with asyncio.timeout(client_timeout):
                await self._done.wait()
        except TimeoutError:
            log_event(log, logging.WARNING, "ingest_pull_timeout", got=len(self._buf))
            self.answered = bool(self._buf)
        if not self._nc.is_connected:
            self.answered = bool(self._buf)
        msgs = self._take()
        self._req += 1  # a late status of this request must not end the next one
        return msgs

    def _take(self) -> list[_Delivery]:
        """Everything collected so far (the buffer object stays: the delivery parser appends to it)."""
        msgs = self._buf[:]
        self._buf.clear()
        return msgs

    def ack(self, msgs: list[_Delivery]) -> None:
        """Queue one ``+ACK`` per message of a committed batch (sent by :meth:`flush`) in one write.

        Explicit acks, not ack policy *all* (one ack for the batch's highest sequence): under ack-all
        a restarted ``ingest`` acknowledging its first batch would also acknowledge older messages
        that the crashed process had received but never committed, before they are redelivered.
        The frames are cheap bytes formatting here; the server handles 10k acks in one read.
        """
        queue_frames(self._nc, ack_frames([m[0] for m in msgs]))

    async def flush(self) -> None:
        await flush_frames(self._nc)


async def run_ingest(
    config: IngestConfig,
    *,
    clock: Clock = DEFAULT_CLOCK,
    store: Store | None = None,
    progress: Callable[[IngestResult], None] | None = None,
) -> IngestResult:
    """Consume the stream into the store until idle/limit/cancel; returns counts and latencies.

    The source is checked (connected, JetStream answers, the stream exists) before the target is
    opened, and a target this run created is removed again when the run fails before its first
    commit. ``progress`` is called after every commit. A missing stream, or a server that stops
    answering (gone, or JetStream without quorum), is retried for the budget of
    :func:`~tickpath.ingest.retry.wait_budget_s` (``wait_stream_s``; forever without it and
    ``idle_exit_s``), then ends the run with :class:`ConfigError` / :class:`ConnectionFailedError`.
    With ``metrics_port``, ``/metrics`` is served for the whole run (its port is ``metrics_port`` of
    the result, which ``progress`` sees).
    """
    result = IngestResult(target=store.target if store is not None else config.target)
    if config.metrics_port is None:
        return await _run(config, clock, store, progress, result)
    _, opts = config.nats()
    metrics = MetricsServer(
        IngestCollector(result, opts["stream"], opts["durable"]), config.metrics_host, config.metrics_port
    )
    try:
        await metrics.start()
    except BaseException:
        if store is not None:
            store.close()
        raise
    result.metrics_port = metrics.port
    log_event(log, logging.INFO, "metrics_listening", host=config.metrics_host, port=metrics.port)
    try:
        return await _run(config, clock, store, progress, result)
    finally:
        await metrics.stop()


async def _run(
    config: IngestConfig,
    clock: Clock,
    store: Store | None,
    progress: Callable[[IngestResult], None] | None,
    result: IngestResult,
) -> IngestResult:
    servers, opts = config.nats()
    stop_if_cancelled = _cancel_check()
    wake: list[Callable[[], None]] = []  # called when the link drops (ends a pull's wait early)
    try:
        nc = await _connect(config, servers, wake)
    except BaseException:  # a connection failure, or a cancel while connecting
        if store is not None:
            store.close()
        raise
    started = _seconds(clock)
    owned = store is None
    opened: Store | None = store
    budget_s = wait_budget_s(config.wait_stream_s, config.idle_exit_s, config.connect_timeout_s)
    try:
        js = nc.jetstream(timeout=config.connect_timeout_s)
        await _await_stream(js, opts, servers, budget_s, clock)
        stop_if_cancelled()
        opened = store = store or open_store(config.target)
        result.target = store.target
        await retrying(
            lambda: _ensure_consumer(js, config, opts, servers),
            what=f"JetStream consumer {opts['durable']}",
            budget_s=budget_s,
            clock=clock,
        )
        stop_if_cancelled()
        await _consume(config, nc, js, opts, store, result, clock, progress, stop_if_cancelled, started, wake)
    except BaseException:
        if opened is not None and owned:
            opened.close()
            opened.discard()  # if nothing was committed: no empty database left behind
            opened = None
        raise
    finally:
        result.elapsed_s = _seconds(clock) - started
        try:
            await _close_link(nc, config.connect_timeout_s)
        finally:
            if opened is not None:
                opened.close()
    log_event(
        log,
        logging.INFO,
        "ingest_finished",
        messages=result.messages,
        inserted=result.inserted,
        duplicates=result.duplicates,
        rejected=result.rejected,
    )
    return result


async def _await_stream(
    js: Any, opts: dict[str, str], servers: list[str], budget_s: float | None, clock: Clock
) -> None:
    """The source stream, retried while it does not exist yet or the cluster does not answer."""
    stream = f"JetStream stream {opts['stream']}"
    missing = f"{stream} does not exist (start the feed first, or pass ?stream=NAME)"
    await retrying(
        lambda: js_call(js.stream_info(opts["stream"]), servers, stream, missing=missing),
        what=stream,
        budget_s=budget_s,
        clock=clock,
    )


def _cancel_check() -> Callable[[], None]:
    """A check that raises CancelledError once the current task is asked to stop. Cancels the task
    has already been through (and its caller handled) are not a stop request."""
    task = asyncio.current_task()
    cancels_before = task.cancelling() if task is not None else 0

    def stop_if_cancelled() -> None:
        # nats-py's requests (stream/consumer info) use ``asyncio.wait_for``, which in Python 3.11 can
        # swallow a cancel that lands together with the reply: honour it after each awaited call.
        if task is not None and task.cancelling() > cancels_before:
            raise asyncio.CancelledError

    return stop_if_cancelled


async def _close_link(nc: Any, timeout_s: float) -> None:
    # close() writes the acks still queued; a repeated Ctrl-C must not cut that short.
    closing = asyncio.ensure_future(nc.close())
    await _despite_cancel(closing, timeout_s=timeout_s)
    if closing.done() and not closing.cancelled():
        closing.exception()  # a failed close after the work is done is not an error


async def _connect(config: IngestConfig, servers: list[str], wake: list[Callable[[], None]]) -> Any:
    """Connect with the source's credentials; a refused login is said as such (nats-py reports it
    only as "no servers available", the authorization error goes to the error callback)."""
    errors: list[Exception] = []

    async def remember(exc: Exception) -> None:  # nats-py prints tracebacks by default
        errors.append(exc)
        log_event(log, logging.DEBUG, "nats_client_error", error=repr(exc))

    async def disconnected() -> None:
        for fn in wake:
            fn()

    try:
        return await connect(
            servers,
            timeout_s=config.connect_timeout_s,
            error_cb=remember,
            disconnected_cb=disconnected,
            **config.credentials(),
        )
    except ConnectionFailedError as exc:
        refused = [e for e in errors if "authoriz" in str(e).lower()]
        if refused:
            detail = str(refused[-1]).removeprefix("nats: ").strip("'")
            raise HandshakeError(f"NATS at {', '.join(servers)} refused the credentials: {detail}") from exc
        raise


def consumer_config(config: IngestConfig, durable: str | None = None) -> Any:
    """The ``ConsumerConfig`` ingest creates its durable with (``durable`` overrides the source's);
    the benchmark's pull ceiling uses it too, so both ask the server for the same work."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    _, opts = config.nats()
    return ConsumerConfig(
        durable_name=durable or opts["durable"],
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=f"{opts['prefix']}.>",
        ack_wait=config.ack_wait_s,
        max_ack_pending=max(50_000, config.batch * 4),
        max_waiting=64,
    )


async def _ensure_consumer(js: Any, config: IngestConfig, opts: dict[str, str], servers: list[str]) -> None:
    """Create the durable consumer unless it exists (an existing one keeps its settings)."""
    from nats.js.errors import NotFoundError

    what = f"JetStream consumer {opts['durable']}"
    try:
        await js_call(js.consumer_info(opts["stream"], opts["durable"]), servers, what)
    except NotFoundError:
        await js_call(js.add_consumer(opts["stream"], consumer_config(config)), servers, what)


async def _consume(
    config: IngestConfig,
    nc: Any,
    js: Any,
    opts: dict[str, str],
    store: Store,
    result: IngestResult,
    clock: Clock,
    progress: Callable[[IngestResult], None] | None,
    stop_if_cancelled: Callable[[], None],
    started: float,
    wake: list[Callable[[], None]],
) -> None:
    """The fetch / commit / ack loop, until the limit, idle exit, a lost server or a cancel."""
    servers, _ = config.nats()
    puller = _Puller(nc, opts["stream"], opts["durable"])
    await puller.start()
    wake.append(puller.interrupt)
    log_event(log, logging.INFO, "ingest_started", stream=opts["stream"], durable=opts["durable"], target=store.target)
    last_msg = _seconds(clock)
    # A server gone (or not answering) this long ends the run: with --idle-exit the run must end,
    # but not during a re-election (tickpath.ingest.retry).
    budget_s = wait_budget_s(config.wait_stream_s, config.idle_exit_s, config.connect_timeout_s)
    silence = Silence(running_give_up_s(budget_s, config.idle_exit_s, config.connect_timeout_s), last_msg)
    fetched = 0
    # One batch commits (in a worker thread) while the next one is fetched; commits stay in order
    # and a batch is acknowledged only by its own commit.
    committing: asyncio.Task[None] | None = None
    try:
        while config.max_messages is None or fetched < config.max_messages:
            stop_if_cancelled()
            msgs = await _fetch(puller, _want(config, fetched), config.fetch_timeout_s)
            stop_if_cancelled()  # the fetched batch is not committed, so it is redelivered
            now = _seconds(clock)
            if msgs or puller.answered:
                silence.answered(now)
            if not msgs:
                why = "disconnected" if not nc.is_connected else "JetStream requests time out"
                silence.check(now, ", ".join(servers), why)
                if config.idle_exit_s is not None and now - last_msg >= config.idle_exit_s and nc.is_connected:
                    if committing is not None:
                        await asyncio.shield(committing)  # its acks are flushed before we ask
                    if await _idle_and_drained(js, opts, stop_if_cancelled, silence, clock):
                        break
                    last_msg = _seconds(clock)  # outstanding deliveries: wait for them (ack_wait)
                continue
            last_msg = now
            fetched += len(msgs)
            result.acks_pending += len(msgs)
            if committing is not None:
                await asyncio.shield(committing)
            committing = asyncio.create_task(_commit_and_ack(msgs, store, result, clock, puller, progress))
    finally:
        result.active_s = last_msg - started
        if committing is not None:  # finish (or fail) the last commit before the store closes
            await _despite_cancel(committing)
            if not committing.cancelled() and committing.exception() is not None:
                raise committing.exception()  # type: ignore[misc]


def _want(config: IngestConfig, fetched: int) -> int:
    """The next fetch's size: a batch, or what is left of --max-messages."""
    return config.batch if config.max_messages is None else min(config.batch, config.max_messages - fetched)


async def _fetch(puller: _Puller, want: int, timeout_s: float) -> list[Any]:
    """Up to ``want`` deliveries; none (and not answered) when the link failed under the request."""
    import nats

    try:
        return await puller.fetch(want, timeout_s)
    except (nats.errors.ConnectionClosedError, nats.errors.OutboundBufferLimitError) as exc:
        log_event(log, logging.WARNING, "ingest_fetch_failed", error=repr(exc))
        await asyncio.sleep(0.25)
        puller.answered = False
        return []


async def _idle_and_drained(
    js: Any, opts: dict[str, str], stop_if_cancelled: Callable[[], None], silence: Silence, clock: Clock
) -> bool:
    """After an idle spell: whether the consumer has nothing left (an answer counts as one)."""
    drained = await _drained(js, opts, stop_if_cancelled)
    if drained is not None:
        silence.answered(_seconds(clock))
    return bool(drained)


async def _drained(js: Any, opts: dict[str, str], stop_if_cancelled: Callable[[], None]) -> bool | None:
    """Whether the consumer has nothing left: no undelivered and no unacknowledged messages, and it
    has delivered up to the stream's last message on its subjects (None: the server did not answer).

    A quiet spell alone is not the end of the stream: deliveries lost in flight (a node failing
    over, a pull reply cut off) stay unacknowledged on the server and come back after ``ack_wait``.
    Nor is a consumer's ``num_pending`` of 0: it is counted on the consumer leader's replica of the
    stream, which after a node restart can lag the stream leader (a replicas-3 run once exited 50
    events short this way, the rest delivered seconds later). The stream's last sequence on the
    consumer's subjects comes from the stream leader, so idle exit waits for those too.
    """
    from nats.js.errors import NotFoundError

    stream, durable = opts["stream"], opts["durable"]
    try:
        info = await js.consumer_info(stream, durable)
        stop_if_cancelled()
        if info.num_pending or info.num_ack_pending:
            log_event(
                log,
                logging.INFO,
                "ingest_waiting_for_outstanding",
                pending=info.num_pending,
                ack_pending=info.num_ack_pending,
            )
            return False
        try:
            subjects = info.config.filter_subject or f"{opts['prefix']}.>"
            last = (await js.get_last_msg(stream, subjects)).seq or 0
        except NotFoundError:  # nothing on the consumer's subjects at all
            last = 0
    except Exception as exc:  # a cluster in mid-election: not drained as far as we can tell
        log_event(log, logging.WARNING, "ingest_consumer_info_failed", error=repr(exc))
        return None
    finally:
        stop_if_cancelled()
    delivered = info.delivered.stream_seq or 0
    if delivered >= last:
        return True
    log_event(log, logging.INFO, "ingest_consumer_behind_stream", delivered_seq=delivered, stream_last_seq=last)
    return False


def _seconds(clock: Clock) -> float:
    return clock.monotonic_ns() / 1e9


async def _despite_cancel(fut: asyncio.Future[Any], timeout_s: float | None = None) -> None:
    """Wait for ``fut`` (at most ``timeout_s``) even through cancels, then re-raise the cancel.

    Teardown work (the last commit and its acks) must finish before the store closes, however many
    times the caller is cancelled meanwhile; the cancel still ends the run afterwards.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    cancelled = False
    while not fut.done():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        try:
            await asyncio.wait([fut], timeout=left)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _commit_and_ack(
    msgs: list[tuple[bytes, bytes, bytes | None]],
    store: Store,
    result: IngestResult,
    clock: Clock,
    puller: _Puller,
    progress: Callable[[IngestResult], None] | None = None,
) -> None:
    batch = decode_batch([m[1] for m in msgs], [m[2] for m in msgs])
    result.rejected += batch.rejected
    result.duplicates += batch.duplicates
    ingest_ns = clock.wall_ns()
    tables = stamp_ingest_ns(batch.tables, ingest_ns)
    # If this raises, nothing is acknowledged and the server re-delivers the batch after ack_wait.
    began = time.perf_counter_ns()
    inserted = await asyncio.to_thread(functools.partial(store.commit, tables, unique=True, sessions=batch.sessions))
    result.commit_time.record(time.perf_counter_ns() - began)
    n_rows = sum(t.num_rows for t in tables.values())
    new = sum(inserted.values())
    result.messages += len(msgs)
    result.inserted += new
    result.duplicates += n_rows - new
    result.batches += 1
    result.sessions += len(batch.sessions)
    for t, k in inserted.items():
        result.per_table[t] = result.per_table.get(t, 0) + k
    # Every row's latency, in one numpy pass per histogram (``record_array``: ~0.1 us per value).
    for column, rec in (("publish_ns", result.publish_to_ingest), ("receipt_ns", result.receipt_to_ingest)):
        rec.record_array(ingest_ns - batch.column_values(column))
    _note_deliveries(result, [m[0] for m in msgs], ingest_ns)
    puller.ack(msgs)
    result.acks_pending -= len(msgs)
    if progress is not None:  # after the counts above: what the store now holds
        progress(result)
    await puller.flush()


def _note_deliveries(result: IngestResult, replies: list[bytes], ingest_ns: int) -> None:
    """Redeliveries and lag of a committed batch, from its ack subjects (for /metrics)."""
    facts = delivery_facts(replies)
    if facts is not None:
        redelivered, result.lag_messages, stored_ns = facts
        result.redeliveries += redelivered
        result.lag_s = max(0.0, (ingest_ns - stored_ns) / 1e9)
