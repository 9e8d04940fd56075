"""The frozen configuration of one demo run: the simulated world, and how long each step takes.

The defaults are planned so the whole run fits in three minutes on a 2-core machine (sweep ~30 s,
feed 30 s, busbench ~10 s, report a few seconds); :meth:`DemoConfig.quick` shrinks every step to a
second or two for tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tickpath.errors import ConfigError
from tickpath.sim import LatencyProfile, ZoneConfig

# Three zones far enough apart that scheduling noise on a loaded machine cannot flip the ranking:
# a ws ping/pong crosses the zone delay twice, so the round trips are ~4, ~10 and ~28 ms (tokyo at
# 9 ms, ~18 ms round trips, was once ranked ahead of virginia in CI with every zone probed at once).
DEFAULT_ZONES: tuple[ZoneConfig, ...] = (
    ZoneConfig("tokyo", LatencyProfile(delay_ms=14.0, jitter_ms=0.6)),
    ZoneConfig("frankfurt", LatencyProfile(delay_ms=2.0, jitter_ms=0.3, spike_prob=0.002, spike_ms=25.0)),
    ZoneConfig("virginia", LatencyProfile(delay_ms=5.0, jitter_ms=0.4)),
)
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
DEFAULT_RESULTS_ROOT = Path("results")


def default_results_dir(root: Path = DEFAULT_RESULTS_ROOT) -> Path:
    """``results/demo-<UTC timestamp>``: one directory per run, never reused."""
    return root / f"demo-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


@dataclass(frozen=True)
class DemoConfig:
    """Everything ``tickpath demo`` does, fixed before it starts."""

    results_dir: Path = field(default_factory=default_results_dir)
    zones: tuple[ZoneConfig, ...] = DEFAULT_ZONES
    clock_offset_ms: float = 37.0  # exchange clock minus true clock, as the simulator serves it
    venues: tuple[str, ...] = ("futures", "spot")
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    sim_rate: float = 40.0  # book updates per second per symbol and venue
    seed: int = 7
    sweep_probe_s: float = 4.0  # seconds per probe method on every candidate
    sweep_methods: tuple[str, ...] = ("tcp", "ws", "stream", "path")
    sweep_metric: str = "ws.p50"
    feed_s: float = 30.0
    nats: bool = True  # use nats-server (JetStream + ingest, busbench) when installed
    bus_s: float = 5.0
    bus_warmup_s: float = 1.0
    bus_rate: float = 1_000.0
    bus_size: int = 256
    terraform: str | None = None  # path of the terraform binary (None: PATH)
    nats_server: str | None = None  # path of nats-server (None: PATH, /usr/sbin)

    def __post_init__(self) -> None:
        if len(self.zones) < 2:
            raise ConfigError("the demo sweeps at least two zones")
        # Named as the user set them: --feed-seconds is the only one with an option.
        for name, label in (
            ("sweep_probe_s", "sweep probe seconds"),
            ("feed_s", "--feed-seconds"),
            ("bus_s", "busbench seconds"),
            ("bus_rate", "busbench rate"),
            ("sim_rate", "simulator rate"),
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"demo {label} must be positive, got {getattr(self, name):g}")
        if self.bus_warmup_s < 0:
            raise ConfigError("demo bus warm-up must not be negative")
        if "ws" not in self.sweep_methods:
            raise ConfigError("the demo ranks zones on ws: keep ws in the sweep methods")
        if "futures" not in self.venues:
            raise ConfigError("the demo sweeps the futures venue; keep futures in the venues")

    @classmethod
    def quick(cls, **overrides: object) -> DemoConfig:
        """A run of a few seconds per step, for tests and a first look."""
        # tcp and ws are enough to rank; stream and path would add seconds to every agent.
        base: dict[str, object] = {
            "sweep_probe_s": 1.0,
            "sweep_methods": ("tcp", "ws"),
            "feed_s": 4.0,
            "bus_s": 1.0,
            "bus_warmup_s": 0.2,
            "symbols": DEFAULT_SYMBOLS[:2],
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def with_results(self, path: Path) -> DemoConfig:
        return replace(self, results_dir=Path(path))

    @property
    def fastest_zone(self) -> str:
        """The zone that is truly fastest: lowest typical one-way delay (delay plus mean jitter)."""
        return min(self.zones, key=lambda z: z.latency.delay_ms + z.latency.jitter_ms).name

    @property
    def expected_s(self) -> dict[str, float]:
        """Rough wall time per step on a loaded 2-core machine, for progress bars."""
        return {
            "sim": 1.0,
            # each method for the probe duration (path ~2 s), plus Terraform and agent start-up
            "sweep": len(self.sweep_methods) * self.sweep_probe_s + 15.0,
            "feed": self.feed_s + 3.0,
            "dq": 3.0,
            "busbench": self.bus_s + self.bus_warmup_s + 4.0,
            "report": 8.0,
        }
