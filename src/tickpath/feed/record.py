"""``--record DIR``: raw frames and REST snapshots in the shared capture format.

One ``<venue>-<connection>-<n>.ws.txt`` per opened connection (its combined-stream URL, then every
text frame exactly as received with its receipt time) and one ``<venue>.http.txt`` for every REST
answer. ``tickpath sim`` replays these files, so a live session can be reproduced offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from tickpath.errors import ConfigError
from tickpath.venues.binance.capture import CaptureWriter


class FeedRecorder:
    """Capture files for one feed run under ``directory``."""

    def __init__(self, directory: Path, venue: str) -> None:
        self.directory = Path(directory)
        self.venue = venue
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._http: IO[str] = (self.directory / f"{venue}.http.txt").open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot record into {self.directory}: {exc.strerror}") from exc
        self._http_writer = CaptureWriter(None, self._http)
        self._ws: dict[str, tuple[IO[str], CaptureWriter]] = {}
        self._opened: dict[str, int] = {}
        self.frames = 0
        self.files: list[Path] = [self.directory / f"{venue}.http.txt"]

    def opened(self, conn_id: str, url: str, wall_ns: int) -> None:
        """A connection opened: start a new capture file for it."""
        self._close_ws(conn_id)
        n = self._opened.get(conn_id, 0) + 1
        self._opened[conn_id] = n
        path = self.directory / f"{self.venue}-{conn_id}-{n}.ws.txt"
        fh = path.open("w", encoding="utf-8")
        writer = CaptureWriter(fh, None)
        writer.ws_opened(url, wall_ns / 1e9)
        self._ws[conn_id] = (fh, writer)
        self.files.append(path)

    def frame(self, conn_id: str, wall_ns: int, text: str) -> None:
        entry = self._ws.get(conn_id)
        if entry is not None:
            entry[1].ws_frame(wall_ns / 1e9, text)
            self.frames += 1

    def http(self, url: str, wall_ns: int, body: bytes) -> None:
        self._http_writer.http(url, wall_ns / 1e9, body.decode("utf-8", "replace"))
        self._http_writer.flush()

    def _close_ws(self, conn_id: str) -> None:
        entry = self._ws.pop(conn_id, None)
        if entry is not None:
            entry[0].close()

    def flush(self) -> None:
        for fh, _ in self._ws.values():
            fh.flush()
        self._http.flush()

    def close(self) -> None:
        for conn_id in list(self._ws):
            self._close_ws(conn_id)
        self._http.close()
