"""``tickpath ingest``: a durable JetStream consumer that loads the bus into DuckDB or Parquet.

The loop is fetch, decode, commit, acknowledge, in that order. The consumer is durable (its position
lives in the server, so a restart resumes where the last acknowledged batch ended) with ack policy
*all*: one ack for the highest stream sequence of a batch covers the whole batch, and it is sent only
after :meth:`~tickpath.ingest.store.Store.commit` returned. A crash before the ack re-delivers the
batch; the store's de-duplication on the event key makes that a no-op, so nothing is lost and
nothing is written twice. One ``ingest`` process per durable name (ack-all assumes one reader).

Latency columns: ``event_time_ms`` (exchange), ``receipt_ns`` (feed), ``publish_ns`` (the
``Tickpath-Publish-Ns`` header the NATS sink sets) and ``ingest_ns`` (this process's wall clock just
before the commit). The run summary has HdrHistogram percentiles of publish->ingest and
receipt->ingest; they compare wall clocks of the feed and ingest machines, so across machines they
include those clocks' offset (values below zero are clamped and counted by the recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import orjson
import pyarrow as pa

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError, ConnectionFailedError
from tickpath.events import Event, decode_event
from tickpath.ingest.store import Store, open_store
from tickpath.logs import log_event
from tickpath.sinks.duckdb import arrow_table
from tickpath.sinks.nats import connect
from tickpath.stats import LatencyRecorder

log = logging.getLogger(__name__)

__all__ = ["IngestConfig", "IngestResult", "run_ingest"]

PUBLISH_NS_HEADER = "Tickpath-Publish-Ns"  # set by tickpath.sinks.nats
_PUB_HDR = f"\r\n{PUBLISH_NS_HEADER}: ".encode()
LATENCY_SAMPLES_PER_BATCH = 512


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

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch must be at least 1, not {self.batch}")
        if self.fetch_timeout_s <= 0:
            raise ConfigError("fetch timeout must be positive")

    def nats(self) -> tuple[list[str], dict[str, str]]:
        """Server URLs and query options (stream, durable, prefix) of ``source``."""
        parts = urlsplit(self.source)
        if parts.scheme not in ("nats", "tls"):
            raise ConfigError(f"ingest reads from nats://host:port, not {self.source!r}")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        cred = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        servers = [f"{parts.scheme}://{(cred + '@') if cred else ''}{h if ':' in h else h + ':4222'}"
                   for h in netloc.split(",") if h]
        if not servers:
            raise ConfigError(f"no NATS server in {self.source!r}")
        opts = {"stream": "TICKPATH", "durable": "tickpath-ingest", "prefix": "tickpath"}
        for k, v in parse_qsl(parts.query):
            if k not in opts:
                raise ConfigError(f"unknown ingest source option {k!r}; known: {', '.join(opts)}")
            opts[k] = v
        return servers, opts


@dataclass
class IngestResult:
    """Counts and latency summaries of one ingest run."""

    target: str
    messages: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    elapsed_s: float = 0.0
    active_s: float = 0.0  # start to last batch received (excludes the idle wait before exit)
    per_table: dict[str, int] = field(default_factory=dict)
    publish_to_ingest: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("publish_to_ingest"))
    receipt_to_ingest: LatencyRecorder = field(default_factory=lambda: LatencyRecorder("receipt_to_ingest"))

    @property
    def rate(self) -> float:
        span = self.active_s or self.elapsed_s
        return self.messages / span if span > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "messages": self.messages, "inserted": self.inserted,
            "duplicates": self.duplicates, "rejected": self.rejected, "batches": self.batches,
            "elapsed_s": round(self.elapsed_s, 3), "messages_per_s": round(self.rate, 1),
            "per_table": dict(self.per_table),
            "latency": {
                "clock": "wall clocks: publish_ns of the feed host, ingest_ns of this host",
                "publish_to_ingest": self.publish_to_ingest.summary().to_dict("us"),
                "receipt_to_ingest": self.receipt_to_ingest.summary().to_dict("us"),
            },
        }


class _Puller:
    """Pull requests to a durable consumer, with replies taken straight from the protocol parser.

    nats-py's ``fetch`` builds a ``Msg``, parses every header line and passes each message through a
    queue, which caps ingest far below 100k msg/s. Here each pull request gets its own reply subject
    under one inbox; deliveries for it are collected as ``(ack subject, data, raw headers)`` and a
    status (404 no messages, 408 expired, 409) ends it. Deliveries that arrive late (after a client
    timeout) join the next batch; acks are explicit, so each message is acknowledged only after the
    batch that holds it was committed.
    """

    def __init__(self, nc: Any, stream: str, durable: str) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = ""
        self._req = 0
        self._want = 0
        self._buf: list[tuple[bytes, bytes, bytes | None]] = []
        self._done = asyncio.Event()

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox() + "."
        plen = len(self._inbox)
        sub = await self._nc.subscribe(self._inbox + "*")
        sid = sub._id
        original = self._nc._process_msg

        async def process_msg(msg_sid: int, subject: bytes, reply: bytes, data: bytes,
                              headers: bytes | None) -> None:
            if msg_sid != sid:
                await original(msg_sid, subject, reply, data, headers)
                return
            if not reply:  # a status for one of our requests (its subject is the request inbox)
                if (headers and headers.startswith(b"NATS/1.0 ") and headers[9:12] != b"100"
                        and subject[plen:] == str(self._req).encode()):
                    self._done.set()  # 404 no messages / 408 expired / 409: the request is over
                return
            # Deliveries carry the original subject; with explicit acks, one that arrives after its
            # request was given up is simply committed and acknowledged with the next batch.
            self._buf.append((reply, data, headers))
            if len(self._buf) >= self._want:
                self._done.set()

        self._nc._process_msg = process_msg

    async def fetch(self, batch: int, timeout: float) -> list[tuple[bytes, bytes, bytes | None]]:
        """What is available now (no wait); if nothing, wait up to ``timeout`` for up to ``batch``."""
        msgs = await self._request(batch, {"batch": batch, "no_wait": True}, 5.0)
        if msgs:
            return msgs
        return await self._request(batch, {"batch": batch, "expires": int(timeout * 1e9)}, timeout + 5.0)

    async def _request(self, batch: int, body: dict[str, Any], client_timeout: float
                       ) -> list[tuple[bytes, bytes, bytes | None]]:
        self._req += 1
        self._want, self._buf = batch, []
        self._done = asyncio.Event()
        await self._nc.publish(self._subject, orjson.dumps(body), reply=f"{self._inbox}{self._req}")
        try:
            await asyncio.wait_for(self._done.wait(), client_timeout)
        except TimeoutError:
            log_event(log, logging.WARNING, "ingest_pull_timeout", got=len(self._buf))
        msgs, self._buf = self._buf, []
        self._req += 1  # a late status of this request must not end the next one
        return msgs

    def ack_all(self, msgs: list[tuple[bytes, bytes, bytes | None]]) -> None:
        """Queue one ``+ACK`` per message (explicit acks) in a single write."""
        nc = self._nc
        frames = [b"PUB %s 4\r\n+ACK\r\n" % m[0] for m in msgs]
        nc._pending.extend(frames)
        nc._pending_data_size += sum(len(f) for f in frames)

    async def flush(self) -> None:
        await self._nc._flush_pending()


_batch_decoder: msgspec.json.Decoder[list[Event]] = msgspec.json.Decoder(list[Event])
_TABLE_OF = {"trades": "trades", "ticker": "tickers", "l2": "l2"}


def _decode_all(msgs: list[tuple[bytes, bytes, bytes | None]], result: IngestResult) -> list[Event | None]:
    """Decode every payload; None for one that is not an event (counted as rejected).

    The fast path decodes the whole batch as one JSON array (one call instead of thousands); any
    problem, including a payload that is not exactly one JSON value, falls back to one by one.
    """
    try:
        events: list[Event | None] = list(_batch_decoder.decode(b"[" + b",".join(m[1] for m in msgs) + b"]"))
        if len(events) == len(msgs):
            return events
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    out: list[Event | None] = []
    for m in msgs:
        try:
            out.append(decode_event(m[1]))
        except (msgspec.DecodeError, msgspec.ValidationError):
            result.rejected += 1
            out.append(None)
    return out


def _rows(msgs: list[tuple[bytes, bytes, bytes | None]], result: IngestResult
          ) -> tuple[dict[str, pa.Table], list[int], list[int]]:
    """Decode messages into one Arrow table per storage table; publish_ns from the header.

    Repeats of an event key inside the batch (a stream can hold a message twice when a retry came
    after the server's duplicate window) are dropped here, first one kept, and counted as duplicates.
    """
    by_table: dict[str, tuple[list[Event], list[int | None]]] = {}
    seen: set[tuple[str, str, str, str, int]] = set()
    for m, ev in zip(msgs, _decode_all(msgs, result), strict=True):
        if ev is None:
            continue
        key = (ev.session, ev.venue, ev.channel, ev.symbol, ev.seq)
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        table = _TABLE_OF[ev.channel]
        group = by_table.get(table)
        if group is None:
            group = by_table[table] = ([], [])
        group[0].append(ev)
        group[1].append(_publish_ns(m[2]))
    tables: dict[str, pa.Table] = {}
    pubs: list[int] = []
    receipts: list[int] = []
    for table, (evs, pub) in by_table.items():
        t = arrow_table(table, evs)
        col = t.schema.get_field_index("publish_ns")
        tables[table] = t.set_column(col, "publish_ns", pa.array(pub, pa.int64()))
        pubs.extend(p for p in pub if p is not None)
        receipts.extend(e.receipt_ns for e in evs)
    return tables, pubs, receipts


def _publish_ns(hdr: bytes | None) -> int | None:
    if not hdr:
        return None
    i = hdr.find(_PUB_HDR)
    if i < 0:
        return None
    j = hdr.find(b"\r\n", i + 2)
    try:
        return int(hdr[i + len(_PUB_HDR):j])
    except ValueError:
        return None


def _stamp(tables: dict[str, pa.Table], ingest_ns: int) -> dict[str, pa.Table]:
    out = {}
    for name, t in tables.items():
        col = t.schema.get_field_index("ingest_ns")
        out[name] = t.set_column(col, "ingest_ns", pa.array([ingest_ns] * t.num_rows, pa.int64()))
    return out


async def run_ingest(config: IngestConfig, *, clock: Clock = DEFAULT_CLOCK, store: Store | None = None,
                     progress: Callable[[IngestResult], None] | None = None) -> IngestResult:
    """Consume the stream into the store until idle/limit/cancel; returns counts and latencies."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError

    servers, opts = config.nats()
    store = store or open_store(config.target)
    result = IngestResult(target=store.target)
    try:
        nc = await connect(servers, timeout_s=config.connect_timeout_s)
    except ConnectionFailedError:
        store.close()
        raise
    started = time.monotonic()
    try:
        js = nc.jetstream(timeout=config.connect_timeout_s)
        try:
            await js.stream_info(opts["stream"])
        except NotFoundError as exc:
            raise ConfigError(f"JetStream stream {opts['stream']} does not exist (start the feed first, "
                              f"or pass ?stream=NAME)") from exc
        try:
            await js.consumer_info(opts["stream"], opts["durable"])
        except NotFoundError:
            await js.add_consumer(opts["stream"], ConsumerConfig(
                durable_name=opts["durable"], ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                filter_subject=f"{opts['prefix']}.>", ack_wait=config.ack_wait_s,
                max_ack_pending=max(50_000, config.batch * 4), max_waiting=64))
        puller = _Puller(nc, opts["stream"], opts["durable"])
        await puller.start()
        log_event(log, logging.INFO, "ingest_started", stream=opts["stream"], durable=opts["durable"],
                  target=store.target)
        last_msg = time.monotonic()
        fetched = 0
        # One batch commits (in a worker thread) while the next one is fetched; commits stay in order
        # and a batch is acknowledged only by its own commit.
        committing: asyncio.Task[None] | None = None
        try:
            while config.max_messages is None or fetched < config.max_messages:
                want = config.batch
                if config.max_messages is not None:
                    want = min(want, config.max_messages - fetched)
                try:
                    msgs = await puller.fetch(want, config.fetch_timeout_s)
                except (nats.errors.ConnectionClosedError, nats.errors.OutboundBufferLimitError) as exc:
                    log_event(log, logging.WARNING, "ingest_fetch_failed", error=repr(exc))
                    await asyncio.sleep(0.25)
                    msgs = []
                if not msgs:
                    if config.idle_exit_s is not None and time.monotonic() - last_msg >= config.idle_exit_s:
                        break
                    continue
                last_msg = time.monotonic()
                fetched += len(msgs)
                if committing is not None:
                    await asyncio.shield(committing)
                committing = asyncio.create_task(_commit_and_ack(msgs, store, result, clock, puller))
                if progress is not None:
                    progress(result)
        finally:
            if committing is not None:  # finish (or fail) the last commit before the store closes
                await asyncio.wait([committing])
                if not committing.cancelled() and committing.exception() is not None:
                    raise committing.exception()  # type: ignore[misc]
            result.active_s = last_msg - started
    finally:
        result.elapsed_s = time.monotonic() - started
        with contextlib.suppress(Exception):
            await nc.close()
        store.close()
    log_event(log, logging.INFO, "ingest_finished", messages=result.messages, inserted=result.inserted,
              duplicates=result.duplicates, rejected=result.rejected)
    return result


async def _commit_and_ack(msgs: list[tuple[bytes, bytes, bytes | None]], store: Store,
                          result: IngestResult, clock: Clock, puller: _Puller) -> None:
    tables, pubs, receipts = _rows(msgs, result)
    ingest_ns = clock.wall_ns()
    # If this raises, nothing is acknowledged and the server re-delivers the batch after ack_wait.
    inserted = await asyncio.to_thread(functools.partial(store.commit, _stamp(tables, ingest_ns), unique=True))
    n_rows = sum(t.num_rows for t in tables.values())
    new = sum(inserted.values())
    result.messages += len(msgs)
    result.inserted += new
    result.duplicates += n_rows - new
    result.batches += 1
    for t, k in inserted.items():
        result.per_table[t] = result.per_table.get(t, 0) + k
    # HdrHistogram recording is ~10 us per value in Python: record an evenly spaced sample.
    for values, rec in ((pubs, result.publish_to_ingest), (receipts, result.receipt_to_ingest)):
        step = max(1, len(values) // LATENCY_SAMPLES_PER_BATCH)
        for v in values[::step]:
            rec.record(ingest_ns - v)
    puller.ack_all(msgs)
    await puller.flush()
