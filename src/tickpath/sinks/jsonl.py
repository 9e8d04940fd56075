"""JSON-lines sink: one event per line, the same bytes as on every bus (:func:`encode_event`).

``jsonl:-`` writes to standard output (for piping into ``jq`` or another program); ``jsonl:PATH``
appends to a file. Lines are buffered and written per batch; ``flush`` pushes them to the OS.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tickpath.errors import SinkError
from tickpath.events import Event, encode_event
from tickpath.sinks.base import Sink


class JsonLinesSink(Sink):
    """Writes each event as one JSON line to ``target`` (``"-"`` = stdout)."""

    name = "jsonl"

    def __init__(self, target: str | Path = "-", *, stream: IO[bytes] | None = None) -> None:
        super().__init__()
        self.target = str(target)
        self._out: IO[bytes] | None = stream
        self._owned = False

    async def start(self) -> None:
        if self._out is not None:
            return
        if self.target == "-":
            self._out = sys.stdout.buffer
            return
        try:
            path = Path(self.target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._out = path.open("ab")
            self._owned = True
        except OSError as exc:
            raise SinkError(f"cannot open {self.target} for JSON lines: {exc.strerror}") from exc

    async def write(self, batch: Sequence[Event]) -> None:
        self.stats.accepted += len(batch)
        if self._out is None:
            await self.start()
        assert self._out is not None
        data = b"".join(encode_event(e) + b"\n" for e in batch)
        try:
            self._out.write(data)
        except (OSError, ValueError) as exc:
            self.stats.errors += 1
            raise SinkError(f"writing JSON lines to {self.target} failed: {exc}") from exc
        self.stats.written += len(batch)

    async def flush(self) -> None:
        if self._out is not None:
            try:
                await asyncio.to_thread(self._out.flush)
            except (OSError, ValueError) as exc:
                self.stats.errors += 1
                raise SinkError(f"flushing JSON lines to {self.target} failed: {exc}") from exc

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            if self._owned and self._out is not None:
                self._out.close()
                self._out = None
