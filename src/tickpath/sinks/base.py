"""The sink contract: everything the feed's pipeline asks of a sink, and nothing else.

A sink receives batches of events in order. ``write`` may await: that is how a slow sink applies
back-pressure to the feed (the feed's bounded queues then fill, and the feed slows reading rather
than growing memory). ``write_session`` takes the run's ``feed_sessions`` row (sent at start and at
stop; a sink without tables ignores it). ``flush`` makes everything written so far durable;
``close`` flushes and releases resources. ``buffered`` says how many accepted events the sink still
holds undelivered, so that when a ``write`` fails the pipeline counts only the rest as dropped.

Every sink counts what it accepted, wrote and (only when it must, loudly) dropped in a typed
:class:`SinkStats`; a sink with more to say subclasses it with named fields (a NATS spool, Pub/Sub
futures outstanding). Fields that go down as well as up carry :data:`GAUGE` in their metadata, so
``/metrics`` exports them as gauges rather than counters.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from tickpath.events import Event, SessionInfo

if TYPE_CHECKING:
    import pyarrow as pa

# Field metadata of a stats number that is a level (it goes down too), not a count.
GAUGE: Mapping[str, Any] = {"gauge": True}


@dataclass
class SinkStats:
    """Counters every sink keeps. Subclasses add named fields; :meth:`as_dict` lists them all."""

    accepted: int = 0
    written: int = 0
    dropped: int = 0
    errors: int = 0

    @property
    def pending(self) -> int:
        """Accepted, not delivered, and kept for later (e.g. in an on-disk spool); 0 if never kept."""
        return 0

    def as_dict(self) -> dict[str, int]:
        """Every number by field name, base counters first (the ``--json`` summary's form)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def gauges(cls) -> frozenset[str]:
        """Names of the fields that are levels (:data:`GAUGE`), not counts."""
        return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("gauge"))

    def copy(self) -> Self:
        """A copy that later counting does not change (what a snapshot holds)."""
        return dataclasses.replace(self)


@dataclass(frozen=True)
class TableBatch:
    """Events already in columns: one Arrow table per storage table (``tickpath.tables`` layout),
    as the native core makes them without a Python object per event; ``rows`` in all."""

    tables: Mapping[str, pa.Table]
    rows: int


class Sink(ABC):
    """Where normalized events go. Implementations: DuckDB, Parquet, JSON lines, NATS, Pub/Sub."""

    name: str = "sink"  # the class default; an instance may carry its own (parquet:...?label=)
    stats: SinkStats

    def __init__(self) -> None:
        self.stats = SinkStats()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections, create tables or streams. Raise SinkError when impossible."""

    @abstractmethod
    async def write(self, batch: Sequence[Event]) -> None:
        """Accept a batch, in order (count it in ``stats.accepted``). May await to apply back-pressure."""

    # A sink that flushes on a timer of its own (Parquet's ``flush_s``) sets this: the pipeline then
    # leaves the timing to it rather than flushing it every second of traffic.
    flushes_itself: bool = False

    # A sink that stores Arrow tables as they are sets this and implements write_tables; when every
    # sink of a feed does, the feed hands them TableBatches instead of events (the columnar path).
    accepts_tables: ClassVar[bool] = False

    async def write_tables(self, batch: TableBatch) -> None:
        """Accept a batch of events in columns (count ``batch.rows`` in ``stats.accepted``)."""
        raise NotImplementedError(f"the {self.name} sink takes events, not tables")

    @abstractmethod
    async def write_session(self, session: SessionInfo) -> None:
        """Keep or publish the run's ``feed_sessions`` row; outside the event counters."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Accepted events held now and not yet written (0 for a sink that writes as it accepts)."""

    @abstractmethod
    async def flush(self) -> None:
        """Make everything accepted so far durable."""

    async def close(self) -> None:
        """Flush and release resources. Called exactly once, also on shutdown by signal."""
        await self.flush()

    def undelivered(self) -> str | None:
        """After :meth:`close`: what this sink accepted but did not deliver and still keeps (not
        dropped: e.g. parked in an on-disk spool), and where, for the exit message; None if nothing."""
        return None
