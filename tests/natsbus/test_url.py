"""tickpath.nats.url: the one nats:// parser (sink, ingest, busbench) and credentials that never print."""

from __future__ import annotations

import logging

import pytest

from tickpath.errors import ConfigError
from tickpath.ingest.consumer import IngestConfig
from tickpath.logs import log_event
from tickpath.nats.url import Credentials, NatsUrl, ServerAddress, redact
from tickpath.sinks.nats import NatsSinkConfig

SECRETS = ("pw-s3cret", "tok-s3cret")


def test_servers_credentials_and_query_are_split() -> None:
    """Servers (port 4222 by default, tls:// flagged), decoded user info and the query come apart."""
    u = NatsUrl.parse("tls://alice:p%40ss@a:4001,b,[::1]:4003?stream=S&prefix=md")
    assert u.servers == (
        ServerAddress("a", 4001, True),
        ServerAddress("b", 4222, True),
        ServerAddress("::1", 4003, True),
    )
    assert u.server_urls == ("tls://a:4001", "tls://b:4222", "tls://[::1]:4003")
    assert (u.user, u.password, u.token, u.query) == ("alice", "p@ss", None, "stream=S&prefix=md")
    assert u.credentials == Credentials("alice", "p@ss")
    tok = NatsUrl.parse("nats://t%2Fk@h")
    assert (tok.user, tok.token, tok.server_urls) == (None, "t/k", ("nats://h:4222",))


def test_a_scheme_is_required_unless_a_default_is_given() -> None:
    """The sink and ingest refuse a bare host:port; busbench passes default_scheme='nats'."""
    with pytest.raises(ConfigError, match="starts with nats:// or tls://"):
        NatsUrl.parse("h:4222", "a NATS sink URL")
    assert NatsUrl.parse("h:4333", default_scheme="nats").servers == (ServerAddress("h", 4333, False),)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://u:pw-s3cret@h:1", "starts with nats://"),
        ("nats://u:pw-s3cret@", "no NATS server"),
        ("nats://tok-s3cret@h:notaport", "bad port"),
        ("nats://tok-s3cret@a:1,:2", "no host"),
    ],
)
def test_bad_urls_are_one_line_config_errors_without_the_secret(url: str, message: str) -> None:
    """A bad scheme, host or port is a ConfigError that names the problem and never echoes user info."""
    with pytest.raises(ConfigError, match=message) as err:
        NatsUrl.parse(url)
    assert not any(s in str(err.value) for s in SECRETS)
    assert "\n" not in str(err.value)


def test_credentials_never_appear_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """repr/str of the URL, its credentials and the sink config, and a log line holding them, show no
    password or token (the user name and file paths are fine to show)."""
    u = NatsUrl.parse("nats://alice:pw-s3cret@h:1")
    t = NatsUrl.parse("nats://tok-s3cret@h:1")
    creds = Credentials("alice", "pw-s3cret", "tok-s3cret", creds_file="/etc/u.creds", tls_ca="/etc/ca.pem")
    sink = NatsSinkConfig.from_url("nats://alice:pw-s3cret@h:1")
    texts = [repr(u), str(u), repr(t), str(t), repr(creds), str(creds), repr(sink), str(sink), redact(str(u))]
    logger = logging.getLogger("tickpath.test_url")
    logger.addHandler(caplog.handler)  # the CLI's configure() may stop propagation to the root logger
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            # Neutral keys: logs.py redacts keys that look secret; this checks the values' own text.
            log_event(logger, logging.INFO, "nats_url", a=u, b=t, c=creds, d=sink)
    finally:
        logger.removeHandler(caplog.handler)
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records and "user='alice'" in caplog.records[0].getMessage()
    for text in texts:
        assert not any(s in text for s in SECRETS), text
    assert "alice" in repr(creds) and "/etc/u.creds" in repr(creds) and "***" in repr(creds)
    assert redact("nats://u:pw-s3cret@h:1,g:2") == "nats://h:1,g:2"


def test_credentials_become_nats_py_options() -> None:
    """user/password or token map to nats-py's connect options; NKey and .creds files are refused
    there (busbench signs them itself), with a one-line ConfigError."""
    assert Credentials("u", "p").nats_py_options() == {"user": "u", "password": "p"}
    assert Credentials(token="t").nats_py_options() == {"token": "t"}
    assert Credentials().nats_py_options() == {}
    with pytest.raises(ConfigError, match="busbench only"):
        Credentials(nkey_seed_file="/x.nk").nats_py_options()


def test_credentials_over_prefers_the_url_and_keeps_one_kind() -> None:
    """URL user info wins over configured credentials, and a user replaces a token (or the reverse)."""
    base = Credentials("bob", "pw", nkey_seed_file="/k.nk")
    assert Credentials(token="t").over(base) == Credentials(token="t", nkey_seed_file="/k.nk")
    assert Credentials("amy", "x").over(Credentials(token="t")) == Credentials("amy", "x")
    assert Credentials().over(base) == base


def test_sink_ingest_and_busbench_read_a_url_alike() -> None:
    """The sink's config and ingest's source parse the same URL into the same servers and credentials."""
    url = "nats://u:s%3Acret@h1:4222,h2?stream=S"
    sink = NatsSinkConfig.from_url(url)
    servers, opts = IngestConfig(url, "duckdb:x.duckdb").nats()
    assert list(sink.servers) == servers == ["nats://h1:4222", "nats://h2:4222"]
    assert opts["stream"] == sink.stream == "S"
    assert sink.auth() == IngestConfig(url, "duckdb:x.duckdb").credentials() == {"user": "u", "password": "s:cret"}
