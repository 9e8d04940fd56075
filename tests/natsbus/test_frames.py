"""tickpath.nats.frames: HPUB frames out and JetStream acks in, as bytes."""

from __future__ import annotations

import pytest

from tickpath.nats.frames import (
    MSG_ID_HEADER,
    PUBLISH_NS_HEADER,
    Ack,
    ack_duplicate,
    ack_frames,
    ack_ok,
    hpub_frame,
    hpub_frames,
    parse_ack,
    parse_hpub,
)


def test_hpub_frame_is_byte_exact() -> None:
    """One HPUB: control line with reply subject and the header and total lengths, both headers, payload."""
    frame = hpub_frame(b"tp.binance.trades.BTCUSDT", b"_INBOX.x.", 7, b"k1", 1234, b'{"p":1}')
    headers = b"NATS/1.0\r\nNats-Msg-Id: k1\r\nTickpath-Publish-Ns: 1234\r\n\r\n"
    assert frame == (
        b"HPUB tp.binance.trades.BTCUSDT _INBOX.x.7 %d %d\r\n" % (len(headers), len(headers) + 7)
        + headers
        + b'{"p":1}\r\n'
    )


def test_hpub_frames_parse_back() -> None:
    """Frames of several messages parse back to their subjects, reply ids, headers and payloads; an
    incomplete tail is left over."""
    msgs = [("a.b", "id-1", b"x"), ("a.c", "id-22", b""), ("a.d", "id-333", b"\r\nzz")]
    wire = hpub_frames(msgs, b"I.", 10, 99)
    got, rest = parse_hpub(wire + b"HPUB a.e I.13 5")
    assert rest == b"HPUB a.e I.13 5"
    assert [(h.subject, h.reply, h.payload) for h in got] == [
        (b"a.b", b"I.10", b"x"),
        (b"a.c", b"I.11", b""),
        (b"a.d", b"I.12", b"\r\nzz"),
    ]
    assert [h.headers[MSG_ID_HEADER] for h in got] == ["id-1", "id-22", "id-333"]
    assert {h.headers[PUBLISH_NS_HEADER] for h in got} == {"99"}


@pytest.mark.parametrize(
    ("data", "headers", "ack"),
    [
        (b'{"stream":"TICKPATH","seq":42}', None, Ack("TICKPATH", 42)),
        (b'{"stream":"TICKPATH","seq":42,"duplicate":true}', None, Ack("TICKPATH", 42, True)),
        (b'{"error":{"code":503,"description":"no leader"}}', None, Ack(error="no leader")),
        (
            b"",
            b"NATS/1.0 503\r\n\r\n",
            Ack(error="503 no responders: no stream takes the subject (or it has no leader)"),
        ),
        (b"", None, Ack(error="empty ack")),
        (b"[1]", None, Ack(error="not an object: b'[1]'")),
        (b"{not json", None, Ack(error="not JSON: b'{not json'")),
        (b'{"stream":"S"}', None, Ack(error='no stream and seq: b\'{"stream":"S"}\'')),
    ],
)
def test_parse_ack(data: bytes, headers: bytes | None, ack: Ack) -> None:
    """PubAcks, duplicates, API errors, 503 statuses and garbage all become an Ack, never an exception."""
    assert parse_ack(data, headers) == ack


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (b'{"stream":"T","seq":1}', None),
        (b'{"stream":"T","seq":1,"duplicate":true}', None),
        (b'{"error":{"code":10060,"description":"expected stream does not match"}}', None),
        (b"", b"NATS/1.0 503\r\n\r\n"),
        (b"", None),
    ],
)
def test_the_hot_path_verdicts_agree_with_parse_ack(data: bytes, headers: bytes | None) -> None:
    """ack_ok and ack_duplicate (byte searches) judge every kind of ack as the full parse does."""
    full = parse_ack(data, headers)
    assert ack_ok(data, headers) == full.ok
    assert (full.ok and ack_duplicate(data)) == full.duplicate


def test_ack_frames_for_deliveries() -> None:
    """+ACK replies to JetStream deliveries, one PUB per reply subject, in one buffer."""
    assert ack_frames([b"$JS.ACK.a.1", b"$JS.ACK.a.2"]) == b"PUB $JS.ACK.a.1 4\r\n+ACK\r\nPUB $JS.ACK.a.2 4\r\n+ACK\r\n"
    assert ack_frames([]) == b""
