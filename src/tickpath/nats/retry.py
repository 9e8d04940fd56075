"""Waiting out a JetStream that cannot answer yet, for every client of it (the sink, ``ingest``).

A stream that does not exist yet, or a cluster that times out or answers "temporarily unavailable"
(a node SIGKILLed, a stream or meta leader being elected, a cluster just started) is a moment, not a
configuration mistake: the caller retries with a doubling delay (0.25 s to 5 s) and says so in one
log line per attempt (a warning the first time). :func:`js_call` sorts a JetStream API failure into
those two transient kinds and the permanent ones (JetStream not enabled, a request refused).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tickpath.clock import Clock
from tickpath.errors import ConfigError, ConnectionFailedError
from tickpath.logs import log_event
from tickpath.nats.client import jetstream_unavailable

log = logging.getLogger(__name__)

__all__ = ["ClusterUnansweredError", "StreamMissingError", "js_call", "retrying"]

T = TypeVar("T")

FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0


class StreamMissingError(ConfigError):
    """The stream does not exist (yet): exit 2 once the wait is over."""


class ClusterUnansweredError(ConnectionFailedError):
    """JetStream timed out or answered "temporarily unavailable" (no leader): exit 4 once the wait is over."""


async def js_call(call: Awaitable[Any], servers: Sequence[str], what: str, *, missing: str | None = None) -> Any:
    """Await a JetStream API request, translating its failures into tickpath errors: a 404 is
    ``NotFoundError`` (or :class:`StreamMissingError` with ``missing``), no responders is JetStream
    not enabled, a 5xx or a timeout is :class:`ClusterUnansweredError`, another refusal ConfigError."""
    from nats.errors import Error as NatsError
    from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

    where = ", ".join(servers)
    try:
        return await call
    except NotFoundError as exc:
        if missing is None:
            raise
        raise StreamMissingError(missing) from exc
    except ServiceUnavailableError as exc:
        if exc.code is None:  # no responders on $JS.API: JetStream is not enabled
            raise jetstream_unavailable(servers) from exc
        raise ClusterUnansweredError(f"NATS at {where}: cannot use {what} now: {exc.description or exc}") from exc
    except APIError as exc:  # the server answered with an error (a consumer it will not create, ...)
        if (exc.code or 0) >= 500:  # 503 "temporarily unavailable", 500 no leader: a cluster electing
            raise ClusterUnansweredError(f"NATS at {where}: cannot use {what} now: {exc.description or exc}") from exc
        raise ConfigError(f"NATS at {where} refused {what}: {exc.description or exc}") from exc
    except (TimeoutError, NatsError) as exc:
        raise ClusterUnansweredError(f"NATS at {where}: cannot use {what}: {exc!r}") from exc


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget_s: float | None,
    clock: Clock,
    who: str = "ingest",
) -> T:
    """``await attempt()`` until it does not raise a transient error, for at most ``budget_s``
    (None: forever). The last attempt is made at the end of the budget; its error is the one raised.
    ``who`` names the log events: ``<who>_waiting_for_stream``, ``<who>_stream_wait_over``."""
    started = clock.monotonic_ns()
    delay = FIRST_DELAY_S
    tries = 0
    while True:
        try:
            return await attempt()
        except (StreamMissingError, ClusterUnansweredError) as exc:
            tries += 1
            waited = (clock.monotonic_ns() - started) / 1e9
            left = None if budget_s is None else budget_s - waited
            if left is not None and left <= 0:
                if tries > 1:
                    log_event(log, logging.WARNING, f"{who}_stream_wait_over", what=what, waited_s=round(waited, 1))
                raise
            pause = delay if left is None else min(delay, left)
            log_event(
                log,
                logging.WARNING if tries == 1 else logging.INFO,
                f"{who}_waiting_for_stream",
                what=what,
                reason=str(exc),
                attempt=tries,
                waited_s=round(waited, 1),
                retry_in_s=round(pause, 2),
                gives_up_in_s="never" if left is None else round(left, 1),
            )
            await clock.sleep_until_ns(clock.monotonic_ns() + int(pause * 1e9))
            delay = min(delay * 2, MAX_DELAY_S)
