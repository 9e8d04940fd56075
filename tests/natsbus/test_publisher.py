"""tickpath.nats.publisher on virtual time: the ack timer, back-pressure, spool drain and close, exact
to the clock, with the real on-disk spool and an in-memory link in place of a nats-py client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tickpath.clock import VirtualClock, run_virtual
from tickpath.nats.frames import Hpub, parse_hpub
from tickpath.nats.publisher import Msg, Publisher, PublisherConfig, pack, unpack
from tickpath.sinks.nats import NatsSinkStats
from tickpath.sinks.spool import Spool

INBOX = "_INBOX.test."
OK = b'{"stream":"TICKPATH","seq":1}'
ERR = b'{"error":{"code":503,"description":"no leader"}}'
S = 1_000_000_000


class MemoryLink:
    """A client's write buffer in memory: the frames queued, and whether the link is up. With
    ``answer``, each flushed frame is answered on the next loop turn, as a server would."""

    def __init__(self) -> None:
        self.connected = True
        self.closed = False
        self.sent: list[Hpub] = []
        self.answer: Callable[[Hpub], bytes | None] | None = None
        self.publisher: Publisher | None = None
        self._queued = b""

    @property
    def is_connected(self) -> bool:
        return self.connected

    @property
    def is_closed(self) -> bool:
        return self.closed

    def buffered_bytes(self) -> int:
        return len(self._queued)

    def queue(self, data: bytes, messages: int) -> None:
        self._queued += data

    async def flush(self) -> None:
        frames, self._queued = parse_hpub(self._queued)
        assert not self._queued
        self.sent.extend(frames)
        if self.answer is not None:
            asyncio.get_running_loop().call_soon(self._reply, frames)

    def _reply(self, frames: list[Hpub]) -> None:
        assert self.answer is not None and self.publisher is not None
        for f in frames:
            body = self.answer(f)
            if body is not None:
                self.publisher.on_ack(f.reply, b"", body, None)


def _msgs(n: int, start: int = 0) -> list[Msg]:
    return [(f"tp.v.trades.S{i % 3}", f"k{i}", b"payload-%d" % i) for i in range(start, start + n)]


def _publisher(tmp_path: Path, clock: VirtualClock, link: MemoryLink, **cfg: float) -> tuple[Publisher, NatsSinkStats]:
    stats = NatsSinkStats()
    spool = Spool(tmp_path / "spool", max_bytes=int(cfg.pop("spool_bytes", 1 << 20)))
    config = PublisherConfig(**{"ack_timeout_s": 1.0, "backpressure_s": 0.5, "drain_batch": 4, **cfg})  # type: ignore[arg-type]
    pub = Publisher(link, INBOX, spool, stats, config, clock=clock)
    link.publisher = pub
    return pub, stats


def _keys(frames: list[Hpub]) -> list[str]:
    return [f.headers["Nats-Msg-Id"] for f in frames]


def test_spool_records_round_trip() -> None:
    """A message packs into one spool record and back, unchanged (subject, id, payload)."""
    m = ("tp.binance.depth.BTCUSDT", "binance:depth:BTCUSDT:42", b"\x00\xff{}")
    assert unpack(pack(m)) == m


def test_unanswered_acks_time_out_on_the_clock_and_are_resent_from_the_spool(tmp_path: Path) -> None:
    """Acks that never come fail exactly when the sweeper passes ack_timeout_s (1 s: its 0.25 s ticks
    land on it), go to the spool, and the drainer re-sends them in order; acknowledged, nothing is left."""
    clock = VirtualClock()
    link = MemoryLink()
    pub, stats = _publisher(tmp_path, clock, link)
    timed_out_at: list[int] = []

    async def main() -> None:
        pub.start()
        await pub.publish(_msgs(5))
        for f in link.sent[:2]:  # the first two are acknowledged, three are not
            pub.on_ack(f.reply, b"", OK, None)
        assert (stats.published, pub.inflight) == (2, 3)
        link.answer = lambda f: OK  # from now on the server answers
        while stats.retried < 3:
            await asyncio.sleep(0.01)
        timed_out_at.append(clock.monotonic_ns())
        await asyncio.wait_for(pub.wait_idle(), 5)
        await pub.close()

    run_virtual(main, clock)
    assert timed_out_at[0] >= 1 * S and timed_out_at[0] < 1 * S + 20_000_000  # within the test's 10 ms polling
    assert _keys(link.sent) == ["k0", "k1", "k2", "k3", "k4", "k2", "k3", "k4"]
    assert (stats.retried, stats.spooled, stats.published, stats.written) == (3, 3, 5, 5)
    assert (stats.spool_pending, stats.inflight, stats.dropped) == (0, 0, 0)


def test_back_pressure_waits_backpressure_s_then_spools_and_drains_in_order(tmp_path: Path) -> None:
    """With the window full and no acks, publish waits exactly backpressure_s of clock time, then
    parks the rest in the spool; once acks flow, the spool goes out in order behind the window."""
    clock = VirtualClock()
    link = MemoryLink()
    pub, stats = _publisher(tmp_path, clock, link, max_inflight=3, ack_timeout_s=10.0)
    waited: list[int] = []

    async def main() -> None:
        pub.start()
        t0 = clock.monotonic_ns()
        await pub.publish(_msgs(7))
        waited.append(clock.monotonic_ns() - t0)
        assert (pub.inflight, stats.spooled, stats.spool_pending) == (3, 4, 4)
        for f in list(link.sent):
            pub.on_ack(f.reply, b"", OK, None)
        link.answer = lambda f: OK
        await pub.publish(_msgs(2, start=7))  # behind the spool, never ahead of it
        await asyncio.wait_for(pub.wait_idle(), 5)
        await pub.close()

    run_virtual(main, clock)
    assert abs(waited[0] - S // 2) < 1_000  # 0.5 s of virtual time, to the microsecond
    assert _keys(link.sent) == [f"k{i}" for i in range(9)]
    assert (stats.published, stats.spooled, stats.retried, stats.spool_pending) == (9, 6, 0, 0)


def test_a_failed_drain_batch_backs_off_on_the_clock_and_is_sent_again(tmp_path: Path) -> None:
    """A spool batch with a refused ack is not committed: it is re-sent after the drainer's 50 ms
    backoff (on the clock), and committed once every ack in it is good."""
    clock = VirtualClock()
    link = MemoryLink()
    link.connected = False
    pub, stats = _publisher(tmp_path, clock, link, buffer_limit=-1)  # no reconnect buffer at all
    sends: list[int] = []
    refused: set[str] = set()

    def answer(f: Hpub) -> bytes:
        sends.append(clock.monotonic_ns())
        key = f.headers["Nats-Msg-Id"]
        if key == "k1" and key not in refused:  # the first time only
            refused.add(key)
            return ERR
        return OK

    async def main() -> None:
        pub.start()
        pub.on_disconnected()
        await pub.publish(_msgs(3))  # disconnected, reconnect buffer full: all to the spool
        assert (stats.spooled, link.sent) == (3, [])
        await asyncio.sleep(1.0)  # the drainer waits for the link, no matter how long
        assert link.sent == []
        link.connected, link.answer = True, answer
        t0 = clock.monotonic_ns()
        pub.on_connected()
        await asyncio.wait_for(pub.wait_idle(), 5)
        sends[:] = [t - t0 for t in sends]
        await pub.close()

    run_virtual(main, clock)
    assert _keys(link.sent) == ["k0", "k1", "k2", "k0", "k1", "k2"]  # the whole batch again, in order
    assert sends[:3] == [0, 0, 0] and all(abs(t - 50_000_000) < 1_000 for t in sends[3:])
    assert (stats.retried, stats.published, stats.spool_pending) == (1, 3, 0)


def test_close_gives_up_after_close_timeout_and_keeps_what_is_unacknowledged(tmp_path: Path) -> None:
    """With a server that never acknowledges, close() returns after close_timeout_s of clock time and
    every message is in the spool on disk (none lost, none counted as written)."""
    clock = VirtualClock()
    link = MemoryLink()
    pub, stats = _publisher(tmp_path, clock, link, close_timeout_s=3.0)
    closed_after: list[int] = []

    async def main() -> None:
        pub.start()
        await pub.publish(_msgs(4))
        t0 = clock.monotonic_ns()
        await pub.close()
        closed_after.append(clock.monotonic_ns() - t0)

    run_virtual(main, clock)
    assert abs(closed_after[0] - 3 * S) < 1_000
    assert len(pub.spool) == 4 and [unpack(r)[1] for r in pub.spool.peek(10)] == ["k0", "k1", "k2", "k3"]
    assert (stats.written, stats.published, stats.dropped) == (0, 0, 0)


def test_a_full_spool_counts_drops(tmp_path: Path) -> None:
    """What does not fit in the spool is dropped and counted, never silently."""
    clock = VirtualClock()
    link = MemoryLink()
    link.connected = False
    pub, stats = _publisher(tmp_path, clock, link, buffer_limit=-1, spool_bytes=200)

    async def main() -> None:
        pub.start()
        pub.on_disconnected()
        await pub.publish(_msgs(50))
        await pub.close()

    run_virtual(main, clock)
    assert stats.dropped > 0 and stats.spooled + stats.dropped == 50
    assert stats.spool_pending == len(pub.spool) == stats.spooled
