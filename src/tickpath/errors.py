"""One error hierarchy for tickpath.

Every error the library raises on purpose derives from :class:`TickpathError`; errors from
dependencies are translated once, where they enter, with ``raise ... from exc``. The CLI maps
each class to an exit code, so a user sees one clear line, never a traceback::

    TickpathError                      exit 1
    ├── ConfigError                    exit 2   bad arguments, files, or settings
    │   └── UnknownSymbolError                  a symbol / stream / venue the venue does not list
    ├── ToolMissingError               exit 3   a required external program is not installed
    ├── ConnectionFailedError          exit 4   a host could not be reached or the link broke
    │   ├── ResolutionError                     DNS said no
    │   ├── HandshakeError                      TLS or WebSocket upgrade refused
    │   └── ConnectionClosedError               the peer closed a link we still needed
    ├── ExchangeError                  exit 5   the venue answered with an error
    │   └── RateLimitedError                    429 / 418, carries ``retry_after``
    ├── SyncError                      exit 6   an order book could not be kept in sync
    ├── SinkError                      exit 7   a sink could not accept or flush data
    ├── InfraError                     exit 8   Terraform / cloud provisioning failed
    ├── CheckFailedError               exit 9   a measured result failed its threshold
    └── InterruptedRunError            exit 130 stopped by SIGINT / SIGTERM after cleanup
"""

from __future__ import annotations


class TickpathError(Exception):
    """Base of every error tickpath raises on purpose."""

    exit_code = 1


class ConfigError(TickpathError):
    """Bad arguments, configuration files or settings."""

    exit_code = 2


class UnknownSymbolError(ConfigError):
    """A venue, symbol or stream name that the venue does not know."""


class ToolMissingError(TickpathError):
    """A required external program (terraform, nats-server, ...) is not installed."""

    exit_code = 3


class ConnectionFailedError(TickpathError):
    """A host could not be reached, or an established link broke."""

    exit_code = 4


class ResolutionError(ConnectionFailedError):
    """A host name did not resolve."""


class HandshakeError(ConnectionFailedError):
    """A TLS handshake or WebSocket upgrade was refused."""


class ConnectionClosedError(ConnectionFailedError):
    """The peer closed a connection that was still needed."""


class ExchangeError(TickpathError):
    """The venue answered with an error payload or status."""

    exit_code = 5

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RateLimitedError(ExchangeError):
    """HTTP 429 or 418: back off for ``retry_after`` seconds."""

    def __init__(self, message: str, *, status: int, retry_after: float) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class SyncError(TickpathError):
    """An order book could not be brought or kept in sync."""

    exit_code = 6


class SinkError(TickpathError):
    """A sink could not accept or flush data."""

    exit_code = 7


class InfraError(TickpathError):
    """Provisioning (Terraform, cloud APIs) failed."""

    exit_code = 8


class CheckFailedError(TickpathError):
    """A measured result failed its threshold."""

    exit_code = 9


class InterruptedRunError(TickpathError):
    """The run was stopped by a signal, after cleaning up."""

    exit_code = 130
