"""Seeded chaos: every simulator fault at random, and a checker of client books against truth.

:class:`ChaosDriver` injects one fault at a time through :class:`tickpath.sim.faults.Faults`, at
exponentially distributed intervals of the loop's clock (``mean_interval_s``). The first round
applies each kind once in a seeded shuffled order, so a short run still sees every kind; after
that kinds are drawn uniformly. Same seed, same sequence of (kind, target, size) draws. A clock
jump steps the venue's event times (``E``/``T``) 1-5 s either way and steps them back later.
``counts`` holds injections by kind (``Simulator.stats()["chaos"]``, ``tickpath sim --chaos``).

:class:`TruthChecker` compares every book a client holds with the simulator's own book at the
client's update id. A book is inside its **resync window** from the moment the client detects a
break (its book state stops being ``synced``: a gap, a reorder, a bad snapshot, a cut connection)
until it is ``synced`` again (snapshot applied and bridged). Books inside the window are not
compared (a client rebuilding has no book to compare). A book that is synced and unequal to truth
at its own update id is a **violation**. A fault the client has not yet detected leaves its book
at an older update id, which truth still knows, so it is compared too: a missed gap shows up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tickpath.errors import ConfigError
from tickpath.logs import log_event

if TYPE_CHECKING:
    from tickpath.sim.faults import Faults

log = logging.getLogger(__name__)

KINDS = (
    "drop",
    "gap",
    "duplicate",
    "reorder",
    "malformed",
    "truncated",
    "stall",
    "mute",
    "freeze",
    "snapshot_delay",
    "fail_snapshots",
    "rate_limit",
    "refuse",
    "clock_jump",
)


@dataclass(frozen=True)
class ChaosConfig:
    """A seed, the mean seconds between faults, and how long timed faults last at most."""

    seed: int
    mean_interval_s: float = 1.0
    max_fault_s: float = 1.0
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        for name in ("mean_interval_s", "max_fault_s"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val > 0):
                raise ConfigError(f"chaos {name} must be a positive finite number, got {val}")
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ConfigError(f"chaos kinds must be some of {', '.join(KINDS)}, got {', '.join(unknown) or 'none'}")


def parse_chaos(text: str) -> ChaosConfig:
    """``SEED[:RATE]`` (RATE = faults per second, default 1) as a :class:`ChaosConfig`."""
    seed_s, _, rate_s = text.partition(":")
    try:
        seed = int(seed_s)
        rate = float(rate_s) if rate_s else 1.0
    except ValueError:
        raise ConfigError(f"--chaos takes SEED[:RATE] (an integer and faults per second), got {text!r}") from None
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"--chaos RATE must be a positive number of faults per second, got {rate_s}")
    return ChaosConfig(seed=seed, mean_interval_s=1.0 / rate)


@dataclass
class ChaosDriver:
    """Injects random faults into ``faults`` over ``targets`` (venue, symbol) forever."""

    faults: Faults
    targets: list[tuple[str, str]]
    config: ChaosConfig
    counts: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)
    _first_round: list[str] = field(init=False)
    stopped: bool = False

    def __post_init__(self) -> None:
        if not self.targets:
            raise ConfigError("chaos needs at least one simulated symbol")
        self._rng = random.Random(self.config.seed)
        self._first_round = list(self.config.kinds)
        self._rng.shuffle(self._first_round)
        self._first_round.reverse()  # popped from the end

    def next_kind(self) -> str:
        return self._first_round.pop() if self._first_round else self._rng.choice(self.config.kinds)

    def inject(self, kind: str | None = None) -> str:
        """Apply one fault (``kind`` or the next drawn); returns its kind."""
        kind = kind or self.next_kind()
        rng, cfg = self._rng, self.config
        venue, symbol = rng.choice(self.targets)
        seconds = rng.uniform(0.1, 1.0) * cfg.max_fault_s
        events = rng.randint(1, 3)
        actions: dict[str, Callable[[], Any]] = {
            "drop": lambda: self.faults.drop_connections(venue, clean=rng.random() < 0.5),
            "gap": lambda: self.faults.gap(venue, symbol, events, accumulate=False),
            "duplicate": lambda: self.faults.duplicate(venue, symbol, events, accumulate=False),
            "reorder": lambda: self.faults.reorder(venue, symbol, 1, accumulate=False),
            "malformed": lambda: self.faults.malformed(venue, frames=events, accumulate=False),
            "truncated": lambda: self.faults.truncated(venue, frames=events, accumulate=False),
            "stall": lambda: self.faults.stall(venue, symbol, seconds),
            "mute": lambda: self.faults.mute(venue, symbol, rng.choice(("trade", "aggTrade", "bookTicker")), seconds),
            "freeze": lambda: self.faults.freeze(venue, symbol, seconds),
            "snapshot_delay": lambda: self._timed_snapshot_delay(venue, seconds),
            "fail_snapshots": lambda: self.faults.fail_snapshots(venue, 1, accumulate=False),
            "rate_limit": lambda: self.faults.rate_limit(venue, seconds),
            "refuse": lambda: self.faults.refuse(venue, "*", seconds),
            "clock_jump": lambda: self._clock_jump(venue, rng.choice((-1, 1)) * rng.uniform(1.0, 5.0), seconds),
        }
        actions[kind]()
        self.counts[kind] = self.counts.get(kind, 0) + 1
        log_event(log, logging.DEBUG, "sim_chaos", kind=kind, venue=venue, symbol=symbol)
        return kind

    def _timed_snapshot_delay(self, venue: str, seconds: float) -> None:
        """Depth answers wait ``seconds`` more, for the next ``2 * seconds`` (then back to none)."""
        self.faults.snapshot_delay(venue, seconds)
        asyncio.get_running_loop().call_later(2 * seconds, self.faults.snapshot_delay, venue, 0.0)

    def _clock_jump(self, venue: str, jump_s: float, back_after_s: float) -> None:
        """Event times step by ``jump_s`` and step back ``back_after_s`` later (so jumps never add up)."""
        self.faults.clock_jump(venue, jump_s)
        asyncio.get_running_loop().call_later(back_after_s, self.faults.clock_jump, venue, -jump_s)

    async def run(self) -> None:
        while not self.stopped:
            await asyncio.sleep(self._rng.expovariate(1.0 / self.config.mean_interval_s))
            if not self.stopped:
                self.inject()

    def stop(self) -> None:
        """No new faults (pending ones still play out; ``Faults.clear()`` cancels them)."""
        self.stopped = True

    @property
    def covered(self) -> bool:
        """Every configured kind injected at least once."""
        return all(self.counts.get(k, 0) > 0 for k in self.config.kinds)


class BookSource(Protocol):
    """What the checker reads of a client's books (a feed's frame processor, pure or native)."""

    def book_symbols(self) -> list[str]: ...
    def book_state(self, symbol: str) -> Any: ...
    def book_top(self, symbol: str, n: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]: ...


class Truth(Protocol):
    def ground_truth(self, venue: str, symbol: str, update_id: int | None = None) -> Any: ...


@dataclass
class TruthChecker:
    """Counts, per checkpoint, books equal to truth, books inside a resync window, and violations."""

    truth: Truth
    venue: str
    checks: int = 0
    equal: int = 0
    resyncing: int = 0
    unverifiable: int = 0  # older than the simulator's kept history
    violations: list[tuple[str, int]] = field(default_factory=list)  # (symbol, update id)

    def check(self, books: BookSource) -> int:
        """Compare every book once; returns the violations of this checkpoint."""
        found = 0
        for sym in books.book_symbols():
            st = books.book_state(sym)
            self.checks += 1
            if st is None or not st.synced or st.last_update_id is None:
                self.resyncing += 1
                continue
            uid = int(st.last_update_id)
            try:
                want = self.truth.ground_truth(self.venue, sym, uid)
            except ConfigError:
                self.unverifiable += 1
                continue
            if books.book_top(sym) == (want.bids, want.asks):
                self.equal += 1
            else:
                found += 1
                self.violations.append((sym, uid))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "equal": self.equal,
            "resyncing": self.resyncing,
            "unverifiable": self.unverifiable,
            "violations": len(self.violations),
            "first_violations": self.violations[:5],
        }
