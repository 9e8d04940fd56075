"""The bulk publish-ack parser: each ack reaches the sink once, in order, whatever shares or splits a read.

No server: a stand-in client records what the parser hands to nats-py's callbacks, and the bytes
are the wire protocol as nats-server 2.x writes it (an ack's absent reply is an empty token, two
spaces before the length).
"""

from __future__ import annotations

import random

import pytest

from tickpath.nats.internals import install_ack_parser, install_fast_parser, set_direct_handler

pytest.importorskip("nats")

from tests.support.natsclient import RecordingClient, feed_in_random_reads

ACK_SID = 3
OTHER_SID = 9
PREFIX = b"_INBOX.k3J9xQv0aLr2Tt8Yy1Zb7W."
STATUS_503 = b"NATS/1.0 503\r\n\r\n"


class _Recorder:
    """Records what reaches the sink: bulk runs and single frames, flattened in arrival order."""

    def __init__(self) -> None:
        self.acks: list[tuple[bytes, bytes, bytes | None]] = []  # (reply id, payload, headers)
        self.bulk_calls = 0

    def on_acks(self, suffixes: list[bytes], payloads: list[bytes]) -> None:
        assert len(suffixes) == len(payloads)
        self.bulk_calls += 1
        self.acks.extend((s, p, None) for s, p in zip(suffixes, payloads, strict=True))

    def direct(self, subject: bytes, _reply: bytes, payload: bytes, headers: bytes | None) -> None:
        assert subject.startswith(PREFIX)
        self.acks.append((subject[len(PREFIX) :], payload, headers))


def _client() -> tuple[RecordingClient, _Recorder]:
    nc = RecordingClient()
    assert install_fast_parser(nc), "the pinned nats-py parser was not recognised"
    rec = _Recorder()
    set_direct_handler(nc, ACK_SID, rec.direct)
    assert install_ack_parser(nc, ACK_SID, PREFIX, rec.on_acks)
    return nc, rec


def _ack(rid: int, payload: bytes | None = None, sid: int = ACK_SID) -> bytes:
    body = payload if payload is not None else b'{"stream":"TICKPATH", "seq":%d}' % rid
    return b"MSG %s%d %d  %d\r\n%s\r\n" % (PREFIX, rid, sid, len(body), body)


def _acks(first: int, n: int) -> tuple[bytes, list[tuple[bytes, bytes, bytes | None]]]:
    wire = b"".join(_ack(r) for r in range(first, first + n))
    return wire, [(b"%d" % r, b'{"stream":"TICKPATH", "seq":%d}' % r, None) for r in range(first, first + n)]


async def test_a_read_of_acks_reaches_the_sink_in_one_call_in_order() -> None:
    """200 complete acks in one read: one bulk call with every reply id and payload, in order."""
    nc, rec = _client()
    wire, expected = _acks(1, 200)
    await nc._ps.parse(wire)
    assert rec.acks == expected
    assert rec.bulk_calls == 1
    assert (nc.queued, nc.errors, bytes(nc._ps.buf)) == ([], [], b"")


async def test_single_space_before_the_length_is_taken_in_bulk_too() -> None:
    """A server writing no empty reply token (one space) still gets the bulk path."""
    nc, rec = _client()
    await nc._ps.parse(b"MSG %s7 %d 5\r\nhello\r\nMSG %s8 %d 2\r\nhi\r\n" % (PREFIX, ACK_SID, PREFIX, ACK_SID))
    assert rec.acks == [(b"7", b"hello", None), (b"8", b"hi", None)]
    assert rec.bulk_calls == 1


def _mixed() -> tuple[bytes, list[tuple[bytes, bytes, bytes | None]], int, list[bytes]]:
    """Acks around a PING, a 503 status, another subscription, a duplicate and an error reply."""
    dup = b'{"stream":"TICKPATH", "seq":3, "duplicate": true}'
    err = b'{"error":{"code":503,"description":"no leader"}}'
    other = b"MSG elsewhere %d  3\r\nabc\r\n" % OTHER_SID
    status = b"HMSG %s6 %d  %d %d\r\n%s\r\n" % (PREFIX, ACK_SID, len(STATUS_503), len(STATUS_503), STATUS_503)
    parts: list[bytes] = [
        _ack(1),
        _ack(2),
        b"PING\r\n",
        _ack(3, dup),
        other,
        _ack(4),
        _ack(5, err),
        status,
        _ack(7, b""),
        _ack(8),
    ]
    expected = [
        (b"1", b'{"stream":"TICKPATH", "seq":1}', None),
        (b"2", b'{"stream":"TICKPATH", "seq":2}', None),
        (b"3", dup, None),
        (b"4", b'{"stream":"TICKPATH", "seq":4}', None),
        (b"5", err, None),
        (b"6", b"", STATUS_503),
        (b"7", b"", None),
        (b"8", b'{"stream":"TICKPATH", "seq":8}', None),
    ]
    return b"".join(parts), expected, 1, [b"abc"]


async def test_every_two_way_split_of_a_mixed_stream_delivers_each_ack_once_in_order() -> None:
    """Cut at every byte: acks (bulk or single), PING, status and another subscription all arrive once."""
    wire, expected, pings, others = _mixed()
    for cut in range(1, len(wire)):
        nc, rec = _client()
        await nc._ps.parse(wire[:cut])
        await nc._ps.parse(wire[cut:])
        assert rec.acks == expected, f"split at byte {cut}"
        assert nc.pings == pings, f"split at byte {cut}"
        assert [q[3] for q in nc.queued] == others, f"split at byte {cut}"
        assert bytes(nc._ps.buf) == b"", f"split at byte {cut}"


@pytest.mark.parametrize("seed", range(10))
async def test_random_reads_of_acks_and_noise_deliver_each_ack_once_in_order(seed: int) -> None:
    """Long runs of acks with the mixed frames between them, fed in random 1-3000 byte reads."""
    rng = random.Random(seed)
    mixed, mixed_expected, _, _ = _mixed()
    wire, expected = b"", []
    rid = 100
    for _ in range(6):
        run, run_expected = _acks(rid, rng.randint(1, 300))
        rid += len(run_expected)
        wire += run + mixed
        expected += run_expected + mixed_expected
    nc, rec = _client()
    await feed_in_random_reads(nc._ps, wire, rng, 3000)
    assert rec.acks == expected
    assert rec.bulk_calls > 0  # the bulk path did take part
    assert (nc.pings, len(nc.queued), bytes(nc._ps.buf)) == (6, 6, b"")


async def test_a_payload_shorter_than_declared_is_not_taken_in_bulk() -> None:
    """A frame whose payload holds a line break cannot be paired by lines: it takes the framed path."""
    nc, rec = _client()
    body = b"two\r\nlines"
    await nc._ps.parse(_ack(1) + b"MSG %s2 %d  %d\r\n%s\r\n" % (PREFIX, ACK_SID, len(body), body) + _ack(3))
    assert rec.acks == [
        (b"1", b'{"stream":"TICKPATH", "seq":1}', None),
        (b"2", body, None),
        (b"3", b'{"stream":"TICKPATH", "seq":3}', None),
    ]
    assert rec.bulk_calls == 0


def test_not_installed_over_an_unknown_parser() -> None:
    """On a client whose parser is not tickpath's fast parser, nothing changes and False is returned."""
    nc = RecordingClient()
    before = nc._ps
    assert install_ack_parser(nc, ACK_SID, PREFIX, lambda s, p: None) is False
    assert nc._ps is before


async def test_a_length_that_is_not_a_number_leaves_the_read_to_the_framed_parser() -> None:
    """A control line whose length token is not a number is not taken in bulk; the acks before it are not lost."""
    nc, rec = _client()
    bad = b"MSG %s2 %d  x\r\nabc\r\n" % (PREFIX, ACK_SID)
    with pytest.raises(ValueError):  # the framed parser's error, as without the bulk path
        await nc._ps.parse(_ack(1) + bad)
    assert rec.acks == [(b"1", b'{"stream":"TICKPATH", "seq":1}', None)]
    assert rec.bulk_calls == 0
