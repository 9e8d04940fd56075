"""Replay of a recorded capture: the recorded frames, in recorded order and timing, byte for byte.

Each WebSocket connection gets its own playback from the first frame: frame ``i`` is sent at
``connect + (receipt_i - receipt_0) / speed`` (``speed=0``: as fast as the client reads). A
combined connection receives the recorded text unchanged; a raw ``/ws/<stream>`` connection
receives the ``data`` member, cut out of the recorded text without re-serialising it. REST depth
answers are the recorded snapshot bodies of the symbol, in recorded order (the last one repeats).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.sim import payloads
from tickpath.sim.config import ReplayConfig
from tickpath.venues.binance.capture import HttpRecord, read_http_capture, read_ws_capture
from tickpath.venues.binance.endpoints import KNOWN_VENUES, Venue, rest_paths, venue_of_host, venue_of_path

if TYPE_CHECKING:
    from tickpath.sim.ws import WsConnection

_PREFIX = '{"stream":"'


def _stream_of(text: str) -> str:
    if text.startswith(_PREFIX):
        end = text.find('"', len(_PREFIX))
        if end > 0:
            return text[len(_PREFIX) : end]
    return ""


def _record_venue(rec: HttpRecord, venue: Venue) -> Venue | None:
    """The venue a recorded request went to: by production host, else by its venue-specific path
    (a capture tickpath recorded against the simulator has a loopback host but the real path; spot,
    Binance.US and TR share their paths, so a path of ``venue`` counts as ``venue``)."""
    by_host = venue_of_host(urlsplit(rec.url).hostname or "")
    if by_host is not None:
        return by_host
    return venue if rec.path in rest_paths(venue) else venue_of_path(rec.path)


def _load_snapshots(http_path: Path, venue: Venue, ws_path: Path, ws_symbols: set[str]) -> dict[str, list[bytes]]:
    """Depth bodies by symbol from a REST capture, checked against the WebSocket capture it is paired
    with: snapshots of another venue, or of none of the streamed symbols, could never sync a book, so
    they are refused at start rather than answered with -1121 later."""
    snapshots: dict[str, list[bytes]] = {}
    for rec in read_http_capture(http_path):
        rec_venue = _record_venue(rec, venue)
        if rec_venue is not None and rec_venue != venue:
            raise ConfigError(
                f"REST capture {http_path} is {rec_venue} data ({rec.url.split('?', 1)[0]}) but "
                f"the WebSocket capture {ws_path} is {venue}: pair captures of the same venue"
            )
        sym = rec.params.get("symbol")
        if sym:
            snapshots.setdefault(sym.upper(), []).append(rec.body.encode())
    if ws_symbols and not ws_symbols & set(snapshots):
        have = ", ".join(sorted(snapshots)[:8]) or "none"
        raise ConfigError(
            f"REST capture {http_path} has no snapshot for any symbol of {ws_path} "
            f"({', '.join(sorted(ws_symbols))}); it has: {have}"
        )
    return snapshots


class ReplaySource:
    """A capture loaded for serving on its venue's listeners."""

    def __init__(self, cfg: ReplayConfig) -> None:
        cap = read_ws_capture(cfg.ws_path)
        if not cap.frames:
            raise ConfigError(f"capture {cfg.ws_path} has no frames to replay")
        venue = venue_of_host(urlsplit(cap.url).hostname or "")
        if venue is None:
            raise ConfigError(
                f"capture {cfg.ws_path}: cannot tell the venue of {cap.url} "
                f"(expected the production stream URL of one of {KNOWN_VENUES}, as venues/binance/endpoints.py lists)"
            )
        self.venue: Venue = venue
        self.url = cap.url
        self.speed = cfg.speed
        t0 = cap.frames[0].receipt
        self.frames: list[tuple[float, str, str]] = [(f.receipt - t0, _stream_of(f.text), f.text) for f in cap.frames]
        self.stream_names = set(cap.streams) | {s for _, s, _ in self.frames if s}
        ws_symbols = {s.split("@", 1)[0].upper() for s in self.stream_names}
        self.snapshots: dict[str, list[bytes]] = {}
        if cfg.http_path is not None:
            self.snapshots = _load_snapshots(cfg.http_path, venue, cfg.ws_path, ws_symbols)
        self._served: dict[str, int] = {}
        self.symbols = sorted(ws_symbols | set(self.snapshots))
        self._tasks: dict[WsConnection, asyncio.Task[None]] = {}
        self.frames_sent = 0

    @property
    def recorded_path(self) -> str:
        """The path and query the recorder opened (connect to it to get every frame)."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def validate(self, name: str) -> None:
        if name not in self.stream_names:
            raise UnknownSymbolError(f"stream {name!r} is not in the replayed capture")

    def subscribe(self, conn: WsConnection, name: str) -> None:
        if conn not in self._tasks:
            self._tasks[conn] = asyncio.get_running_loop().create_task(self._play(conn))

    def unsubscribe(self, conn: WsConnection, name: str) -> None:
        if not conn.streams or conn.closing:
            task = self._tasks.pop(conn, None)
            if task is not None:
                task.cancel()

    def drop_subscriber(self, conn: WsConnection) -> None:
        task = self._tasks.pop(conn, None)
        if task is not None:
            task.cancel()

    def snapshot_body(self, symbol: str) -> bytes | None:
        bodies = self.snapshots.get(symbol)
        if not bodies:
            return None
        i = self._served.get(symbol, 0)
        self._served[symbol] = i + 1
        return bodies[min(i, len(bodies) - 1)]

    async def _play(self, conn: WsConnection) -> None:
        await asyncio.sleep(0)  # let the handler register every stream of the URL first
        loop = asyncio.get_running_loop()
        start = loop.time()
        speed = self.speed
        try:
            for offset, name, text in self.frames:
                if conn.closing:
                    return
                if speed > 0:
                    due = start + offset / speed
                    if due > loop.time():
                        conn.flush()
                        await asyncio.sleep(due - loop.time())
                if name not in conn.streams:
                    continue
                # raw connections get the data member, cut from the recorded text, not re-serialised
                body = text.encode() if conn.combined else text[len(_PREFIX) + len(name) + 9 : -1].encode()
                conn.push(payloads.ws_frame(body))
                self.frames_sent += 1
                if speed == 0 and self.frames_sent % 256 == 0:
                    conn.flush()
                    while conn.transport.get_write_buffer_size() > 1 << 20 and not conn.closing:
                        await asyncio.sleep(0.001)
            conn.flush()
        finally:
            with contextlib.suppress(Exception):
                conn.flush()
