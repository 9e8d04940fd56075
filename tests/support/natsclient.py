"""A stand-in for nats-py's client: records every callback its protocol parser makes.

Tests of tickpath's fast parsers (:mod:`tickpath.nats.internals`) feed it wire bytes without a server.
"""

from __future__ import annotations

import random
from typing import Any

from nats.protocol.parser import Parser


class RecordingClient:
    """The callbacks nats-py's parser calls on its client, recording each call."""

    def __init__(self) -> None:
        self.queued: list[tuple[int, bytes, bytes, bytes, bytes | None]] = []  # the normal Msg path
        self.pings = 0
        self.pongs = 0
        self.infos: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._ps: Any = Parser(self)

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        self.queued.append((sid, subject, reply, data, headers))

    async def _process_ping(self) -> None:
        self.pings += 1

    async def _process_pong(self) -> None:
        self.pongs += 1

    async def _process_info(self, info: dict[str, Any]) -> None:
        self.infos.append(info)

    async def _process_err(self, err: str) -> None:
        self.errors.append(err)

    async def _process_op_err(self, err: Exception) -> None:
        self.errors.append(repr(err))


async def feed_in_random_reads(parser: Any, wire: bytes, rng: random.Random, max_read: int) -> None:
    """Hand ``wire`` to ``parser.parse`` in reads of 1 to ``max_read`` bytes drawn from ``rng``, as a
    socket might deliver it."""
    pos = 0
    while pos < len(wire):
        step = rng.randint(1, max_read)
        await parser.parse(wire[pos : pos + step])
        pos += step
