"""The bounded on-disk spool: order, durability across reopen, the size bound and torn tails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpath.errors import ConfigError
from tickpath.sinks.spool import Spool


def _recs(n: int, start: int = 0, size: int = 20) -> list[bytes]:
    return [f"{i:08d}".encode().ljust(size, b"x") for i in range(start, start + n)]


def test_records_come_back_in_append_order_across_segments(tmp_path: Path) -> None:
    """Records span several segment files and are peeked and committed strictly in order."""
    sp = Spool(tmp_path, max_bytes=1_000_000, segment_bytes=200)
    recs = _recs(100)
    assert sp.append_many(recs) == 100
    assert len(list(tmp_path.glob("*.seg"))) > 5
    got: list[bytes] = []
    while len(sp):
        batch = sp.peek(7)
        got.extend(batch)
        sp.commit(len(batch))
    assert got == recs
    assert sp.peek(5) == []


def test_peek_without_commit_returns_the_same_records(tmp_path: Path) -> None:
    """An undelivered batch (no commit) is offered again: the drainer can retry it."""
    sp = Spool(tmp_path, max_bytes=100_000)
    sp.append_many(_recs(10))
    first = sp.peek(4)
    assert sp.peek(4) == first
    sp.commit(2)
    assert sp.peek(2) == first[2:4]


def test_uncommitted_records_survive_reopen(tmp_path: Path) -> None:
    """After a restart the spool resumes at the committed cursor, losing and repeating nothing."""
    sp = Spool(tmp_path, max_bytes=100_000, segment_bytes=300)
    recs = _recs(50)
    sp.append_many(recs)
    sp.peek(13)
    sp.commit(13)
    sp.close()
    again = Spool(tmp_path, max_bytes=100_000, segment_bytes=300)
    assert len(again) == 37
    assert again.peek(100) == recs[13:]


def test_bound_refuses_records_beyond_max_bytes(tmp_path: Path) -> None:
    """A full spool accepts nothing more, and frees space once records are committed."""
    sp = Spool(tmp_path, max_bytes=10 * 28, segment_bytes=56)  # 10 records of 20 bytes + 8 framing
    assert sp.append_many(_recs(15)) == 10
    assert not sp.append(b"y" * 20)
    while len(sp):
        sp.commit(len(sp.peek(3)))
    assert sp.append_many(_recs(5, start=100)) == 5
    assert sp.peek(5) == _recs(5, start=100)


def test_torn_tail_is_cut_off_on_reopen(tmp_path: Path) -> None:
    """A record half-written by a crash fails its checks and is dropped; intact ones stay."""
    sp = Spool(tmp_path, max_bytes=100_000)
    sp.append_many(_recs(3))
    sp.close()
    seg = sorted(tmp_path.glob("*.seg"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x40garbage")
    again = Spool(tmp_path, max_bytes=100_000)
    assert len(again) == 3
    assert again.peek(10) == _recs(3)
    again.append(b"after")
    assert again.peek(10)[-1] == b"after"


def test_commit_more_than_peeked_is_refused(tmp_path: Path) -> None:
    """Committing records that were never handed out is a programming error, not silent loss."""
    sp = Spool(tmp_path, max_bytes=100_000)
    sp.append_many(_recs(3))
    sp.peek(1)
    with pytest.raises(ValueError):
        sp.commit(2)


def test_non_positive_bound_is_a_config_error(tmp_path: Path) -> None:
    """A zero-size spool is rejected with a clear message."""
    with pytest.raises(ConfigError, match="positive"):
        Spool(tmp_path, max_bytes=0)
