"""``ingest``'s bulk delivery parser: every pull delivery lands once, in order, and statuses still end requests.

No server: a stand-in client records what reaches nats-py's callbacks, and the bytes are the wire
protocol as nats-server sends it (a status has an empty reply token, i.e. two spaces).
"""

from __future__ import annotations

import random

import pytest

from tickpath.ingest.consumer import _Puller
from tickpath.nats.internals import install_delivery_parser, install_fast_parser, set_direct_handler

pytest.importorskip("nats")

from tests.support.natsclient import RecordingClient

SID = 5
OTHER_SID = 9


def _delivery(i: int, sid: int = SID) -> bytes:
    hdr = b"NATS/1.0\r\nNats-Msg-Id: k.%d\r\nTickpath-Publish-Ns: %d\r\n\r\n" % (i, 1_700_000_000_000_000_000 + i)
    payload = b'{"type":"trade","n":%d}' % i
    reply = b"$JS.ACK.TICKPATH.tickpath-ingest.1.%d.%d.1700000000000000000.0" % (i, i)
    return b"HMSG _INBOX.x.1 %d %s %d %d\r\n%s%s\r\n" % (sid, reply, len(hdr), len(hdr) + len(payload), hdr, payload)


def _status(request: int, code: bytes = b"408 Request Timeout") -> bytes:
    hdr = b"NATS/1.0 " + code + b"\r\n\r\n"
    return b"HMSG _INBOX.x.%d %d  %d %d\r\n%s\r\n" % (request, SID, len(hdr), len(hdr), hdr)


def _puller() -> tuple[RecordingClient, _Puller, list[bytes]]:
    nc = RecordingClient()
    assert install_fast_parser(nc)
    puller = _Puller(nc, "TICKPATH", "tickpath-ingest")
    puller._inbox = "_INBOX.x."
    statuses: list[bytes] = []

    # The handler start() installs, minus the subscribe: statuses recorded, deliveries buffered.
    def on_message(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if not reply:
            statuses.append(subject)
            return
        puller._buf.append((reply, data, headers))

    set_direct_handler(nc, SID, on_message)
    assert install_delivery_parser(nc, SID, puller._buf, puller._delivered)
    return nc, puller, statuses


async def _feed(nc: RecordingClient, data: bytes, cuts: list[int]) -> None:
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        await nc._ps.parse(data[a:b])


@pytest.mark.parametrize("seed", range(6))
async def test_deliveries_statuses_and_pings_in_random_reads(seed: int) -> None:
    """Deliveries, a status, a PING and a foreign frame in random reads: each lands once, in order."""
    rng = random.Random(seed)
    stream = b"".join(
        [
            *(_delivery(i) for i in range(40)),
            _status(3),
            b"PING\r\n",
            _delivery(40),
            _delivery(99, sid=OTHER_SID),
            *(_delivery(i) for i in range(41, 60)),
        ]
    )
    nc, puller, statuses = _puller()
    cuts = sorted(rng.sample(range(1, len(stream)), rng.randrange(1, 40)))
    await _feed(nc, stream, cuts)
    got = puller._take()
    assert [d[1] for d in got] == [b'{"type":"trade","n":%d}' % i for i in range(60)]
    assert all(d[0].startswith(b"$JS.ACK.") and d[2] is not None and b"Tickpath-Publish-Ns" in d[2] for d in got)
    assert statuses == [b"_INBOX.x.3"]
    assert nc.pings == 1
    assert [q[0] for q in nc.queued] == [OTHER_SID]
    assert nc._ps.buf == bytearray()


async def test_a_status_is_never_taken_for_a_delivery() -> None:
    """A status right after deliveries in one read (empty reply token) ends up as a status, not a delivery."""
    nc, puller, statuses = _puller()
    await _feed(nc, _delivery(1) + _status(2, b"404 No Messages") + _delivery(2), [])
    assert [d[1] for d in puller._take()] == [b'{"type":"trade","n":1}', b'{"type":"trade","n":2}']
    assert statuses == [b"_INBOX.x.2"]


async def test_batch_request_completes_once_enough_deliveries_arrived() -> None:
    """The pull request's wait ends when a read brings the batch to the wanted size."""
    nc, puller, _ = _puller()
    puller._want = 3
    await _feed(nc, _delivery(1) + _delivery(2), [])
    assert not puller._done.is_set()
    await _feed(nc, _delivery(3), [])
    assert puller._done.is_set()
