"""The sink interface.

A sink receives batches of events in order. ``write`` may await: that is how a slow sink applies
back-pressure to the feed (the feed's bounded queues then fill, and the feed slows reading rather
than growing memory). ``flush`` makes everything written so far durable; ``close`` flushes and
releases resources. Every sink counts what it accepted, wrote and (only when it must, loudly)
dropped, so the exit summary and ``/metrics`` can say it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from tickpath.events import Event


@dataclass
class SinkStats:
    """Counters every sink keeps; sinks add their own in ``extra`` (e.g. retried, spooled)."""

    accepted: int = 0
    written: int = 0
    dropped: int = 0
    errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "written": self.written,
            "dropped": self.dropped,
            "errors": self.errors,
            **self.extra,
        }


class Sink(ABC):
    """Where normalized events go. Implementations: DuckDB, Parquet, JSON lines, NATS, Pub/Sub."""

    name: str = "sink"

    def __init__(self) -> None:
        self.stats = SinkStats()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections, create tables or streams. Raise SinkError when impossible."""

    @abstractmethod
    async def write(self, batch: Sequence[Event]) -> None:
        """Accept a batch, in order. May await to apply back-pressure."""

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything accepted so far durable."""

    async def close(self) -> None:
        """Flush and release resources. Called exactly once, also on shutdown by signal."""
        await self.flush()

    def undelivered(self) -> str | None:
        """After :meth:`close`: what this sink accepted but did not deliver and still keeps (not
        dropped: e.g. parked in an on-disk spool), and where, for the exit message; None if nothing."""
        return None
