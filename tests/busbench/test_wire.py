"""Unit tests of the minimal NATS protocol pieces: URL parsing, secrets, the MSG parser."""

from __future__ import annotations

import pytest

from tickpath.busbench.wire import HEADER, PROBE_SEQ, MsgParser, bench_url
from tickpath.errors import ConfigError
from tickpath.nats.url import Credentials, NatsUrl, ServerAddress, redact
from tickpath.sinks.nats import NatsSinkConfig


def test_urls_parse_with_scheme_port_and_userinfo() -> None:
    """nats:// and tls:// URLs give host, port (default 4222), TLS flag and decoded credentials."""
    u = NatsUrl.parse("tls://alice:s%40cret@10.0.0.1:4333")
    (a,) = u.servers
    assert (a.host, a.port, a.tls, u.user, u.password, u.token) == ("10.0.0.1", 4333, True, "alice", "s@cret", None)
    assert NatsUrl.parse("nats://example.com").servers[0].port == 4222
    assert bench_url("example.com:4333").servers == (ServerAddress("example.com", 4333, False),)
    assert str(a) == "tls://10.0.0.1:4333" and str(u) == "tls://10.0.0.1:4333"


def test_user_with_empty_password_token_and_several_servers() -> None:
    """'user:@host' is a user with an empty password, 'tok@host' a token, and a comma-separated
    list gives every server in order, as the sink and ingest read the same URLs."""
    empty = NatsUrl.parse("nats://bob:@h:1")
    assert (empty.user, empty.password, empty.token) == ("bob", "", None)
    tok = NatsUrl.parse("nats://s3cr%2Ft@h:1")
    assert (tok.user, tok.password, tok.token) == (None, None, "s3cr/t")
    many = NatsUrl.parse("tls://u:p@a:4001,b,[::1]:4003")
    assert [(s.host, s.port, s.tls) for s in many.servers] == [
        ("a", 4001, True),
        ("b", 4222, True),
        ("::1", 4003, True),
    ]
    assert str(many) == "tls://a:4001,b:4222,[::1]:4003"
    # The one parser (tickpath.nats.url) is the sink's and ingest's too: the same servers and user.
    sink = NatsSinkConfig.from_url("tls://u:p@a:4001,b,[::1]:4003")
    assert [str(s) for s in many.servers] == list(sink.servers)
    assert (sink.user, sink.password) == ("u", "p")


@pytest.mark.parametrize("url", ["http://x:1", "nats://:4222", "nats://h:notaport", "nats://", "nats://a:1,:2"])
def test_bad_urls_are_config_errors(url: str) -> None:
    """Unsupported schemes, missing hosts and bad ports are refused with ConfigError."""
    with pytest.raises(ConfigError):
        NatsUrl.parse(url)


def test_secrets_never_printed() -> None:
    """redact() drops user info from URLs; Credentials' repr hides password and token."""
    assert redact("nats://u:pw@h:1") == "nats://h:1"
    assert redact("nats://tok@h:1,g:2") == "nats://h:1,g:2"
    assert "pw" not in redact("http://u:pw@h:1")
    for bad in ("http://u:pw-secret@h:1", "nats://u:pw-secret@", "nats://tok-secret@"):
        with pytest.raises(ConfigError) as err:
            NatsUrl.parse(bad)
        assert "secret" not in str(err.value)
    text = repr(Credentials("u", "pw-secret", "tok-secret"))
    assert "pw-secret" not in text and "tok-secret" not in text


def _msg(seq: int, intended: int, size: int = 32) -> bytes:
    payload = HEADER.pack(seq, intended) + b"x" * (size - HEADER.size)
    return b"MSG subj 1 " + str(size).encode() + b"\r\n" + payload + b"\r\n"


def test_parser_handles_split_frames_control_lines_and_timestamps_per_chunk() -> None:
    """Frames split anywhere are reassembled; PING is answered; each message gets its chunk's time."""
    got: list[tuple[int, int, int]] = []
    replies: list[bytes] = []
    p = MsgParser(lambda fr, r: got.extend((s, i, r) for s, i in fr), replies.append)
    stream = _msg(1, 100) + b"PING\r\n" + _msg(2, 200) + b"PONG\r\n" + _msg(PROBE_SEQ, 0)
    cut1, cut2 = 20, len(_msg(1, 100)) + 9
    p.feed(stream[:cut1], 10)
    p.feed(stream[cut1:cut2], 20)
    p.feed(stream[cut2:], 30)
    assert got == [(1, 100, 20), (2, 200, 30), (PROBE_SEQ, 0, 30)]
    assert replies == [b"PONG\r\n"] and p.pongs == 1


def test_parser_reads_msg_with_reply_subject_and_records_errors() -> None:
    """A MSG line with a reply-to subject parses; -ERR lines are kept for the report."""
    got: list[int] = []
    p = MsgParser(lambda fr, r: got.extend(s for s, _ in fr), lambda b: None)
    payload = HEADER.pack(7, 1) + b"\0" * 8
    p.feed(b"MSG a.b 9 _INBOX.x 24\r\n" + payload + b"\r\n-ERR 'Slow Consumer'\r\n", 1)
    assert got == [7] and p.errors == ["'Slow Consumer'"]


def test_bulk_path_decodes_runs_and_survives_interleaved_control_lines() -> None:
    """With the frame layout known, runs of frames decode in bulk; a PING in between is answered
    and does not shift the sequence numbers of the frames after it."""
    got: list[int] = []
    replies: list[bytes] = []
    p = MsgParser(lambda fr, r: got.extend(s for s, _ in fr), replies.append)
    p.expect(b"subj", 32)
    frames = [_msg(i, i * 10) for i in range(6)]
    stream = b"".join(frames[:3]) + b"PING\r\n" + b"".join(frames[3:])
    p.feed(stream[:-5], 1)  # the last frame is incomplete
    p.feed(stream[-5:], 2)
    p.feed(b"".join(_msg(i, 0) for i in range(6, 106)), 3)
    assert got == list(range(106))
    assert replies == [b"PONG\r\n"]
