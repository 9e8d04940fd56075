"""Faults on demand: what a client must survive, injected so it sees exactly that fault.

``sim.faults`` is a :class:`Faults`. Every method takes effect immediately and returns how many
things it touched (connections, streams), so a test can assert the fault really happened:

==============================  ==============================================================
``drop_connections()``          cut TCP without a close frame (``clean=True``: close frame 1001)
``gap(venue, sym, events)``     the next ``events`` depth events of every depth stream of the
                                symbol are not sent (update ids skipped; ``pu``/``U`` show it)
``duplicate(venue, sym, n)``    the next ``n`` depth events are sent twice
``reorder(venue, sym, n)``      the next ``n`` depth events are swapped with their successor
``malformed(frames)``           the next frames of each matching connection are invalid JSON
``truncated(frames)``           the next frames are cut in the middle of their payload
``stall(venue, sym, seconds)``  the symbol's frames are held back, then released in order
``mute(venue, sym, kind, s)``   the symbol's ``trade``/``aggTrade``/``bookTicker`` stream sends
                                nothing for ``s`` seconds (a dead stream); the others go on
``freeze(venue, sym, seconds)`` the symbol's bookTicker frames keep coming but repeat the values
                                of now (bid/ask and sizes); update ids and times move on
``snapshot_delay(venue, s)``    REST depth answers wait ``s`` more seconds (0 turns it off)
``fail_snapshots(venue, n)``    the next ``n`` depth requests answer HTTP 500 (-1001)
``rate_limit(venue, seconds)``  every REST request answers 429 with ``Retry-After``
``refuse(venue, zone, s)``      new WebSocket upgrades answer HTTP 503 for ``s`` seconds
``clock_jump(venue, s)``        the venue's event times (``E``/``T``) step by ``s`` seconds (+/-),
                                for good (an exchange clock stepped by NTP); REST serverTime stays
==============================  ==============================================================

Counted faults (``gap``, ``duplicate``, ``reorder``, ``malformed``, ``truncated``,
``fail_snapshots``) add to what is already pending. With ``accumulate=False`` they only make sure
that many are pending (``max(pending, n)``): :class:`FaultPlan` (built by ``tickpath sim`` fault
flags) repeats faults on a schedule that way, so an idle period never piles up a burst of faults
for the next client (20 periods without a depth request still mean one HTTP 500, not twenty).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickpath.errors import ConfigError
from tickpath.logs import log_event

if TYPE_CHECKING:
    from tickpath.sim.hub import Hub
    from tickpath.sim.ws import WsConnection

log = logging.getLogger(__name__)
MUTABLE_KINDS = ("trade", "aggTrade", "bookTicker")


@dataclass
class FaultState:
    """Faults that the REST and WebSocket handlers consult (shared by all listeners)."""

    snapshot_delay_s: dict[str, float] = field(default_factory=dict)
    snapshot_failures: dict[str, int] = field(default_factory=dict)
    rate_limited_until: dict[str, float] = field(default_factory=dict)
    refused_until: dict[tuple[str, str], float] = field(default_factory=dict)

    def refuse_connections(self, venue: str, zone: str) -> bool:
        until = max(self.refused_until.get((venue, zone), 0.0), self.refused_until.get((venue, "*"), 0.0))
        return until > asyncio.get_running_loop().time()

    def take_snapshot_failure(self, venue: str) -> bool:
        n = self.snapshot_failures.get(venue, 0)
        if n > 0:
            self.snapshot_failures[venue] = n - 1
            return True
        return False


@dataclass(frozen=True)
class FaultPlan:
    """Faults repeated on a schedule (seconds between occurrences; None = never)."""

    drop_every_s: float | None = None
    gap_every_s: float | None = None
    duplicate_every_s: float | None = None
    reorder_every_s: float | None = None
    malformed_every_s: float | None = None
    truncated_every_s: float | None = None
    stall_every_s: float | None = None
    stall_s: float = 2.0
    snapshot_delay_s: float = 0.0
    snapshot_fail_every_s: float | None = None
    rate_limit_every_s: float | None = None
    rate_limit_s: float = 5.0

    def __post_init__(self) -> None:
        for name, val in vars(self).items():
            if val is None:
                continue
            if not math.isfinite(val):
                raise ConfigError(f"fault setting {name} must be a finite number, got {val}")
            if val < 0:
                raise ConfigError(f"fault setting {name} must not be negative")
            if name.endswith("every_s") and val == 0:
                raise ConfigError(f"fault period {name} must be positive")
        for name in ("stall_s", "rate_limit_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"fault setting {name} must be positive")
        # a fault lasting as long as its period never ends: a dead feed, and stalled frames pile up
        for length, period in (("stall_s", "stall_every_s"), ("rate_limit_s", "rate_limit_every_s")):
            every = getattr(self, period)
            if every is not None and getattr(self, length) >= every:
                raise ConfigError(
                    f"fault setting {length} ({getattr(self, length):g} s) must be shorter than "
                    f"{period} ({every:g} s), or the fault never ends"
                )

    @property
    def empty(self) -> bool:
        return all(getattr(self, n) is None for n in vars(self) if n.endswith("every_s")) and self.snapshot_delay_s == 0


class Faults:
    """The fault-injection API of a running simulator."""

    def __init__(
        self, hubs: dict[str, Hub], connections: dict[tuple[str, str], set[WsConnection]], state: FaultState
    ) -> None:
        self._hubs = hubs
        self._conns = connections
        self.state = state
        self.injected: dict[str, int] = {}  # fault commands applied, by kind (for /metrics)

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def _hub(self, venue: str, symbol: str) -> Hub:
        hub = self._hubs.get(venue)
        if hub is None:
            raise ConfigError(f"venue {venue!r} is not simulated here (replayed or not served)")
        if symbol not in hub.markets:
            raise ConfigError(f"symbol {symbol!r} is not simulated on {venue}")
        return hub

    def _matching(self, venue: str | None, zone: str | None) -> list[WsConnection]:
        return [
            c for (v, z), conns in self._conns.items() if venue in (None, v) and zone in (None, z) for c in list(conns)
        ]

    def drop_connections(self, venue: str | None = None, zone: str | None = None, *, clean: bool = False) -> int:
        conns = self._matching(venue, zone)
        self._count("drop")
        for c in conns:
            if clean:
                c.close(1001, "Server going away")
            else:
                c.abort()
        log_event(log, logging.INFO, "sim_fault_drop", venue=venue, zone=zone, connections=len(conns))
        return len(conns)

    def _depth_fault(self, venue: str, symbol: str, slot: int, events: int, accumulate: bool) -> int:
        if events < 1:
            raise ConfigError("the number of events must be at least 1")
        hub = self._hub(venue, symbol)
        st = hub.faults[symbol]
        names = hub.depth_names(symbol)
        self._count(("gap", "duplicate", "reorder")[slot])
        for name in names:
            counters = st.per_stream.setdefault(name, [0, 0, 0])
            counters[slot] = counters[slot] + events if accumulate else max(counters[slot], events)
        hub.refresh_fault_flag()
        log_event(
            log,
            logging.INFO,
            "sim_fault_depth",
            venue=venue,
            symbol=symbol,
            kind=("gap", "duplicate", "reorder")[slot],
            events=events,
        )
        return len(names)

    def gap(self, venue: str, symbol: str, events: int = 1, *, accumulate: bool = True) -> int:
        return self._depth_fault(venue, symbol, 0, events, accumulate)

    def duplicate(self, venue: str, symbol: str, events: int = 1, *, accumulate: bool = True) -> int:
        return self._depth_fault(venue, symbol, 1, events, accumulate)

    def reorder(self, venue: str, symbol: str, events: int = 1, *, accumulate: bool = True) -> int:
        return self._depth_fault(venue, symbol, 2, events, accumulate)

    def _corrupt(self, kind: str, venue: str | None, zone: str | None, frames: int, accumulate: bool) -> int:
        conns = self._matching(venue, zone)
        self._count(kind)
        for c in conns:
            # a connection that receives nothing (no subscription yet) must not queue a burst
            missing = frames if accumulate else frames - c.corrupt.count(kind)
            c.corrupt.extend([kind] * max(0, missing))
        return len(conns)

    def malformed(
        self, venue: str | None = None, zone: str | None = None, frames: int = 1, *, accumulate: bool = True
    ) -> int:
        return self._corrupt("malformed", venue, zone, frames, accumulate)

    def truncated(
        self, venue: str | None = None, zone: str | None = None, frames: int = 1, *, accumulate: bool = True
    ) -> int:
        return self._corrupt("truncated", venue, zone, frames, accumulate)

    def stall(self, venue: str, symbol: str, seconds: float) -> int:
        _check_seconds("a stall", seconds)
        hub = self._hub(venue, symbol)
        self._count("stall")
        st = hub.faults[symbol]
        st.stall_until = max(st.stall_until, asyncio.get_running_loop().time() + seconds)
        hub.refresh_fault_flag()
        return 1

    def mute(self, venue: str, symbol: str, kind: str, seconds: float) -> int:
        """Drop every frame of the symbol's ``kind`` stream for ``seconds``: dead while its market moves."""
        _check_seconds("a mute", seconds)
        if kind not in MUTABLE_KINDS:
            raise ConfigError(f"only {', '.join(MUTABLE_KINDS)} streams can be muted, not {kind!r}")
        hub = self._hub(venue, symbol)
        self._count("mute")
        name = f"{symbol.lower()}@{kind}"
        st = hub.faults[symbol]
        st.muted_until[name] = max(st.muted_until.get(name, 0.0), asyncio.get_running_loop().time() + seconds)
        hub.refresh_fault_flag()
        return 1

    def freeze(self, venue: str, symbol: str, seconds: float) -> int:
        """The symbol's bookTicker repeats its current values for ``seconds`` while frames keep coming."""
        _check_seconds("a freeze", seconds)
        hub = self._hub(venue, symbol)
        self._count("freeze")
        st = hub.faults[symbol]
        st.frozen_until = max(st.frozen_until, asyncio.get_running_loop().time() + seconds)
        hub.refresh_fault_flag()
        return 1

    def clock_jump(self, venue: str, seconds: float) -> None:
        """Step the venue's event clock by ``seconds`` (negative: back in time); returns at once."""
        if not math.isfinite(seconds) or seconds == 0:
            raise ConfigError(f"a clock jump is a finite, non-zero number of seconds, got {seconds}")
        hub = self._hubs.get(venue)
        if hub is None:
            raise ConfigError(f"venue {venue!r} is not simulated here (replayed or not served)")
        self._count("clock_jump")
        hub.offset_ns += int(seconds * 1e9)
        log_event(log, logging.INFO, "sim_fault_clock_jump", venue=venue, seconds=seconds)

    def snapshot_delay(self, venue: str, seconds: float) -> None:
        if not math.isfinite(seconds):
            raise ConfigError(f"a snapshot delay is a finite number of seconds, got {seconds}")
        if seconds > 0:
            self._count("snapshot_delay")
        self.state.snapshot_delay_s[venue] = max(0.0, seconds)

    def fail_snapshots(self, venue: str, count: int = 1, *, accumulate: bool = True) -> None:
        pending = self.state.snapshot_failures.get(venue, 0)
        self._count("snapshot_fail")
        self.state.snapshot_failures[venue] = pending + count if accumulate else max(pending, count)

    def rate_limit(self, venue: str, seconds: float) -> None:
        _check_seconds("a rate limit", seconds)
        self._count("rate_limit")
        # a window ends at the later of the two ends: a new one never shortens a longer one
        until = asyncio.get_running_loop().time() + seconds
        self.state.rate_limited_until[venue] = max(self.state.rate_limited_until.get(venue, 0.0), until)

    def refuse(self, venue: str, zone: str = "*", seconds: float = 1.0) -> None:
        _check_seconds("a refusal", seconds)
        self._count("refuse")
        self.state.refused_until[(venue, zone)] = asyncio.get_running_loop().time() + seconds

    def clear(self) -> None:
        """Cancel every pending fault (held stalled frames are released)."""
        for hub in self._hubs.values():
            for st in hub.faults.values():
                st.per_stream.clear()
                st.stall_until = 0.0
                st.muted_until.clear()
                st.frozen_until, st.frozen_top = 0.0, None
                for name, raw in st.reorder_slot.items():
                    hub._deliver(name, raw)
                st.reorder_slot.clear()
            hub.release_stalls()
            hub.refresh_fault_flag()
            hub.flush()
        for c in self._matching(None, None):
            c.corrupt.clear()
        self.state.snapshot_delay_s.clear()
        self.state.snapshot_failures.clear()
        self.state.rate_limited_until.clear()
        self.state.refused_until.clear()


def _check_seconds(what: str, seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{what} lasts a positive, finite number of seconds, got {seconds}")


async def run_plan(plan: FaultPlan, faults: Faults, targets: list[tuple[str, str]]) -> None:
    """Apply ``plan`` forever, round-robin over ``targets`` (venue, symbol) for per-symbol faults."""
    loop = asyncio.get_running_loop()
    venues = sorted({v for v, _ in targets})
    for v in venues:
        if plan.snapshot_delay_s:
            faults.snapshot_delay(v, plan.snapshot_delay_s)
    periods = {k: getattr(plan, k) for k in vars(plan) if k.endswith("every_s") and getattr(plan, k)}
    if not periods:
        return
    due = {k: loop.time() + p for k, p in periods.items()}
    turn = 0
    while True:
        key = min(due, key=due.__getitem__)
        await asyncio.sleep(max(0.0, due[key] - loop.time()))
        due[key] += periods[key]
        venue, symbol = targets[turn % len(targets)] if targets else ("", "")
        turn += 1
        # accumulate=False: at most one fault of each kind waits for traffic, however long it is idle
        if key == "drop_every_s":
            faults.drop_connections()
        elif key == "gap_every_s" and targets:
            faults.gap(venue, symbol, accumulate=False)
        elif key == "duplicate_every_s" and targets:
            faults.duplicate(venue, symbol, accumulate=False)
        elif key == "reorder_every_s" and targets:
            faults.reorder(venue, symbol, accumulate=False)
        elif key == "malformed_every_s":
            faults.malformed(accumulate=False)
        elif key == "truncated_every_s":
            faults.truncated(accumulate=False)
        elif key == "stall_every_s" and targets:
            faults.stall(venue, symbol, plan.stall_s)
        elif key == "snapshot_fail_every_s":
            for v in venues:
                faults.fail_snapshots(v, accumulate=False)
        elif key == "rate_limit_every_s":
            for v in venues:
                faults.rate_limit(v, plan.rate_limit_s)
