"""Zone latency: sample one-way delays, and deliver frames in order after their delay.

A frame's delivery time is ``max(previous delivery, now + delay)``: delays never reorder a
connection's frames (TCP would not either), and a spike holds back the frames behind it, as a
congested path does. One timer per connection, never one task per frame.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable

from tickpath.sim.config import LatencyProfile


class DelaySampler:
    """Draws one-way delays (seconds) from a :class:`LatencyProfile` with its own seeded generator."""

    def __init__(self, profile: LatencyProfile, seed: int | str) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.zero = profile.is_zero

    def sample_s(self) -> float:
        p = self.profile
        if self.zero:
            return 0.0
        d = p.delay_ms
        if p.jitter_ms > 0:
            if p.jitter_dist == "exponential":
                d += self.rng.expovariate(1.0 / p.jitter_ms)
            elif p.jitter_dist == "uniform":
                d += self.rng.uniform(0.0, 2.0 * p.jitter_ms)
            else:
                d = max(0.0, d + self.rng.gauss(0.0, p.jitter_ms))
        if p.spike_prob > 0 and self.rng.random() < p.spike_prob:
            d += p.spike_ms
        return d / 1000.0


class OrderedDelivery:
    """Per-connection queue that hands byte chunks to ``write`` at their delivery times, in order.

    With a zero profile, chunks are written at the next :meth:`flush` (the publisher flushes once
    per batch, so one ``transport.write`` carries many frames).
    """

    def __init__(self, sampler: DelaySampler, write: Callable[[bytes], None]) -> None:
        self._sampler = sampler
        self._write = write
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._queue: deque[tuple[float, bytes | Callable[[], None]]] = deque()
        self._last_due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def push(self, chunk: bytes) -> None:
        if self.closed:
            return
        if self._sampler.zero and not self._queue:
            self._pending.append(chunk)
            return
        self._enqueue(chunk)

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once everything pushed before it has been delivered (e.g. a close)."""
        self.flush()
        if not self._queue:
            fn()
            return
        self._queue.append((self._last_due, fn))

    def _enqueue(self, item: bytes) -> None:
        now = self._loop.time()
        due = max(self._last_due, now + self._sampler.sample_s())
        self._last_due = due
        self._queue.append((due, item))
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._fire)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            if not self.closed:
                self._write(data)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        out: list[bytes] = []
        q = self._queue
        while q and q[0][0] <= now + 0.0002:
            item = q.popleft()[1]
            if isinstance(item, bytes):
                out.append(item)
            else:
                if out and not self.closed:
                    self._write(b"".join(out))
                out = []
                item()
        if out and not self.closed:
            self._write(b"".join(out))
        if q and not self.closed:
            self._timer = self._loop.call_at(q[0][0], self._fire)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._pending.clear()


async def sleep_delay(sampler: DelaySampler) -> None:
    """Wait one sampled one-way delay (REST requests and answers)."""
    d = sampler.sample_s()
    if d > 0:
        await asyncio.sleep(d)
