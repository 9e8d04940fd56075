"""JSON-lines sink: one event per line, the same bytes as on every bus (:func:`encode_event`).

``jsonl:-`` writes to standard output (for piping into ``jq`` or another program); ``jsonl:PATH``
appends to a file. Lines are buffered and written per batch; ``flush`` pushes them to the OS.

When the reader of a pipe goes away (``tickpath feed --sink jsonl:- | head``), the sink says so once
and counts every later event as dropped instead of failing each batch: the other sinks go on, and
the feed's exit (7) and summary say how many never reached the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tickpath.errors import SinkError
from tickpath.events import Event, SessionInfo, encode_event
from tickpath.logs import log_event
from tickpath.sinks.base import Sink

log = logging.getLogger(__name__)


class JsonLinesSink(Sink):
    """Writes each event as one JSON line to ``target`` (``"-"`` = stdout)."""

    name = "jsonl"

    def __init__(self, target: str | Path = "-", *, stream: IO[bytes] | None = None) -> None:
        super().__init__()
        self.target = str(target)
        self._out: IO[bytes] | None = stream
        self._owned = False
        self._gone = False  # the pipe's reader closed it: later events are dropped, counted

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
        if self._gone:
            self.stats.dropped += len(batch)
            return
        if self._out is None:
            await self.start()
        assert self._out is not None
        data = b"".join(encode_event(e) + b"\n" for e in batch)
        try:
            self._out.write(data)
        except BrokenPipeError:
            self._reader_gone()
            self.stats.dropped += len(batch)
            return
        except (OSError, ValueError) as exc:
            self.stats.errors += 1
            raise SinkError(f"writing JSON lines to {self.target} failed: {exc}") from exc
        self.stats.written += len(batch)

    @property
    def buffered(self) -> int:
        return 0  # each batch is written (or dropped) before write returns

    async def write_session(self, session: SessionInfo) -> None:
        """Nothing: the lines are events only (a session line would break consumers of the stream)."""

    def _reader_gone(self) -> None:
        self._gone = True
        self.stats.errors += 1
        log_event(
            log,
            logging.WARNING,
            "jsonl_reader_gone",
            target=self.target,
            detail="the pipe was closed by its reader; later events are counted as dropped",
        )
        out = self._out
        if out is not None and self.target == "-":
            # Point stdout at /dev/null so the interpreter's own flush at exit does not fail again.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())

    async def flush(self) -> None:
        if self._out is not None and not self._gone:
            try:
                await asyncio.to_thread(self._out.flush)
            except BrokenPipeError:
                self._reader_gone()  # what the flush could not push stays counted as written
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
