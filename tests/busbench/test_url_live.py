"""Integration tests of busbench's NATS URLs against a real nats-server: credentials in the URL
(user/password, a token) and a list of servers tried in order."""

from __future__ import annotations

import socket

import pytest

from tickpath.busbench.wire import NatsConn
from tickpath.errors import ConnectionFailedError, HandshakeError
from tickpath.nats.url import Credentials
from tickpath.natsserver import NatsCluster

pytestmark = pytest.mark.integration


def _dead_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_userinfo(url: str, userinfo: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{userinfo}@{rest}"


async def test_token_in_the_url_authenticates(nats_binary: str) -> None:
    """'nats://TOKEN@host' is a token (as for the sink and ingest): the right one connects, a wrong one is refused."""
    async with NatsCluster(n=1, token="t0ken", binary=nats_binary) as c:
        ok = NatsConn(_with_userinfo(c.client_urls[0], "t0ken"))
        ok.connect()
        assert ok.rtt_ns(1)[0] > 0
        ok.close()
        with pytest.raises(HandshakeError):
            NatsConn(_with_userinfo(c.client_urls[0], "nope")).connect()


async def test_user_and_password_in_the_url_win_over_configured_ones(nats_binary: str) -> None:
    """URL user info wins over Credentials; a refused password is not in the error."""
    async with NatsCluster(n=1, user="u", password="p@ss", binary=nats_binary) as c:
        ok = NatsConn(_with_userinfo(c.client_urls[0], "u:p%40ss"), credentials=Credentials("u", "wrong"))
        ok.connect()
        ok.close()
        with pytest.raises(HandshakeError) as err:
            NatsConn(_with_userinfo(c.client_urls[0], "u:secret-x"), credentials=Credentials("u", "p@ss")).connect()
        assert "secret-x" not in str(err.value)


async def test_several_servers_are_tried_in_order(nats_binary: str) -> None:
    """With a dead server first in the list, the connection goes to the next one; all dead is one error naming each."""
    dead = _dead_port()
    async with NatsCluster(n=1, binary=nats_binary) as c:
        live = c.client_urls[0].partition("://")[2]
        conn = NatsConn(f"nats://127.0.0.1:{dead},{live}")
        conn.connect()
        assert conn.addr.hostport == live
        conn.close()
    other = _dead_port()
    with pytest.raises(ConnectionFailedError, match=f"2 servers.*:{dead}.*:{other}"):
        NatsConn(f"nats://127.0.0.1:{dead},127.0.0.1:{other}", timeout=1.0).connect()
