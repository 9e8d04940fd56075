"""The transport protocols the feed and the REST client are written against, and the message kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple, Protocol


class WsKind(IntEnum):
    """Message kinds, numbered as aiohttp's ``WSMsgType``."""

    TEXT = 1
    BINARY = 2
    CLOSE = 8
    CLOSED = 257
    ERROR = 258


class WsMessage(NamedTuple):
    type: int
    data: str | bytes | int | None  # int: a CLOSE's code, as aiohttp gives it


class WsMessageLike(Protocol):
    @property
    def type(self) -> int: ...
    @property
    def data(self) -> Any: ...  # str for TEXT, bytes for BINARY


class WsSocket(Protocol):
    """One open WebSocket, as the feed uses it."""

    @property
    def closed(self) -> bool: ...
    async def receive(self) -> WsMessageLike: ...
    async def send_str(self, text: str) -> None: ...
    async def close(self) -> object: ...
    def exception(self) -> BaseException | None: ...


class WsTransport(Protocol):
    async def connect(self, url: str) -> WsSocket:
        """Open ``url``; raise ``OSError`` (or ``aiohttp.ClientError``) when it cannot be opened."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class HttpReply:
    """One HTTP answer; ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpTransport(Protocol):
    async def get(self, url: str) -> HttpReply:
        """GET ``url``; raise ``OSError``/``TimeoutError``/``aiohttp.ClientError`` on transport failure."""
        ...

    async def close(self) -> None: ...
