"""One shard's connection, kept alive across Binance's 24-hour connection limit without a gap.

Binance closes every WebSocket connection after 24 hours. Waiting for that close would lose the
frames sent while reconnecting (and force a resync of every book on the connection). Instead, a
:class:`ShardRunner` opens the replacement *first*, once the current connection is
``rollover_after_s`` old; when the new connection has delivered frames, both run side by side for
``overlap_s`` (the engine de-duplicates by update id, so each event is published once), then the old
one is closed on purpose. Nothing is lost and no book is reset.

An unplanned close (network, venue, stale watchdog) is different: frames were lost, so the shard's
books are reset (explicit ``BookReset`` events) and resynced after the connection comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.feed.connection import Backoff, FeedConnection, FrameHandler, FramesHandler
from tickpath.feed.shards import Shard
from tickpath.logs import log_event

_LOGGED_SYMBOLS = 8


def symbols_for_log(symbols: tuple[str, ...]) -> str:
    """A whole-exchange shard has hundreds of symbols: a log line names the first few and counts the rest."""
    more = len(symbols) - _LOGGED_SYMBOLS
    return ",".join(symbols[:_LOGGED_SYMBOLS]) + (f",+{more} more" if more > 0 else "")


log = logging.getLogger(__name__)


class ShardRunner:
    """Runs the connection of one shard, rolling it over before the venue's lifetime limit."""

    def __init__(
        self,
        shard: Shard,
        base_url: str,
        on_frame: FrameHandler,
        *,
        rollover_after_s: float,
        overlap_s: float,
        stale_after_s: float,
        backoff: Backoff,
        clock: Clock = DEFAULT_CLOCK,
        session: aiohttp.ClientSession | None = None,
        subscribe: bool = False,
        max_messages_per_s: int = 5,
        on_lost: Callable[[Shard, FeedConnection], None] | None = None,
        on_opened: Callable[[FeedConnection], None] | None = None,
        first_frame_timeout_s: float = 30.0,
        on_frames: FramesHandler | None = None,
    ) -> None:
        self.shard = shard
        self.base_url = base_url
        self.on_frame = on_frame
        self.on_frames = on_frames  # frames that arrived together, in one call (see FeedConnection)
        self.rollover_after_s = rollover_after_s
        self.overlap_s = overlap_s
        self.stale_after_s = stale_after_s
        self.backoff = backoff
        self.clock = clock
        self.session = session
        self.subscribe = subscribe
        self.max_messages_per_s = max_messages_per_s
        self.on_lost = on_lost
        self.on_opened = on_opened
        self.first_frame_timeout_s = first_frame_timeout_s
        self.rollovers = 0
        self.rollover_failures = 0
        self.current: FeedConnection | None = None
        self.retired: list[FeedConnection] = []  # closed on purpose; kept for their counters
        self._generation = 0
        self._tasks: dict[FeedConnection, asyncio.Task[None]] = {}
        self._retiring: set[FeedConnection] = set()

    @property
    def connections(self) -> list[FeedConnection]:
        return [*self.retired, *self._tasks]

    def _new(self) -> FeedConnection:
        self._generation += 1
        conn = FeedConnection(
            f"s{self.shard.index}g{self._generation}",
            self.base_url,
            list(self.shard.streams),
            self.on_frame,
            clock=self.clock,
            session=self.session,
            stale_after_s=self.stale_after_s,
            backoff=self.backoff,
            subscribe=self.subscribe,
            max_messages_per_s=self.max_messages_per_s,
            on_open=self._opened,
            on_close=self._closed,
            seed=self.shard.index * 1000 + self._generation,
            on_frames=self.on_frames,
        )
        self._tasks[conn] = asyncio.create_task(conn.run(), name=conn.conn_id)
        return conn

    def _opened(self, conn: FeedConnection) -> None:
        if self.on_opened is not None:
            self.on_opened(conn)

    def _closed(self, conn: FeedConnection) -> None:
        if conn in self._retiring:
            return  # a planned rollover close: the replacement already carries the streams
        if any(c is not conn and c.is_open and c.first_frame.is_set() for c in self._tasks):
            return  # closed during a rollover overlap: the other connection already delivers everything
        syms = self.shard.symbols
        log_event(
            log, logging.WARNING, "shard_connection_lost", conn=conn.conn_id, n=len(syms), symbols=symbols_for_log(syms)
        )
        if self.on_lost is not None:
            self.on_lost(self.shard, conn)

    async def _sleep_s(self, seconds: float) -> None:
        await self.clock.sleep_until_ns(self.clock.monotonic_ns() + int(seconds * 1e9))

    async def run(self) -> None:
        """Keep the shard connected and roll over on schedule; cancel to stop."""
        self.current = self._new()
        try:
            while True:
                cur = self.current
                await cur.connected.wait()
                # Roll over relative to when this connection (re)opened: a reconnect restarts the 24 h.
                opened = cur.opened_mono_ns
                due = opened + int(self.rollover_after_s * 1e9)
                while self.clock.monotonic_ns() < due:
                    await self.clock.sleep_until_ns(due)
                    if cur.opened_mono_ns != opened:  # it reconnected meanwhile: new deadline
                        opened = cur.opened_mono_ns
                        due = opened + int(self.rollover_after_s * 1e9)
                await self._rollover(cur)
        finally:
            await self.stop()

    async def _rollover(self, old: FeedConnection) -> None:
        new = self._new()
        try:
            await asyncio.wait_for(new.first_frame.wait(), self.first_frame_timeout_s)
        except TimeoutError:
            # The replacement never delivered: keep the old connection (it still works) and try later.
            self.rollover_failures += 1
            log_event(log, logging.WARNING, "rollover_failed", old=old.conn_id, new=new.conn_id)
            await self._retire(new)
            return
        await self._sleep_s(self.overlap_s)
        self.current = new
        await self._retire(old)
        self.rollovers += 1
        log_event(log, logging.INFO, "connection_rolled_over", old=old.conn_id, new=new.conn_id)

    async def _retire(self, conn: FeedConnection) -> None:
        self._retiring.add(conn)
        await conn.stop()
        task = self._tasks.pop(conn, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.retired.append(conn)

    async def stop(self) -> None:
        """Close every connection of the shard on purpose (no reset, no reconnect)."""
        for conn in list(self._tasks):
            await self._retire(conn)
