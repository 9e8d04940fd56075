"""Connecting to NATS with nats-py, for the JetStream sink and ``tickpath ingest`` alike."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from tickpath.errors import ConnectionFailedError
from tickpath.logs import log_event
from tickpath.nats.internals import check_internals, install_fast_parser, reconnect_forever

log = logging.getLogger(__name__)

__all__ = ["connect", "jetstream_unavailable"]


async def connect(servers: Sequence[str], *, timeout_s: float = 5.0, **options: Any) -> Any:
    """Connect to NATS: a few quick attempts at start (so a wrong address fails in seconds, with
    :class:`ConnectionFailedError`), then reconnect forever once the link has been up."""
    from nats.aio.client import Client

    check_internals()  # a nats-py that moved what tickpath relies on fails here, before the network

    async def _quiet(exc: Exception) -> None:  # nats-py prints tracebacks by default
        log_event(log, logging.DEBUG, "nats_client_error", error=repr(exc))

    errors: list[Exception] = []
    report = options.pop("error_cb", None) or _quiet

    async def remember(exc: Exception) -> None:
        errors.append(exc)
        await report(exc)

    attempts = max(1, int(timeout_s))
    nc: Any = Client()  # nats-py types its timeouts as int; it takes float seconds
    try:
        # nats-py never returns from a TLS handshake that failed verification (it reports the error
        # and waits): bound the whole connect by the attempts it would make.
        async with asyncio.timeout(attempts * (timeout_s + 0.25) + 1.0):
            await nc.connect(
                servers=list(servers),
                connect_timeout=timeout_s,
                allow_reconnect=True,
                max_reconnect_attempts=attempts,
                reconnect_time_wait=0.25,
                error_cb=remember,
                **options,
            )
    except Exception as exc:
        if isinstance(exc, TimeoutError):
            with contextlib.suppress(Exception):
                await nc.close()
        why = exc if not isinstance(exc, TimeoutError) or not errors else errors[-1]
        raise ConnectionFailedError(f"cannot connect to NATS at {', '.join(servers)}: {why}") from exc
    reconnect_forever(nc)
    install_fast_parser(nc)
    return nc


def jetstream_unavailable(servers: Sequence[str]) -> ConnectionFailedError:
    """The error for a server that answers NATS but not JetStream (``$JS.API`` has no responders:
    nats-py's ``ServiceUnavailableError``, code None), for the sink and ``ingest`` alike.
    ``servers`` must not carry credentials."""
    return ConnectionFailedError(
        f"JetStream is not enabled on {', '.join(servers)}: start nats-server with -js "
        f"(or enable JetStream for this account)"
    )
