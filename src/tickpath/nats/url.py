"""``nats://`` and ``tls://`` URLs and client credentials: the one parser of tickpath.

The JetStream sink (``--sink nats://...``), ``tickpath ingest``'s source and busbench all take
``nats://[user:password@|token@]host[:port][,host[:port]...][?query]`` (or ``tls://``). Credentials
are split off at once: the server addresses go into messages and logs, the credentials only into a
``CONNECT``. Neither :class:`NatsUrl` nor :class:`Credentials` ever shows a password or a token in
``repr``/``str``, and a parse error never echoes the user info.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from tickpath.errors import ConfigError

__all__ = ["DEFAULT_PORT", "Credentials", "NatsUrl", "ServerAddress", "redact"]

DEFAULT_PORT = 4222
_SCHEMES = ("nats", "tls")


@dataclass(frozen=True)
class ServerAddress:
    """One server of a NATS URL: host, port and whether ``tls://`` asked for TLS."""

    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{self.hostport}"

    @property
    def hostport(self) -> str:
        """``host:port``, an IPv6 host in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Credentials:
    """Client authentication and trust: user/password, a token, an NKey seed file or a ``.creds``
    file, and a CA bundle for TLS. Only the file paths and the user name are shown by ``repr``."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    nkey_seed_file: str | None = None
    creds_file: str | None = None
    tls_ca: str | None = None

    def __repr__(self) -> str:  # never print secrets by accident
        return (
            f"Credentials(user={self.user!r}, password={'***' if self.password else None}, "
            f"token={'***' if self.token else None}, nkey_seed_file={self.nkey_seed_file!r}, "
            f"creds_file={self.creds_file!r}, tls_ca={self.tls_ca!r})"
        )

    __str__ = __repr__

    def over(self, base: Credentials) -> Credentials:
        """These credentials where set, ``base``'s elsewhere; a user here also replaces ``base``'s
        token (and a token here ``base``'s user), since a server takes one or the other."""
        user, password, token = base.user, base.password, base.token
        if self.user:
            user, password, token = self.user, self.password, None
        elif self.token:
            user, password, token = None, None, self.token
        return Credentials(
            user,
            password,
            token,
            self.nkey_seed_file or base.nkey_seed_file,
            self.creds_file or base.creds_file,
            self.tls_ca or base.tls_ca,
        )

    def nats_py_options(self) -> dict[str, Any]:
        """nats-py ``connect`` options for the user/password or token (and the CA, as an SSL
        context). NKey and ``.creds`` files are busbench's (its own signer): nats-py would need the
        ``nkeys`` package, which tickpath does not install, so they are refused here."""
        if self.nkey_seed_file or self.creds_file:
            raise ConfigError("NKey seed and .creds files are supported by busbench only, not by the sink or ingest")
        opts: dict[str, Any] = {}
        if self.user:
            opts = {"user": self.user, "password": self.password or ""}
        elif self.token:
            opts = {"token": self.token}
        if self.tls_ca:
            opts["tls"] = ssl.create_default_context(cafile=self.tls_ca)
        return opts


@dataclass(frozen=True)
class NatsUrl:
    """A parsed NATS URL: servers (tried in order), the user info's credentials and the query.

    ``str()`` is the servers without credentials (safe for logs and result files); percent-escapes in
    the user info are decoded, so a password may hold ``@``, ``:`` or ``,`` as ``%40``, ``%3A``, ``%2C``.
    """

    servers: tuple[ServerAddress, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    query: str = ""

    @classmethod
    def parse(cls, url: str, what: str = "a NATS URL", *, default_scheme: str | None = None) -> NatsUrl:
        """Parse ``url``; without ``://`` it takes ``default_scheme`` (busbench: ``nats``) or is refused.

        ``what`` names the URL in errors ("a NATS sink URL"); errors never echo the user info.
        """
        if default_scheme and "://" not in url:
            url = f"{default_scheme}://{url}"
        parts = urlsplit(url)
        cred, at, netloc = parts.netloc.rpartition("@")
        shown = f"{parts.scheme}://{netloc}" if at else url
        if parts.scheme not in _SCHEMES:
            raise ConfigError(f"{what} starts with nats:// or tls://, not {shown!r}")
        servers = tuple(_server(parts.scheme, h, shown) for h in netloc.split(",") if h)
        if not servers:
            raise ConfigError(f"no NATS server in {shown!r}")
        user = password = token = None
        if at:
            name, sep, secret = cred.partition(":")
            if sep:
                user, password = unquote(name), unquote(secret)
            else:
                token = unquote(cred)
        return cls(servers, user, password, token, parts.query)

    def __str__(self) -> str:  # no credentials: safe for logs and result files
        first, *rest = self.servers
        return ",".join([str(first), *(s.hostport for s in rest)])

    def __repr__(self) -> str:
        secret = "***" if self.password or self.token else None
        return f"NatsUrl({str(self)!r}, user={self.user!r}, secret={secret}, query={self.query!r})"

    @property
    def server_urls(self) -> tuple[str, ...]:
        """Each server as ``nats://host:port`` (or ``tls://``), without credentials."""
        return tuple(str(s) for s in self.servers)

    @property
    def credentials(self) -> Credentials:
        """The user info as :class:`Credentials` (empty when the URL has none)."""
        return Credentials(self.user, self.password, self.token)


def _server(scheme: str, hostport: str, shown: str) -> ServerAddress:
    """One ``host[:port]`` of the URL's comma-separated list (``[v6]:port`` for IPv6)."""
    parts = urlsplit(f"{scheme}://{hostport}")
    if not parts.hostname:
        raise ConfigError(f"no host in NATS URL {shown!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigError(f"bad port in NATS URL {shown!r}") from exc
    return ServerAddress(parts.hostname, port, scheme == "tls")


def redact(url: str) -> str:
    """The URL with any user info removed, safe for logs and result files (never raises)."""
    try:
        return str(NatsUrl.parse(url, default_scheme="nats"))
    except ConfigError:
        return "<unparsable NATS URL>"
