"""How bytes reach the feed: a small WebSocket and HTTP protocol, over aiohttp, picows, tickpath's
own framing, or in memory.

The feed's connection and the REST client are written against :class:`WsTransport` and
:class:`HttpTransport`, not against a library, so their reconnect, watchdog, pacing and retry logic
runs in tests over :class:`MemoryWsTransport` / :class:`MemoryHttpTransport`: no socket, and with
:class:`tickpath.clock.VirtualClock` no wall time either.

A received WebSocket message is anything with ``.type`` and ``.data`` whose type compares equal to
the :class:`WsKind` values. They are aiohttp's own ``WSMsgType`` numbers, so the aiohttp transport
hands its messages over as they are: no wrapper object per frame on the hot path.

Which WebSocket client the feed uses: :func:`make_ws_transport` (``--ws-transport`` /
``TICKPATH_WS_TRANSPORT``); docs/transports.md says why the default is the default.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable

import aiohttp

from tickpath.errors import ConfigError
from tickpath.transports.aiohttp_ws import AiohttpHttpTransport, AiohttpWsTransport, aiohttp_text_ready
from tickpath.transports.base import (
    HttpReply,
    HttpTransport,
    WsKind,
    WsMessage,
    WsMessageLike,
    WsSocket,
    WsTransport,
)
from tickpath.transports.memory import (
    HttpHandler,
    MemoryHttpTransport,
    MemoryWsPeer,
    MemoryWsTransport,
    WsHandler,
)
from tickpath.transports.own import OwnWsTransport

WS_TRANSPORTS = ("aiohttp", "tickpath", "picows")
# The fastest correct one measured (bench/bench_ws.py, docs/transports.md): aiohttp's C reader.
DEFAULT_WS_TRANSPORT = "aiohttp"
ENV = "TICKPATH_WS_TRANSPORT"


def ws_transport_name(name: str | None = None) -> str:
    """``name``, else ``$TICKPATH_WS_TRANSPORT``, else the default; an unknown one is a ConfigError."""
    chosen = (name or os.environ.get(ENV, "") or DEFAULT_WS_TRANSPORT).strip().lower()
    if chosen not in WS_TRANSPORTS:
        raise ConfigError(f"unknown WebSocket transport {chosen!r}; known: {', '.join(WS_TRANSPORTS)}")
    return chosen


def _session_ssl(session: aiohttp.ClientSession | None) -> ssl.SSLContext | None:
    # The feed builds one aiohttp session whose connector carries its TLS context (--ca-file); the
    # other clients take the same context from it so that verification stays exactly the same.
    if session is None:
        return None
    ctx = getattr(session.connector, "_ssl", None)
    return ctx if isinstance(ctx, ssl.SSLContext) else None


def make_ws_transport(
    name: str | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> WsTransport:
    """The WebSocket transport called ``name`` (see :func:`ws_transport_name`), verifying TLS with
    ``ssl_context`` or the ``session``'s context, else the system's trust store."""
    chosen = ws_transport_name(name)
    if chosen == "aiohttp":
        return AiohttpWsTransport(session, ssl_context=ssl_context)
    ctx = ssl_context or _session_ssl(session)
    if chosen == "picows":
        from tickpath.transports.picows_ws import PicowsWsTransport, available

        if not available():
            raise ConfigError("--ws-transport picows needs picows: pip install 'tickpath[picows]'")
        return PicowsWsTransport(ctx)
    return OwnWsTransport(ctx)


def text_taker(ws: WsSocket) -> tuple[Callable[[int], list[str]] | None, Callable[[], bool] | None]:
    """How to take the text frames already read behind the one just received, without waiting.

    ``(take, None)`` for a socket with ``take_text(limit)`` (own, picows, memory: pops up to ``limit``
    text frames off its queue), ``(None, ready)`` for aiohttp (``ready()``: its next ``receive()``
    returns a buffered text frame without suspending), ``(None, None)`` for any other socket.
    """
    take = getattr(ws, "take_text", None)
    if take is not None:
        return take, None
    return None, aiohttp_text_ready(ws)


__all__ = [
    "DEFAULT_WS_TRANSPORT",
    "ENV",
    "WS_TRANSPORTS",
    "AiohttpHttpTransport",
    "AiohttpWsTransport",
    "HttpHandler",
    "HttpReply",
    "HttpTransport",
    "MemoryHttpTransport",
    "MemoryWsPeer",
    "MemoryWsTransport",
    "OwnWsTransport",
    "WsHandler",
    "WsKind",
    "WsMessage",
    "WsMessageLike",
    "WsSocket",
    "WsTransport",
    "make_ws_transport",
    "text_taker",
    "ws_transport_name",
]
