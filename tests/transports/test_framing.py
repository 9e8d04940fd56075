"""The pure-Python RFC 6455 codec under the own transport: the parser gives the same messages however
the bytes are split, and every rule it enforces raises with the close code the RFC names."""

from __future__ import annotations

import random

import pytest

from tickpath.transports.framing import (
    FrameParser,
    WsProtocolError,
    accept_for,
    apply_mask,
    encode_frame,
    parse_close,
)

from .wsserver import frame


def _parse(data: bytes, chunks: list[int], max_size: int = 0) -> tuple[list[object], list[object]]:
    msgs: list[object] = []
    ctrl: list[object] = []
    parser = FrameParser(lambda op, d: msgs.append((op, d)), lambda op, p: ctrl.append((op, p)), max_size)
    pos = 0
    for n in chunks:
        parser.feed(data[pos : pos + n])
        pos += n
    parser.feed(data[pos:])
    return msgs, ctrl


STREAM = (
    frame(1, b'{"e":"depthUpdate"}')
    + frame(1, ("é" * 200).encode())  # 16-bit length, multi-byte UTF-8 that a split may cut
    + frame(9, b"ping")
    + frame(2, bytes(range(256)) * 300)  # 64-bit length
    + frame(1, b"ab", fin=False)
    + frame(10, b"")
    + frame(0, b"cd")
)
EXPECTED = [(1, '{"e":"depthUpdate"}'), (1, "é" * 200), (2, bytes(range(256)) * 300), (1, "abcd")]


def test_the_rfc_accept_example() -> None:
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


def test_messages_are_the_same_however_the_bytes_are_split() -> None:
    rng = random.Random(17)
    assert _parse(STREAM, []) == (EXPECTED, [(9, b"ping"), (10, b"")])
    for _ in range(200):
        cuts = [rng.randint(0, 300) for _ in range(rng.randint(1, 40))]
        assert _parse(STREAM, cuts)[0] == EXPECTED
    assert _parse(STREAM, [1] * len(STREAM))[0] == EXPECTED  # one byte at a time


def test_client_frames_are_masked_and_unmask_back() -> None:
    mask = b"\x37\xfa\x21\x3d"
    for payload in (b"", b"Hello", b"x" * 200, b"y" * 70_000):
        wire = encode_frame(1, payload, mask)
        assert wire[1] & 0x80  # the mask bit
        assert wire.endswith(apply_mask(payload, mask))
        assert apply_mask(apply_mask(payload, mask), mask) == payload
    assert encode_frame(1, b"Hello", mask)[2:] == mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"Hello"))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(1, b"{}", mask=True), 1002),
        (frame(1, b"{}", rsv=0x40), 1002),
        (frame(3, b""), 1002),
        (frame(11, b""), 1002),
        (frame(0, b"x"), 1002),
        (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
        (frame(9, b"p", fin=False), 1002),
        (frame(9, b"p" * 126), 1002),
        (frame(1, b"\xff\xfe"), 1007),
        (frame(1, b"\xc3", fin=False) + frame(0, b"\x28"), 1007),
        (frame(1, b"x" * 2000), 1009),
        (frame(1, b"x" * 600, fin=False) + frame(0, b"x" * 600), 1009),
    ],
)
def test_protocol_errors_carry_the_rfc_close_code(data: bytes, code: int) -> None:
    with pytest.raises(WsProtocolError) as err:
        _parse(data, [], max_size=1024)
    assert err.value.code == code


def test_close_payloads() -> None:
    assert parse_close(b"") == (1005, "")
    assert parse_close((4001).to_bytes(2, "big") + b"bye") == (4001, "bye")
    for bad in (b"\x03", (1005).to_bytes(2, "big"), (999).to_bytes(2, "big"), (2000).to_bytes(2, "big")):
        with pytest.raises(WsProtocolError):
            parse_close(bad)
