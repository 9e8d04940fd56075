"""A minimal blocking NATS core-protocol client for the benchmark's hot paths.

Why not nats-py here: its publish path goes through a pending buffer and a flusher task, and its
delivery path through a per-subscription queue and task, which together cost more than the
microseconds being measured. This client speaks just what the benchmark needs (INFO, CONNECT,
PING/PONG, SUB, PUB, MSG, +OK/-ERR) over a plain or TLS socket, one connection per thread, with
``TCP_NODELAY``. Everything protocol-level is here; pacing and accounting live in ``client.py``.
URLs and credentials are :mod:`tickpath.nats.url`'s, the parser the sink and ``ingest`` use.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable

from tickpath.busbench import nkeys
from tickpath.errors import ConnectionClosedError, ConnectionFailedError, HandshakeError
from tickpath.nats.url import Credentials, NatsUrl

CRLF = b"\r\n"
# Payload header: sequence number and intended send time (monotonic ns) in the first 16 bytes.
HEADER = struct.Struct("<Qq")
MIN_PAYLOAD = HEADER.size
PROBE_SEQ = 0xFFFF_FFFF_FFFF_FFFF  # marks interest probes, never a measured message


def bench_url(url: str) -> NatsUrl:
    """A busbench NATS URL (:class:`~tickpath.nats.url.NatsUrl`; without a scheme it is ``nats://``)."""
    return NatsUrl.parse(url, "a busbench NATS URL", default_scheme="nats")


def pub_header(subject: bytes, size: int) -> bytes:
    return b"PUB " + subject + b" " + str(size).encode() + CRLF


class NatsConn:
    """One blocking NATS connection: handshake, RTT, SUB, raw writes and reads."""

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        credentials: Credentials | None = None,
        name: str = "tickpath-busbench",
        timeout: float = 5.0,
    ) -> None:
        self.url = bench_url(url)
        self.addr = self.url.servers[0]  # the server connected to, once connected
        self._ssl = ssl_context
        self._creds = credentials or Credentials()
        self._name = name
        self._timeout = timeout
        self.sock: socket.socket | None = None
        self.info: dict[str, object] = {}
        self.leftover = b""  # bytes read past the handshake, for the receiver's parser

    # -- setup -----------------------------------------------------------------------------
    def connect(self) -> None:
        raw = self._open()
        a = self.addr
        self.sock = raw
        line = self._read_line()
        if not line.startswith(b"INFO "):
            raise HandshakeError(f"{a} is not a NATS server (first line {line[:40]!r})")
        self.info = json.loads(line[5:])
        want_tls = a.tls or self._ssl is not None or bool(self.info.get("tls_required"))
        if want_tls:
            ctx = self._ssl or ssl.create_default_context()
            try:
                self.sock = ctx.wrap_socket(raw, server_hostname=a.host)
            except (ssl.SSLError, OSError) as exc:
                raise HandshakeError(f"TLS handshake with {a} failed: {exc}") from exc
        opts: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "tls_required": want_tls,
            "name": self._name,
            "lang": "python-raw",
            "version": "0.1",
            "protocol": 1,
            "echo": True,
        }
        self._authenticate(opts)
        self.send(b"CONNECT " + json.dumps(opts).encode() + CRLF + b"PING" + CRLF)
        self._expect_pong()

    def _open(self) -> socket.socket:
        """A TCP connection to the first of the URL's servers that accepts one."""
        failures = []
        for a in self.url.servers:
            try:
                raw = socket.create_connection((a.host, a.port), timeout=self._timeout)
            except OSError as exc:
                failures.append(f"{a}: {exc}")
                continue
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.addr = a
            return raw
        if len(failures) == 1:
            raise ConnectionFailedError(f"cannot connect to {failures[0]}")
        raise ConnectionFailedError(f"cannot connect to any of {len(failures)} servers: {'; '.join(failures)}")

    def _authenticate(self, opts: dict[str, object]) -> None:
        """Add the credentials to the CONNECT options: NKey or .creds file, else the URL's user
        info, else the configured user/password or token."""
        a, u = self.addr, self.url
        user = u.user or (None if u.token else self._creds.user)
        password = u.password if u.user else self._creds.password
        token = u.token or self._creds.token
        if self._creds.creds_file or self._creds.nkey_seed_file:
            nonce = self.info.get("nonce")
            if not isinstance(nonce, str):
                raise HandshakeError(f"{a} sent no nonce: it is not configured for NKey/JWT authentication")
            if self._creds.creds_file:
                jwt, key = nkeys.read_creds(self._creds.creds_file)
                opts["jwt"] = jwt
            else:
                key = nkeys.read_seed(str(self._creds.nkey_seed_file))
                opts["nkey"] = key.public
            opts["sig"] = key.sign_nonce(nonce)
        elif user:
            opts["user"], opts["pass"] = user, password or ""
        elif token:
            opts["auth_token"] = token

    def _read_line(self) -> bytes:
        assert self.sock is not None
        while CRLF not in self.leftover:
            try:
                chunk = self.sock.recv(65536)
            except OSError as exc:
                raise ConnectionClosedError(f"{self.addr}: read failed during setup: {exc}") from exc
            if not chunk:
                raise ConnectionClosedError(f"{self.addr} closed the connection during setup")
            self.leftover += chunk
        line, _, self.leftover = self.leftover.partition(CRLF)
        return line

    def _expect_pong(self) -> None:
        while True:
            line = self._read_line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                msg = line[5:].decode(errors="replace").strip("' ")
                if "authoriz" in msg.lower():
                    raise HandshakeError(f"{self.addr} refused the credentials: {msg}")
                raise HandshakeError(f"{self.addr} answered {msg}")
            if line == b"PING":
                self.send(b"PONG" + CRLF)
            # INFO updates and +OK are fine to skip during setup

    def rtt_ns(self, samples: int = 5) -> list[int]:
        """Round trips of PING/PONG on this connection, in ns (call before the hot path)."""
        out = []
        for _ in range(samples):
            t = time.monotonic_ns()
            self.send(b"PING" + CRLF)
            self._expect_pong()
            out.append(time.monotonic_ns() - t)
        return out

    def subscribe(self, subject: str, sid: int = 1) -> None:
        """SUB and wait for the server to have processed it (a PING/PONG behind it)."""
        self.send(f"SUB {subject} {sid}".encode() + CRLF + b"PING" + CRLF)
        self._expect_pong()

    # -- hot path --------------------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        assert self.sock is not None
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ConnectionClosedError(f"{self.addr}: write failed: {exc}") from exc

    def answer_pings(self) -> None:
        """Non-blocking: read whatever the server sent (a publisher ignores all but PING/-ERR)."""
        assert self.sock is not None
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return
        except OSError as exc:
            raise ConnectionClosedError(f"{self.addr}: read failed: {exc}") from exc
        if not chunk:
            raise ConnectionClosedError(f"{self.addr} closed the connection")
        self.leftover += chunk
        while CRLF in self.leftover:
            line, _, self.leftover = self.leftover.partition(CRLF)
            if line == b"PING":
                self.send(b"PONG" + CRLF)
            elif line.startswith(b"-ERR"):
                raise ConnectionClosedError(f"{self.addr} answered {line[5:].decode(errors='replace')}")

    def close(self) -> None:
        """Shut down (which wakes a thread blocked in send or recv), then close."""
        if self.sock is not None:
            try:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
                self.sock.close()
            finally:
                self.sock = None


class MsgParser:
    """Incremental parser of a subscriber's stream.

    ``on_frames(pairs, recv_ns)`` receives an iterable of ``(seq, intended_ns)``: one receipt
    timestamp per read, since every message in one chunk reached us together. When the expected
    frame layout is known (``expect(subject, size)``), whole runs of frames are decoded by one
    ``struct.iter_unpack`` in C, which is what keeps 100,000 msg/s affordable in Python; anything
    else (control lines, other layouts) goes through the line-by-line path. PING is answered and
    PONG counted here so the subscriber never stalls the server.
    """

    def __init__(
        self, on_frames: Callable[[Iterable[tuple[int, int]], int], None], reply: Callable[[bytes], None]
    ) -> None:
        self._on_frames = on_frames
        self._reply = reply
        self._buf = bytearray()
        self._prefix = b""
        self._flen = 0
        self._frame: struct.Struct | None = None
        self.pongs = 0
        self.errors: list[str] = []

    def expect(self, subject: bytes, size: int, sid: int = 1) -> None:
        """Enable the bulk path for ``MSG <subject> <sid> <size>`` frames."""
        self._prefix = b"MSG " + subject + b" " + str(sid).encode() + b" " + str(size).encode() + CRLF
        hl = len(self._prefix)
        self._flen = hl + size + 2
        self._frame = struct.Struct(f"<{hl}xQq{size - HEADER.size + 2}x")

    def feed(self, data: bytes | bytearray | memoryview, recv_ns: int) -> None:
        """Parse ``data`` (copied at once: the caller may reuse its buffer), received at ``recv_ns``."""
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        if self._frame is not None and buf.startswith(self._prefix):
            k = n // self._flen
            end = k * self._flen
            # Every frame start must hold the prefix; a control line in between would shift
            # the later ones, which the last-start and count checks catch.
            if k and buf.startswith(self._prefix, end - self._flen) and buf.count(self._prefix, 0, end) == k:
                self._on_frames(self._frame.iter_unpack(buf[:end]), recv_ns)
                pos = end
        single: list[tuple[int, int]] = []
        unpack = HEADER.unpack_from
        while True:
            eol = buf.find(CRLF, pos)
            if eol < 0:
                break
            if buf.startswith(b"MSG ", pos):
                # MSG <subject> <sid> [reply-to] <#bytes>
                size = int(buf[buf.rfind(b" ", pos, eol) + 1 : eol])
                start = eol + 2
                end = start + size
                if end + 2 > n:
                    break  # the payload has not fully arrived yet
                if size >= MIN_PAYLOAD:
                    single.append(unpack(buf, start))
                pos = end + 2
                continue
            line = bytes(buf[pos:eol])
            pos = eol + 2
            if line == b"PING":
                self._reply(b"PONG" + CRLF)
            elif line == b"PONG":
                self.pongs += 1
            elif line.startswith(b"-ERR"):
                self.errors.append(line[5:].decode(errors="replace"))
        if single:
            self._on_frames(single, recv_ns)
        del buf[:pos]
