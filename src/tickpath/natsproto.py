"""The raw NATS protocol client bits tickpath uses on its hot paths, in one place.

Both the JetStream sink (:mod:`tickpath.sinks.nats`: HPUB frames out, acks in) and ``tickpath
ingest`` (:mod:`tickpath.ingest.consumer`: pull deliveries in, ``+ACK`` frames out) go around parts
of nats-py that cost a future, a regex or a ``Msg`` per message, which caps them far below 100k
msg/s:

- :func:`connect` connects with nats-py and installs a fast ``MSG``/``HMSG`` parser;
- :func:`set_direct_handler` hands one subscription's frames to a plain function, straight from the
  parser (no ``Msg``, queue or task per message);
- :func:`install_delivery_parser` collects back-to-back JetStream deliveries of one subscription in
  bulk, with no call per frame;
- :func:`queue_frames` / :func:`flush_frames` put pre-rendered protocol frames on the client's write
  buffer, so nats-py's flusher writes them and its reconnect logic replays them like ``publish``;
- :func:`ack_frames` renders the ``+ACK`` replies of a batch of JetStream deliveries.

Everything else (PING/PONG, INFO, errors, reconnects, subscriptions) stays nats-py's. These touch
private attributes of the nats-py version pinned in ``pyproject.toml`` (2.x); the fast parser is
only installed when the client's parser is the one we know.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from tickpath.errors import ConfigError, ConnectionFailedError
from tickpath.logs import log_event

log = logging.getLogger(__name__)

__all__ = [
    "PUBLISH_NS_HEADER",
    "AcksHandler",
    "DirectHandler",
    "ack_frames",
    "buffered_bytes",
    "check_name",
    "check_prefix",
    "connect",
    "flush_frames",
    "install_ack_parser",
    "install_delivery_parser",
    "install_fast_parser",
    "jetstream_unavailable",
    "queue_frames",
    "set_direct_handler",
    "split_url",
]

# Wall-clock ns when the sink sent a message; ``ingest`` stores it as ``publish_ns``.
PUBLISH_NS_HEADER = "Tickpath-Publish-Ns"

# A direct handler takes (subject, reply, payload, raw headers or None) of one MSG/HMSG, synchronously.
DirectHandler = Callable[[bytes, bytes, bytes, bytes | None], None]
# An acks handler takes the subject suffixes and the payloads of a read's run of reply frames.
AcksHandler = Callable[[list[bytes], list[bytes]], None]


def _fast_parser_class() -> Any:
    """A nats-py protocol parser with a fast path for ``MSG``/``HMSG`` (built lazily: nats is optional).

    nats-py matches two regular expressions and fills a dict per message; at 100k messages per second
    (JetStream acks for the sink, deliveries for ingest) that is a large share of the CPU. Complete
    ``MSG``/``HMSG`` frames are split with ``find``/``split`` here. A subscription with a direct
    handler (:func:`set_direct_handler`) gets its messages by a plain function call, with no ``Msg``,
    coroutine or queue per message; the others go to the same ``_process_msg`` as before. Anything
    else (PING, INFO, -ERR, a frame not fully received yet) goes to nats-py's own parser, so protocol
    handling stays theirs.
    """
    from nats.protocol.parser import AWAITING_CONTROL_LINE, Parser

    class FastParser(Parser):  # type: ignore[misc]
        direct: dict[int, DirectHandler]

        async def parse(self, data: bytes = b"") -> None:
            if self.state != AWAITING_CONTROL_LINE:
                await super().parse(data)
                return
            buf = self.buf
            buf.extend(data)
            # One immutable copy per read; every frame below is sliced from it once.
            view = bytes(buf)
            n, pos, other = len(view), 0, False
            process = self.nc._process_msg
            direct = self.__dict__.get("direct") or {}
            try:
                while pos < n:
                    if view.startswith(b"MSG ", pos):
                        start, has_hdr = pos + 4, False
                    elif view.startswith(b"HMSG ", pos):
                        start, has_hdr = pos + 5, True
                    else:
                        other = True
                        break
                    eol = view.find(b"\r\n", start)
                    if eol < 0:
                        break
                    args = view[start:eol].split()
                    end = eol + 2 + int(args[-1])
                    if end + 2 > n:
                        break  # payload not complete yet
                    body = eol + 2
                    sid = int(args[1])
                    if has_hdr:
                        reply = args[2] if len(args) == 5 else b""
                        split = body + int(args[-2])
                        hdr: bytes | None = view[body:split]
                        body = split
                    else:
                        reply = args[2] if len(args) == 4 else b""
                        hdr = None
                    pos = end + 2
                    handler = direct.get(sid)
                    if handler is not None:
                        handler(args[0], reply, view[body:end], hdr)
                    else:
                        await process(sid, args[0], reply, view[body:end], hdr)
            finally:
                if pos:
                    del buf[:pos]
            if other and buf is self.buf:
                await super().parse(b"")

    return FastParser


def set_direct_handler(nc: Any, sid: int, handler: DirectHandler) -> None:
    """Deliver subscription ``sid``'s messages to ``handler`` straight from the protocol parser.

    The fast parser installed by :func:`connect` looks the handler up per frame. ``_process_msg`` is
    wrapped as well: frames that nats-py's own parser handles (those that follow a PING or INFO in
    the same read, or all of them on a nats-py version we do not know) must reach the handler too,
    never the subscription's unread queue.
    """
    direct = nc._ps.__dict__.get("direct")
    if isinstance(direct, dict):
        direct[sid] = handler
    original = nc._process_msg

    async def process_msg(msg_sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if msg_sid == sid:
            handler(subject, reply, data, headers)
            return
        await original(msg_sid, subject, reply, data, headers)

    nc._process_msg = process_msg


async def connect(servers: Sequence[str], *, timeout_s: float = 5.0, **options: Any) -> Any:
    """Connect to NATS: a few quick attempts at start (so a wrong address fails in seconds, with
    :class:`ConnectionFailedError`), then reconnect forever once the link has been up."""
    from nats.aio.client import Client

    async def _quiet(exc: Exception) -> None:  # nats-py prints tracebacks by default
        log_event(log, logging.DEBUG, "nats_client_error", error=repr(exc))

    errors: list[Exception] = []
    report = options.pop("error_cb", None) or _quiet

    async def remember(exc: Exception) -> None:
        errors.append(exc)
        await report(exc)

    attempts = max(1, int(timeout_s))
    nc: Any = Client()  # nats-py types its timeouts as int; it takes float seconds
    try:
        # nats-py never returns from a TLS handshake that failed verification (it reports the error
        # and waits): bound the whole connect by the attempts it would make.
        async with asyncio.timeout(attempts * (timeout_s + 0.25) + 1.0):
            await nc.connect(
                servers=list(servers),
                connect_timeout=timeout_s,
                allow_reconnect=True,
                max_reconnect_attempts=attempts,
                reconnect_time_wait=0.25,
                error_cb=remember,
                **options,
            )
    except Exception as exc:
        if isinstance(exc, TimeoutError):
            with contextlib.suppress(Exception):
                await nc.close()
        why = exc if not isinstance(exc, TimeoutError) or not errors else errors[-1]
        raise ConnectionFailedError(f"cannot connect to NATS at {', '.join(servers)}: {why}") from exc
    nc.options["max_reconnect_attempts"] = -1
    install_fast_parser(nc)
    return nc


def jetstream_unavailable(servers: Sequence[str]) -> ConnectionFailedError:
    """The error for a server that answers NATS but not JetStream (``$JS.API`` has no responders:
    nats-py's ``ServiceUnavailableError``, code None), for the sink and ``ingest`` alike.
    ``servers`` must not carry credentials."""
    return ConnectionFailedError(
        f"JetStream is not enabled on {', '.join(servers)}: start nats-server with -js "
        f"(or enable JetStream for this account)"
    )


def install_fast_parser(nc: Any) -> bool:
    """Swap ``nc``'s protocol parser for the fast one; False (left alone) on an unknown nats-py."""
    if type(nc._ps).__name__ != "Parser":  # the nats-py version we know (2.16, pinned)
        return False
    fast = _fast_parser_class()(nc)
    fast.__dict__.update(nc._ps.__dict__)  # carry over any partly received frame
    fast.direct = {}
    nc._ps = fast
    return True


def install_delivery_parser(
    nc: Any, sid: int, deliveries: list[tuple[bytes, bytes, bytes | None]], on_read: Callable[[], None]
) -> bool:
    """Collect subscription ``sid``'s deliveries in bulk: ``(reply, payload, raw headers)`` appended
    to ``deliveries``, then ``on_read()`` once per read that added any.

    The fast parser (:func:`install_fast_parser`) still splits each frame with several Python steps
    and calls a handler per frame: about 4 us per delivery here, a fifth of ``tickpath ingest``'s
    CPU. A pull reply is almost nothing but deliveries of one subscription, back to back, so this
    loop splits each control line (``HMSG <subject> <sid> <reply> <header bytes> <total bytes>``), slices
    header and payload once and appends the delivery, with no call per frame; the batch-size check
    runs once per read. (A compiled regex per control line was slower: ~100 bytes of ack subject
    through Python's regex engine cost more than ``find`` and ``split``.) The first frame it does
    not know (a status, a PING, another subscription, an incomplete frame) ends the loop and the
    rest of the read goes to the parser it extends, which hands our frames to the direct handler as
    before. False (nothing changed) when that parser is not tickpath's.
    """
    sid_bytes = str(sid).encode()

    def take(buf: bytearray) -> None:
        view = bytes(buf)
        n, pos = len(view), 0
        find = view.find
        append = deliveries.append
        while view.startswith(b"HMSG ", pos):
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            # subject, sid, reply, header bytes, total bytes. A status (404, 408) has no reply:
            # nats-server writes it with an empty token (two spaces), which stays here as b"".
            args = view[pos + 5 : eol].split(b" ")
            if len(args) != 5 or not args[2] or args[1] != sid_bytes:
                break
            body = eol + 2
            end = body + int(args[4])
            if end + 2 > n:
                break  # payload not complete yet
            split = body + int(args[3])
            append((args[2], view[split:end], view[body:split]))
            pos = end + 2
        if pos:
            del buf[:pos]
            on_read()

    return _extend_fast_parser(nc, take)


def install_ack_parser(nc: Any, sid: int, subject_prefix: bytes, on_acks: AcksHandler) -> bool:
    """Hand subscription ``sid``'s plain ``MSG`` frames (publish acks) to ``on_acks`` a read at a time.

    A JetStream publisher at 100k msg/s receives as many ``PubAck`` replies, about 180 per read, and
    the fast parser's Python steps per frame (find, split, ints, slices, a handler call) were a third
    of the sink's CPU. An ack is ``MSG <subject> <sid>  <bytes>\r\n<one line of JSON>\r\n``, so a
    read of acks is pairs of lines: one ``split`` cuts it into lines, one more cuts the control
    lines into tokens, and the checks below run over whole lists in C. ``on_acks(suffixes,
    payloads)`` gets, in order, each subject after ``subject_prefix`` (the subscription is
    ``<subject_prefix>*``, so its sid vouches for the prefix) and each payload.

    A read is taken in bulk only when its complete frames are all such frames: four tokens per
    control line, each ``MSG`` with our sid, every payload as long as declared (a payload holding a
    line break would shift the pairs and fail these). Otherwise (an ``HMSG`` status such as 503, a
    PING, another subscription) the whole read goes to the parser this one extends, as does what
    follows the last complete frame; so the subscription also needs its per-frame direct handler
    (:func:`set_direct_handler`). False (nothing changed) when ``nc``'s parser is not the fast one.
    (A regular expression splitting the read into frames cost 0.93 us per ack, this 0.64.)
    """
    from operator import itemgetter

    sid_bytes = str(sid).encode()
    suffix = itemgetter(slice(len(subject_prefix), None))

    def take(buf: bytearray) -> None:
        lines = bytes(buf).split(b"\r\n")
        k = (len(lines) - 1) >> 1  # complete (control line, payload) pairs; the rest is a tail
        if k:
            tokens = b" ".join(lines[0 : 2 * k : 2]).split()  # MSG, subject, sid, bytes per frame
            payloads = lines[1 : 2 * k : 2]
            if (
                len(tokens) == 4 * k
                and tokens[0::4].count(b"MSG") == k
                and tokens[2::4].count(sid_bytes) == k
                and _lengths_match(payloads, tokens[3::4])
            ):
                del buf[: len(buf) - len(b"\r\n".join(lines[2 * k :]))]
                on_acks(list(map(suffix, tokens[1::4])), payloads)

    return _extend_fast_parser(nc, take)


def _extend_fast_parser(nc: Any, take: Callable[[bytearray], None]) -> bool:
    """Put a bulk step in front of ``nc``'s fast parser: at a frame boundary, each read is appended
    to the parser's buffer and ``take(buf)`` consumes what it recognises from the front of it; what
    is left goes through the fast parser as before. False (nothing changed) when ``nc``'s parser is
    not tickpath's fast one (:func:`install_fast_parser`)."""
    from nats.protocol.parser import AWAITING_CONTROL_LINE

    base = type(nc._ps)
    if base.__name__ != "FastParser":
        return False

    class BulkParser(base):  # type: ignore[misc, valid-type]
        async def parse(self, data: bytes = b"") -> None:
            if self.state != AWAITING_CONTROL_LINE or not data:
                await super().parse(data)
                return
            self.buf.extend(data)
            take(self.buf)
            if self.buf:
                await super().parse(b"")

    parser = BulkParser(nc)
    parser.__dict__.update(nc._ps.__dict__)  # partly received frames and the direct handlers
    nc._ps = parser
    return True


def _lengths_match(payloads: list[bytes], declared: list[bytes]) -> bool:
    """Every payload as long as its control line says (a token that is not a number: no)."""
    try:
        return list(map(len, payloads)) == list(map(int, declared))
    except ValueError:
        return False


def queue_frames(nc: Any, data: bytes, messages: int = 0) -> None:
    """Append pre-rendered protocol frames to ``nc``'s write buffer (written by its flusher).

    The buffer is the one ``publish`` uses, so the frames are sent in order with everything else
    and replayed after a reconnect; ``messages`` is added to the client's ``out_msgs`` counter.
    """
    nc._pending.append(data)
    nc._pending_data_size += len(data)
    if messages:
        nc.stats["out_msgs"] += messages


def buffered_bytes(nc: Any) -> int:
    """Bytes waiting in ``nc``'s write buffer (grows while disconnected)."""
    return int(nc._pending_data_size)


async def flush_frames(nc: Any) -> None:
    """Wake ``nc``'s flusher to write the queued frames (does not wait for the server)."""
    await nc._flush_pending()


def ack_frames(replies: Iterable[bytes]) -> bytes:
    """``+ACK`` frames for JetStream deliveries, given their reply (ack) subjects, as one buffer."""
    return b"".join([b"PUB %s 4\r\n+ACK\r\n" % r for r in replies])


def covers(pattern: str, prefix: str) -> bool:
    """True when the subject filter ``pattern`` (``*`` one token, ``>`` one or more) matches every
    subject under ``prefix``, i.e. takes all of ``<prefix>.>``: what a stream must bind for a sink."""
    p, q = pattern.split("."), prefix.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return i <= len(q)  # the rest of the prefix and at least one token more
        if i >= len(q) or (tok != "*" and tok != q[i]):
            return False  # a narrower filter, or another prefix
    return False  # without '>' a filter matches subjects of one length only


# JetStream stream and consumer names become subject tokens and file names: letters, digits, '-', '_'
# (no '.', wildcards, spaces or path separators). Subject prefixes are such tokens joined by '.'.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def check_name(kind: str, name: str) -> str:
    """``name`` when it is a valid JetStream ``kind`` ("stream", "durable") name, else ConfigError."""
    if not _NAME_RE.match(name):
        raise ConfigError(f"{kind}={name!r}: a JetStream {kind} name takes only letters, digits, '-' and '_'")
    return name


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is '.'-separated tokens of letters, digits, '-' and '_', else ConfigError."""
    if not all(_NAME_RE.match(t) for t in prefix.split(".")):
        raise ConfigError(f"prefix={prefix!r}: subject tokens of letters, digits, '-' and '_', separated by '.'")
    return prefix


def split_url(url: str, what: str) -> tuple[tuple[str, ...], dict[str, str], str]:
    """``nats://[user:password@|token@]host[:port][,host[:port]...][?query]`` (or ``tls://``) as
    (server URLs without credentials, nats-py's credential options, the query), for the sink and
    ``ingest`` alike. Credentials stay out of the server URLs, which go into messages."""
    parts = urlsplit(url)
    cred, at, netloc = parts.netloc.rpartition("@")
    shown = f"{parts.scheme}://{netloc}" if at else url  # errors never echo credentials
    if parts.scheme not in ("nats", "tls"):
        raise ConfigError(f"{what} starts with nats:// or tls://, not {shown!r}")
    credentials: dict[str, str] = {}
    if at:
        user, sep, password = cred.partition(":")
        credentials = {"user": user, "password": password} if sep else {"token": cred}
    servers = tuple(f"{parts.scheme}://{h if ':' in h else h + ':4222'}" for h in netloc.split(",") if h)
    if not servers:
        raise ConfigError(f"no NATS server in {shown!r}")
    return servers, credentials, parts.query
