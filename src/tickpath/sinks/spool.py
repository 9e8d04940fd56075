"""A bounded on-disk FIFO of byte records: where a bus sink parks messages while the bus is away.

Layout: a directory of segment files ``00000001.seg``, ``00000002.seg``, ... and a ``cursor`` file.
Each record is framed as ``length (4 bytes, big endian) | crc32 (4 bytes) | payload``. Appends go to
the newest segment (a new one starts when it reaches ``segment_bytes``); reads start at the cursor
``(segment, offset)``. :meth:`Spool.peek` returns the oldest records without consuming them, and
:meth:`Spool.commit` consumes them only once the caller has delivered them (so a crash between the two
re-delivers rather than loses), deletes fully read segments and persists the cursor atomically.

The bound is on bytes on disk (``max_bytes``): :meth:`Spool.append` refuses a record that would exceed
it and the caller counts it as dropped. A torn record at the tail (crash mid-write) fails its length or
CRC check when the spool is reopened and is cut off, so the spool never hands out garbage.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from tickpath.errors import ConfigError, SinkError

__all__ = ["Spool"]

_HEADER = struct.Struct(">II")
_SUFFIX = ".seg"


class Spool:
    """Bounded, durable, in-order queue of byte records in segment files."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        segment_bytes: int | None = None,
        fsync: bool = False,
    ) -> None:
        if max_bytes <= 0:
            raise ConfigError(f"spool size must be positive, not {max_bytes} bytes")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        # Several segments per bound, so consumed data is freed long before the spool is full.
        self.segment_bytes = segment_bytes or max(64 * 1024, min(16 * 1024 * 1024, max_bytes // 8))
        self.fsync = fsync
        self._segments: list[int] = []  # ids on disk, oldest first
        self._sizes: dict[int, int] = {}
        self._read_seg = 0
        self._read_off = 0
        self._writer: BinaryIO | None = None
        self._reader: BinaryIO | None = None
        self._reader_seg = -1
        self._records = 0
        self._peeked: list[tuple[int, int]] = []  # (segment, end offset) of each peeked record
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create spool directory {self.directory}: {exc}") from exc
        self._open()

    # -- state -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Records not yet committed."""
        return self._records

    @property
    def disk_bytes(self) -> int:
        return sum(self._sizes.values())

    def _path(self, seg: int) -> Path:
        return self.directory / f"{seg:08d}{_SUFFIX}"

    def _open(self) -> None:
        ids = sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())
        cursor = self.directory / "cursor"
        seg, off = (ids[0] if ids else 1), 0
        if cursor.exists():
            try:
                a, b = cursor.read_text().split()
                seg, off = int(a), int(b)
            except ValueError as exc:
                raise SinkError(f"spool cursor {cursor} is corrupt; move the spool aside") from exc
        for i in ids:
            if i < seg:  # fully consumed before a crash, not yet deleted
                self._path(i).unlink(missing_ok=True)
        self._segments = [i for i in ids if i >= seg]
        if not self._segments:
            self._segments = [seg]
            off = 0
            self._path(seg).touch()
        self._read_seg, self._read_off = self._segments[0], off if self._segments[0] == seg else 0
        for i in self._segments:
            start = self._read_off if i == self._read_seg else 0
            n, good_end = self._scan(i, start)
            self._records += n
            size = self._path(i).stat().st_size
            if good_end < size:  # torn tail: cut it off
                with open(self._path(i), "r+b") as f:
                    f.truncate(good_end)
            self._sizes[i] = good_end
        self._writer = open(self._path(self._segments[-1]), "ab")  # noqa: SIM115 - kept open

    def _scan(self, seg: int, start: int) -> tuple[int, int]:
        """Count intact records of a segment from ``start``; returns (count, end of the last one)."""
        n, pos = 0, start
        with open(self._path(seg), "rb") as f:
            f.seek(start)
            while True:
                head = f.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    return n, pos
                length, crc = _HEADER.unpack(head)
                body = f.read(length)
                if len(body) < length or zlib.crc32(body) != crc:
                    return n, pos
                n += 1
                pos += _HEADER.size + length

    # -- writing -----------------------------------------------------------------------------
    def append(self, record: bytes) -> bool:
        """Append one record; False (nothing written) when it would exceed ``max_bytes``."""
        return self.append_many([record]) == 1

    def append_many(self, records: Iterable[bytes]) -> int:
        """Append records in order until the bound is reached; returns how many were written."""
        assert self._writer is not None
        written = 0
        used = self.disk_bytes
        frames: list[bytes] = []
        for rec in records:
            size = _HEADER.size + len(rec)
            if used + size > self.max_bytes:
                break
            cur = self._segments[-1]
            if self._sizes[cur] > 0 and self._sizes[cur] + size > self.segment_bytes:
                self._write(frames)
                frames = []
                self._rotate()
                cur = self._segments[-1]
            frames.append(_HEADER.pack(len(rec), zlib.crc32(rec)) + rec)
            self._sizes[cur] += size
            used += size
            written += 1
        self._write(frames)
        self._records += written
        return written

    def _write(self, frames: list[bytes]) -> None:
        if not frames:
            return
        assert self._writer is not None
        try:
            self._writer.write(b"".join(frames))
            self._writer.flush()
            if self.fsync:
                os.fsync(self._writer.fileno())
        except OSError as exc:
            raise SinkError(f"cannot write spool {self.directory}: {exc}") from exc

    def _rotate(self) -> None:
        assert self._writer is not None
        self._writer.close()
        nxt = self._segments[-1] + 1
        self._segments.append(nxt)
        self._sizes[nxt] = 0
        self._writer = open(self._path(nxt), "ab")  # noqa: SIM115 - kept open

    # -- reading -----------------------------------------------------------------------------
    def peek(self, n: int) -> list[bytes]:
        """Up to ``n`` oldest uncommitted records, in order; a second peek returns the same ones."""
        self._peeked = []
        out: list[bytes] = []
        seg, off = self._read_seg, self._read_off
        idx = self._segments.index(seg)
        while len(out) < n:
            if off >= self._sizes[seg]:
                if idx + 1 >= len(self._segments):
                    break
                idx += 1
                seg, off = self._segments[idx], 0
                continue
            f = self._reader_for(seg)
            f.seek(off)
            length, _crc = _HEADER.unpack(f.read(_HEADER.size))
            out.append(f.read(length))
            off += _HEADER.size + length
            self._peeked.append((seg, off))
        return out

    def _reader_for(self, seg: int) -> BinaryIO:
        if self._reader_seg != seg or self._reader is None:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self._path(seg), "rb")  # noqa: SIM115 - kept open
            self._reader_seg = seg
        return self._reader

    def commit(self, n: int) -> None:
        """Consume the first ``n`` records of the last :meth:`peek` (they were delivered)."""
        if n <= 0:
            return
        if n > len(self._peeked):
            raise ValueError(f"cannot commit {n} records, only {len(self._peeked)} were peeked")
        seg, off = self._peeked[n - 1]
        self._peeked = []
        self._records -= n
        while self._segments[0] != seg:  # every older segment is fully read
            old = self._segments.pop(0)
            self._sizes.pop(old, None)
            if self._reader_seg == old and self._reader is not None:
                self._reader.close()
                self._reader, self._reader_seg = None, -1
            self._path(old).unlink(missing_ok=True)
        self._read_seg, self._read_off = seg, off
        if self._records == 0 and off == self._sizes[seg] and seg == self._segments[-1]:
            # Empty: restart the live segment so the disk bound is not used up by consumed data.
            assert self._writer is not None
            self._writer.close()
            if self._reader is not None:
                self._reader.close()
                self._reader, self._reader_seg = None, -1
            self._path(seg).unlink(missing_ok=True)
            nxt = seg + 1
            self._segments, self._sizes = [nxt], {nxt: 0}
            self._writer = open(self._path(nxt), "ab")  # noqa: SIM115 - kept open
            self._read_seg, self._read_off = nxt, 0
        self._save_cursor()

    def _save_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        tmp.write_text(f"{self._read_seg} {self._read_off}")
        os.replace(tmp, self.directory / "cursor")

    def close(self) -> None:
        for f in (self._writer, self._reader):
            if f is not None:
                f.close()
        self._writer = self._reader = None
