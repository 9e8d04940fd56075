"""NATS protocol frames tickpath writes and reads itself, as pure functions over bytes.

Out: ``HPUB`` frames of JetStream publishes with a ``Nats-Msg-Id`` (the server drops a retried
publish inside the stream's duplicate window) and ``Tickpath-Publish-Ns`` header, and ``+ACK``
replies to JetStream deliveries. In: JetStream publish acks, ``{"stream":..,"seq":..}`` with
``"duplicate":true`` for a de-duplicated publish, ``{"error":{...}}`` for a refused one, or an
``HMSG`` with status 503 when no stream takes the subject (no responders).

The hot paths judge an ack with :func:`ack_ok` and :func:`ack_duplicate` (byte searches, no JSON);
:func:`parse_ack` decodes one fully, for logs and tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

__all__ = [
    "HPUB",
    "MSG_ID_HEADER",
    "PUBLISH_NS_HEADER",
    "Ack",
    "Hpub",
    "ack_duplicate",
    "ack_frames",
    "ack_ok",
    "header_bytes",
    "hpub_frame",
    "hpub_frames",
    "parse_ack",
    "parse_hpub",
]

MSG_ID_HEADER = "Nats-Msg-Id"
# Wall-clock ns when the sink sent a message; ``ingest`` stores it as ``publish_ns``.
PUBLISH_NS_HEADER = "Tickpath-Publish-Ns"

# HPUB <subject> <reply> <header bytes> <total bytes>, the header block, the payload. The reply
# subject is the publisher's inbox prefix (ending in '.') followed by the message's reply id.
HPUB = b"HPUB %s %s%d %d %d\r\nNATS/1.0\r\nNats-Msg-Id: %s\r\nTickpath-Publish-Ns: %d\r\n\r\n%s\r\n"
_HDR_FIXED = len(b"NATS/1.0\r\nNats-Msg-Id: \r\nTickpath-Publish-Ns: \r\n\r\n")


def header_bytes(publish_ns: int) -> int:
    """The length of :data:`HPUB`'s header block without the msg id (add ``len(msg_id)``)."""
    return _HDR_FIXED + len(b"%d" % publish_ns)


def hpub_frame(subject: bytes, inbox: bytes, rid: int, msg_id: bytes, publish_ns: int, payload: bytes) -> bytes:
    """One ``HPUB`` of ``payload`` on ``subject``, replying to ``<inbox><rid>``, with both headers.
    (The publisher renders :data:`HPUB` inline, the same way, to save a call per message.)"""
    hlen = header_bytes(publish_ns) + len(msg_id)
    return HPUB % (subject, inbox, rid, hlen, hlen + len(payload), msg_id, publish_ns, payload)


def hpub_frames(msgs: Iterable[tuple[str, str, bytes]], inbox: bytes, first_rid: int, publish_ns: int) -> bytes:
    """The ``HPUB`` frames of ``(subject, msg id, payload)`` messages, reply ids from ``first_rid`` on."""
    return b"".join(
        hpub_frame(s.encode(), inbox, first_rid + i, k.encode(), publish_ns, d) for i, (s, k, d) in enumerate(msgs)
    )


@dataclass(frozen=True)
class Hpub:
    """One parsed ``HPUB`` frame (:func:`parse_hpub`)."""

    subject: bytes
    reply: bytes
    headers: dict[str, str]
    payload: bytes


def parse_hpub(wire: bytes) -> tuple[list[Hpub], bytes]:
    """Split ``HPUB`` frames off the front of ``wire``: the complete frames and the rest (an
    incomplete frame, or whatever follows that is not an ``HPUB``). For tests and in-memory links."""
    out: list[Hpub] = []
    pos = 0
    while wire.startswith(b"HPUB ", pos):
        eol = wire.find(b"\r\n", pos)
        if eol < 0:
            break
        args = wire[pos + 5 : eol].split(b" ")
        if len(args) != 4:
            raise ValueError(f"HPUB control line with {len(args)} arguments: {wire[pos:eol]!r}")
        hlen, total = int(args[2]), int(args[3])
        body = eol + 2
        if body + total + 2 > len(wire):
            break
        block = wire[body : body + hlen].decode()
        headers = dict(line.split(": ", 1) for line in block.split("\r\n")[1:] if line)
        out.append(Hpub(args[0], args[1], headers, wire[body + hlen : body + total]))
        pos = body + total + 2
    return out, wire[pos:]


@dataclass(frozen=True)
class Ack:
    """A JetStream publish ack: the stream and sequence stored, or the error the server gave."""

    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def parse_ack(data: bytes, headers: bytes | None = None) -> Ack:
    """Decode one ack payload (and its raw header block, for a status). Never raises: what is not a
    PubAck becomes an :class:`Ack` with ``error`` set."""
    if headers and b" 503" in headers[:16]:
        return Ack(error="503 no responders: no stream takes the subject (or it has no leader)")
    if not data:
        return Ack(error="empty ack")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return Ack(error=f"not JSON: {data[:60]!r}")
    if not isinstance(doc, dict):
        return Ack(error=f"not an object: {data[:60]!r}")
    if "error" in doc:
        err = doc["error"]
        desc = err.get("description", err) if isinstance(err, dict) else err
        return Ack(error=str(desc))
    seq = doc.get("seq")
    if not isinstance(doc.get("stream"), str) or not isinstance(seq, int):
        return Ack(error=f"no stream and seq: {data[:60]!r}")
    return Ack(doc["stream"], seq, doc.get("duplicate") is True)


def ack_ok(data: bytes, headers: bytes | None) -> bool:
    """The fast verdict of the hot path: not a 503 status, not empty, not a JetStream error."""
    return not (headers and b" 503" in headers[:16]) and bool(data) and b'"error"' not in data


def ack_duplicate(data: bytes) -> bool:
    """An ack of a publish the server had already stored (same ``Nats-Msg-Id``, inside the window)."""
    return b'"duplicate"' in data


def ack_frames(replies: Iterable[bytes]) -> bytes:
    """``+ACK`` frames for JetStream deliveries, given their reply (ack) subjects, as one buffer."""
    return b"".join([b"PUB %s 4\r\n+ACK\r\n" % r for r in replies])
