"""The fast NATS protocol parser: MSG/HMSG frames reach direct handlers whatever shares or splits a read.

No server: a stand-in client records what the parser hands to nats-py's callbacks, and the bytes
are the wire protocol as nats-server sends it.
"""

from __future__ import annotations

import random

import pytest

from tickpath.nats.internals import install_fast_parser, set_direct_handler

pytest.importorskip("nats")

from tests.support.natsclient import RecordingClient, feed_in_random_reads

DIRECT_SID = 7
OTHER_SID = 9
_Frame = tuple[bytes, bytes, bytes, bytes | None]  # subject, reply, payload, raw headers


def _client() -> tuple[RecordingClient, list[_Frame]]:
    nc = RecordingClient()
    assert install_fast_parser(nc), "the pinned nats-py parser was not recognised"
    delivered: list[_Frame] = []
    set_direct_handler(nc, DIRECT_SID, lambda s, r, d, h: delivered.append((s, r, d, h)))
    return nc, delivered


def _msg(subject: bytes, payload: bytes, reply: bytes = b"", sid: int = DIRECT_SID) -> bytes:
    mid = b" " + reply if reply else b""
    return b"MSG %s %d%s %d\r\n%s\r\n" % (subject, sid, mid, len(payload), payload)


def _hmsg(subject: bytes, headers: bytes, payload: bytes, reply: bytes = b"", sid: int = DIRECT_SID) -> bytes:
    mid = b" " + reply if reply else b""
    return b"HMSG %s %d%s %d %d\r\n%s%s\r\n" % (
        subject,
        sid,
        mid,
        len(headers),
        len(headers) + len(payload),
        headers,
        payload,
    )


HDR = b"NATS/1.0\r\nTickpath-Publish-Ns: 1700000000000000000\r\n\r\n"
STATUS = b"NATS/1.0 404 No Messages\r\n\r\n"


async def test_msg_after_a_ping_in_the_same_read_reaches_the_direct_handler() -> None:
    """PING then MSG in one read: the ping is answered and the MSG goes to the handler, not the queue."""
    nc, delivered = _client()
    await nc._ps.parse(b"PING\r\n" + _msg(b"_INBOX.a.1", b"hello"))
    assert nc.pings == 1
    assert delivered == [(b"_INBOX.a.1", b"", b"hello", None)]
    assert nc.queued == []


async def test_hmsg_with_reply_after_a_ping_in_the_same_read_reaches_the_direct_handler() -> None:
    """MSG, PING, HMSG (reply and headers) in one read: both frames reach the handler in order."""
    nc, delivered = _client()
    data = (
        _msg(b"a.1", b"first")
        + b"PING\r\n"
        + _hmsg(b"tickpath.spot.trades.BTCUSDT", HDR, b'{"x":1}', reply=b"$JS.ACK.S.d.1.2.3.4.0")
    )
    await nc._ps.parse(data)
    assert nc.pings == 1
    assert delivered == [
        (b"a.1", b"", b"first", None),
        (b"tickpath.spot.trades.BTCUSDT", b"$JS.ACK.S.d.1.2.3.4.0", b'{"x":1}', HDR),
    ]
    assert nc.queued == []


async def test_other_subscriptions_keep_the_normal_path_around_a_ping() -> None:
    """Frames of a subscription without a direct handler still go to _process_msg, PING or not."""
    nc, delivered = _client()
    await nc._ps.parse(
        _msg(b"x", b"1", sid=OTHER_SID) + b"PING\r\n" + _msg(b"y", b"2", sid=OTHER_SID) + _msg(b"z", b"3")
    )
    assert [q[:4] for q in nc.queued] == [(OTHER_SID, b"x", b"", b"1"), (OTHER_SID, b"y", b"", b"2")]
    assert delivered == [(b"z", b"", b"3", None)]


def _stream() -> tuple[bytes, list[_Frame], int]:
    """A mixed wire stream, the frames the direct handler must see from it, and its PING count."""
    frames: list[tuple[bytes, _Frame | None]] = [
        (_msg(b"_INBOX.a.1", b'{"stream":"S","seq":1}'), (b"_INBOX.a.1", b"", b'{"stream":"S","seq":1}', None)),
        (b"PING\r\n", None),
        (
            _hmsg(b"t.spot.l2.ETH", HDR, b"payload\r\nwith crlf", reply=b"ack.2"),
            (b"t.spot.l2.ETH", b"ack.2", b"payload\r\nwith crlf", HDR),
        ),
        (_hmsg(b"_INBOX.a.3", STATUS, b""), (b"_INBOX.a.3", b"", b"", STATUS)),
        (_msg(b"empty", b""), (b"empty", b"", b"", None)),
        (b"PING\r\n", None),
        (
            _hmsg(b"t.spot.trades.BTC", HDR, b"x" * 300, reply=b"ack.4"),
            (b"t.spot.trades.BTC", b"ack.4", b"x" * 300, HDR),
        ),
        (b"PONG\r\n", None),
        (_msg(b"last", b"z"), (b"last", b"", b"z", None)),
    ]
    wire = b"".join(f for f, _ in frames)
    return wire, [e for _, e in frames if e is not None], sum(f == b"PING\r\n" for f, _ in frames)


async def test_every_two_way_split_of_a_mixed_stream_delivers_each_frame_once_in_order() -> None:
    """Cutting the stream into two reads at every byte position loses, repeats and reorders nothing."""
    wire, expected, pings = _stream()
    for cut in range(1, len(wire)):
        nc, delivered = _client()
        await nc._ps.parse(wire[:cut])
        await nc._ps.parse(wire[cut:])
        assert delivered == expected, f"split at byte {cut}"
        assert (nc.pings, nc.pongs, nc.queued, nc.errors) == (pings, 1, [], []), f"split at byte {cut}"


@pytest.mark.parametrize("seed", range(20))
async def test_random_small_reads_of_a_mixed_stream_deliver_each_frame_once_in_order(seed: int) -> None:
    """Feeding the stream (three times over) in random 1-40 byte reads delivers every frame in order."""
    wire, expected, pings = _stream()
    wire, expected = wire * 3, expected * 3
    rng = random.Random(seed)
    nc, delivered = _client()
    await feed_in_random_reads(nc._ps, wire, rng, 40)
    assert delivered == expected
    assert (nc.pings, nc.pongs, nc.queued) == (3 * pings, 3, [])
