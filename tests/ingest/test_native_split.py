"""The compiled delivery split (``tickpath.ingest._decode.split_deliveries``) takes exactly what the
reference (:func:`tickpath.nats.internals.split_deliveries`) takes from any buffer: the same
deliveries, in order, and the same number of bytes, wherever a read cuts the wire stream."""

from __future__ import annotations

import random

import pytest

from tests.ingest.test_delivery_parser import SID, _delivery, _status
from tickpath.ingest import native
from tickpath.nats.internals import split_deliveries

pytestmark = pytest.mark.skipif(native._decode is None, reason="the native ingest decoder is not built (make native)")


def _frames(rng: random.Random) -> list[bytes]:
    """Deliveries of our subscription and what may sit between them on the wire."""
    out = []
    for i in range(rng.randint(1, 40)):
        r = rng.random()
        if r < 0.7:
            out.append(_delivery(i))
        elif r < 0.78:
            out.append(_status(i))
        elif r < 0.84:
            out.append(_delivery(i, sid=SID * 11))  # another subscription (sid 55, not 5)
        elif r < 0.88:
            out.append(b"PING\r\n")
        elif r < 0.92:
            out.append(b"MSG a.b %d 2\r\nhi\r\n" % SID)  # a plain MSG: the fast parser's
        elif r < 0.96:
            d = _delivery(i)  # a control line with sizes no server writes
            out.append(d.replace(b" 5 ", b" 5 x", 1) if rng.random() < 0.5 else d.replace(b"HMSG ", b"HMSG  ", 1))
        else:
            out.append(_delivery(i) + b"  ")  # junk between frames
    return out


@pytest.mark.parametrize("seed", range(40))
def test_compiled_split_takes_what_the_reference_takes(seed: int) -> None:
    """Random wire streams, fed as reads cut at random points: same deliveries and bytes taken."""
    rng = random.Random(seed)
    data = b"".join(_frames(rng))
    split = native._decode.split_deliveries
    for _ in range(20):
        cut = rng.randrange(len(data) + 1)
        buf_ref, buf_nat = bytearray(data[:cut]), bytearray(data[:cut])
        got_ref: list[tuple[bytes, bytes, bytes | None]] = []
        got_nat: list[tuple[bytes, bytes, bytes | None]] = []
        pos_ref = split_deliveries(buf_ref, str(SID).encode(), got_ref)
        pos_nat = split(buf_nat, str(SID).encode(), got_nat)
        assert (pos_nat, got_nat) == (pos_ref, got_ref)
        assert all(type(x) is bytes for d in got_nat for x in d)


def test_the_compiled_split_is_the_one_ingest_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    """ingest uses the compiled split unless ``TICKPATH_PURE=1`` (then the reference)."""
    assert native.delivery_splitter() is native._decode.split_deliveries
    monkeypatch.setenv("TICKPATH_PURE", "1")
    assert native.delivery_splitter() is None
