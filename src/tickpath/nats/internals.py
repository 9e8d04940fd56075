"""The one module that touches nats-py's private attributes, each checked before first use.

The JetStream sink (HPUB frames out, acks in) and ``tickpath ingest`` (pull deliveries in, ``+ACK``
frames out) go around parts of nats-py that cost a future, a regex or a ``Msg`` per message, which
caps them far below 100k msg/s:

- :func:`install_fast_parser` swaps in a parser with a fast ``MSG``/``HMSG`` path;
- :func:`set_direct_handler` hands one subscription's frames to a plain function, straight from the
  parser (no ``Msg``, queue or task per message);
- :func:`install_delivery_parser` / :func:`install_ack_parser` take back-to-back deliveries or
  publish acks of one subscription in bulk, with no call per frame;
- :func:`queue_frames` / :func:`flush_frames` put pre-rendered frames on the client's write buffer,
  so nats-py's flusher writes them and its reconnect logic replays them like ``publish``.

Everything else (PING/PONG, INFO, errors, reconnects, subscriptions) stays nats-py's. The private
attributes these rely on are those of the nats-py pinned in ``pyproject.toml``; :func:`check_internals`
(run by :func:`tickpath.nats.client.connect` and the installers) verifies each one exists with the
shape used here and raises :class:`~tickpath.errors.ToolMissingError` naming the one that moved,
rather than an ``AttributeError`` deep in a hot path. ``tests/nats/test_internals.py`` pins them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tickpath.errors import ToolMissingError

__all__ = [
    "SUPPORTED",
    "AcksHandler",
    "DirectHandler",
    "buffered_bytes",
    "check_internals",
    "flush_frames",
    "install_ack_parser",
    "install_delivery_parser",
    "install_fast_parser",
    "queue_frames",
    "reconnect_forever",
    "set_direct_handler",
    "split_deliveries",
    "subscription_id",
    "verify",
]

SUPPORTED = "2.16"  # the nats-py minor version whose internals these are (pyproject.toml pins 2.16.0)

# A direct handler takes (subject, reply, payload, raw headers or None) of one MSG/HMSG, synchronously.
DirectHandler = Callable[[bytes, bytes, bytes, bytes | None], None]
# A delivery splitter: (parser buffer, sid as ASCII, deliveries list) -> bytes taken (split_deliveries).
SplitDeliveries = Callable[[bytearray, bytes, list[tuple[bytes, bytes, bytes | None]]], int]
# An acks handler takes the subject suffixes and the payloads of a read's run of reply frames.
AcksHandler = Callable[[list[bytes], list[bytes]], None]

_checked = False


def _is_coroutine_method(obj: Any, name: str) -> bool:
    return inspect.iscoroutinefunction(getattr(obj, name, None))


def verify(version: str, parser_module: Any, client: Any, subscription: Any, *, modules_only: bool = False) -> None:
    """Check every private attribute this module uses on a fresh nats-py ``client`` (not connected),
    its ``parser_module`` and a ``subscription`` made with ``id=7`` (with ``modules_only``, the
    module's alone);
    :class:`ToolMissingError` names the first that moved."""
    ps = getattr(client, "_ps", None)
    stats = getattr(client, "stats", None)
    checks: list[tuple[str, Callable[[], bool]]] = [
        (
            "nats.protocol.parser.AWAITING_CONTROL_LINE",
            lambda: isinstance(getattr(parser_module, "AWAITING_CONTROL_LINE", None), int),
        ),
        ("nats.protocol.parser.Parser", lambda: _is_coroutine_method(getattr(parser_module, "Parser", None), "parse")),
        ("Client._ps", lambda: ps is not None and type(ps) is getattr(parser_module, "Parser", None)),
        ("Parser.buf", lambda: isinstance(getattr(ps, "buf", None), bytearray)),
        ("Parser.state", lambda: isinstance(getattr(ps, "state", None), int)),
        ("Parser.nc", lambda: getattr(ps, "nc", None) is client),
        ("Client._process_msg", lambda: _is_coroutine_method(client, "_process_msg")),
        ("Client._flush_pending", lambda: _is_coroutine_method(client, "_flush_pending")),
        ("Client._pending", lambda: isinstance(getattr(client, "_pending", None), list)),
        ("Client._pending_data_size", lambda: isinstance(getattr(client, "_pending_data_size", None), int)),
        ("Client.stats['out_msgs']", lambda: isinstance(stats, dict) and isinstance(stats.get("out_msgs"), int)),
        ("Client.options", lambda: isinstance(getattr(client, "options", None), dict)),
        ("Subscription._id", lambda: getattr(subscription, "_id", None) == 7),
    ]
    for attr, ok in checks[: 2 if modules_only else None]:
        if not ok():
            raise ToolMissingError(
                f"nats-py {version} moved {attr}; tickpath supports {SUPPORTED} (pip install 'nats-py=={SUPPORTED}.0')"
            )


def check_internals() -> None:
    """:func:`verify` the installed nats-py, once per process (cheap after the first call)."""
    global _checked
    if _checked:
        return
    import nats.aio.client as client_module
    import nats.protocol.parser as parser_module
    from nats.aio.subscription import Subscription

    version = str(getattr(client_module, "__version__", "?"))
    verify(version, parser_module, None, None, modules_only=True)  # before building anything from them
    try:
        client = client_module.Client()
        sub = Subscription(client, id=7)
    except Exception as exc:  # a constructor that changed: still the same clear error
        raise ToolMissingError(
            f"nats-py {version} changed its Client ({exc!r}); tickpath supports {SUPPORTED}"
        ) from exc
    verify(version, parser_module, client, sub)
    _checked = True


def subscription_id(sub: Any) -> int:
    """The sid nats-py gave subscription ``sub`` (what the parser sees in ``MSG`` frames)."""
    return int(sub._id)


def reconnect_forever(nc: Any) -> None:
    """Once connected, retry a lost link forever (connect took a few attempts only)."""
    nc.options["max_reconnect_attempts"] = -1


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


def install_fast_parser(nc: Any) -> bool:
    """Swap ``nc``'s protocol parser for the fast one; False (left alone) when it is not nats-py's
    own (already swapped, or a test's). :func:`check_internals` runs first."""
    check_internals()
    if type(nc._ps).__name__ != "Parser":  # the nats-py version we know (2.16, pinned)
        return False
    fast = _fast_parser_class()(nc)
    fast.__dict__.update(nc._ps.__dict__)  # carry over any partly received frame
    fast.direct = {}
    nc._ps = fast
    return True


def install_delivery_parser(
    nc: Any,
    sid: int,
    deliveries: list[tuple[bytes, bytes, bytes | None]],
    on_read: Callable[[], None],
    split: SplitDeliveries | None = None,
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
    cut = split or split_deliveries

    def take(buf: bytearray) -> None:
        pos = cut(buf, sid_bytes, deliveries)
        if pos:
            del buf[:pos]
            on_read()

    return _extend_fast_parser(nc, take)


def split_deliveries(buf: bytearray, sid: bytes, deliveries: list[tuple[bytes, bytes, bytes | None]]) -> int:
    """The deliveries of subscription ``sid`` (its number as ASCII) at the front of ``buf``, appended
    to ``deliveries`` as ``(reply, payload, raw headers)``; returns how many bytes they took.

    The reference of :func:`install_delivery_parser`'s step (``split`` there may be a compiled
    equivalent, e.g. ``tickpath.ingest._decode.split_deliveries``, that must stop where this does).
    """
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
        if len(args) != 5 or not args[2] or args[1] != sid or not (args[3].isdigit() and args[4].isdigit()):
            break
        body = eol + 2
        end = body + int(args[4])
        split = body + int(args[3])
        if end + 2 > n or split > end:
            break  # payload not complete yet (or sizes no server writes)
        append((args[2], view[split:end], view[body:split]))
        pos = end + 2
    return pos


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
