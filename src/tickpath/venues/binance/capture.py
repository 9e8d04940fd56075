"""The raw capture format (cryptofeed's raw-data recorder), read and written.

``*.ws.txt``: first line ``URL <-> OPENED`` (Unix seconds), then one ``RECEIPT: FRAME`` line per
text frame, FRAME exactly as received. ``*.http.txt``: one ``URL -> RECEIPT: BODY`` line per request.
The feed's ``--record`` writes this format and the simulator replays it, so a capture taken by
tickpath and one taken by the original recorder are interchangeable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

from tickpath.errors import ConfigError


@dataclass(frozen=True)
class WsFrame:
    receipt: float  # local receive time, Unix seconds
    text: str  # the frame exactly as received


@dataclass
class WsCapture:
    url: str
    opened_at: float
    frames: list[WsFrame] = field(default_factory=list)

    @property
    def streams(self) -> list[str]:
        """Stream names subscribed in the URL (combined ``?streams=`` or raw ``/ws/<name>``)."""
        parts = urlsplit(self.url)
        qs = parse_qs(parts.query).get("streams")
        if qs:
            return [s for s in qs[0].split("/") if s]
        if parts.path.startswith("/ws/"):
            return [parts.path[len("/ws/") :]]
        return []


@dataclass(frozen=True)
class HttpRecord:
    url: str
    receipt: float
    body: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


def _split_receipt(line: str, sep: str, lineno: int, path: Path | str) -> tuple[float, str]:
    head, found, rest = line.partition(sep)
    if not found:
        raise ConfigError(f"{path}:{lineno}: expected 'RECEIPT{sep}...', got {line[:60]!r}")
    try:
        return float(head), rest
    except ValueError:
        raise ConfigError(f"{path}:{lineno}: receipt time {head[:30]!r} is not a number") from None


def _open(p: Path) -> IO[str]:
    try:
        return p.open("r", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read capture {p}: {exc.strerror}") from exc


def _not_text(p: Path, exc: UnicodeDecodeError) -> ConfigError:
    return ConfigError(f"{p}: not a capture: invalid UTF-8 ({exc.reason} in a line read)")


def read_ws_capture(path: str | Path) -> WsCapture:
    """Read a ``*.ws.txt`` capture; a malformed line is a :class:`ConfigError` naming it."""
    p = Path(path)
    try:
        return _read_ws(p)
    except UnicodeDecodeError as exc:  # found by fuzz/ (the capture target)
        raise _not_text(p, exc) from None


def _read_ws(p: Path) -> WsCapture:
    with _open(p) as fh:
        first = fh.readline().rstrip("\n")
        url, found, opened = first.partition(" <-> ")
        if not found:
            raise ConfigError(f"{p}:1: expected 'URL <-> OPENED' header, got {first[:60]!r}")
        try:
            cap = WsCapture(url=url, opened_at=float(opened))
        except ValueError:
            raise ConfigError(f"{p}:1: open time {opened[:30]!r} is not a number") from None
        for lineno, raw in enumerate(fh, start=2):
            line = raw.rstrip("\n")
            if not line:
                continue
            receipt, text = _split_receipt(line, ": ", lineno, p)
            cap.frames.append(WsFrame(receipt, text))
    return cap


def iter_http_capture(path: str | Path) -> Iterator[HttpRecord]:
    p = Path(path)
    try:
        yield from _iter_http(p)
    except UnicodeDecodeError as exc:
        raise _not_text(p, exc) from None


def _iter_http(p: Path) -> Iterator[HttpRecord]:
    with _open(p) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n")
            if not line:
                continue
            url, found, rest = line.partition(" -> ")
            if not found:
                raise ConfigError(f"{p}:{lineno}: expected 'URL -> RECEIPT: BODY', got {line[:60]!r}")
            receipt, body = _split_receipt(rest, ": ", lineno, p)
            yield HttpRecord(url, receipt, body)


def read_http_capture(path: str | Path) -> list[HttpRecord]:
    """Read a ``*.http.txt`` capture into a list of records, in file order."""
    return list(iter_http_capture(path))


def replay_order(frames: Iterable[WsFrame], records: Iterable[HttpRecord]) -> Iterator[WsFrame | HttpRecord]:
    """A capture's frames and REST records merged by receipt time, as a feed saw them: a record
    received at or before a frame comes first, records after the last frame come last."""
    pending = sorted(records, key=lambda r: r.receipt)
    i = 0
    for f in frames:
        while i < len(pending) and pending[i].receipt <= f.receipt:
            yield pending[i]
            i += 1
        yield f
    yield from pending[i:]


class CaptureWriter:
    """Writes the capture format: one WebSocket file per connection and one HTTP file."""

    def __init__(self, ws_out: IO[str] | None, http_out: IO[str] | None) -> None:
        self._ws = ws_out
        self._http = http_out

    def ws_opened(self, url: str, opened_at: float) -> None:
        if self._ws is not None:
            self._ws.write(f"{url} <-> {opened_at}\n")

    def ws_frame(self, receipt: float, text: str) -> None:
        if self._ws is not None:
            self._ws.write(f"{receipt}: {text}\n")

    def http(self, url: str, receipt: float, body: str) -> None:
        if self._http is not None:
            self._http.write(f"{url} -> {receipt}: {body}\n")

    def flush(self) -> None:
        for fh in (self._ws, self._http):
            if fh is not None:
                fh.flush()
