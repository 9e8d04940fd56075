"""Frozen configuration of one benchmark run and of a matrix of runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from tickpath.busbench.wire import MIN_PAYLOAD, bench_url
from tickpath.errors import ConfigError
from tickpath.nats.url import Credentials

# What the original test ran: four sizes at three rates.
DEFAULT_SIZES = (256, 512, 1024, 4096)
DEFAULT_RATES = (1_000, 10_000, 100_000)
# Busy-polling is the default up to this rate. Measured on 2 cores: at 1k msg/s it cuts p50 by
# 30-50% (idle CPUs wake slowly); at 10k msg/s the CPUs never idle long, p50 was no better and
# p99 worse in 2 of 3 runs, as the spinning core is missed by the servers (docs/busbench.md).
BUSY_POLL_MAX_RATE = 5_000.0


@dataclass(frozen=True)
class TlsOptions:
    """Client-side TLS: CA to trust (None: system store), optional client certificate and key."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify_host: bool = True


@dataclass(frozen=True)
class BenchConfig:
    """One run: publish on ``pub_url``, receive on ``sub_url``, open-loop at ``rate`` msg/s.

    The measured messages are ``count`` (or ``rate * duration``); ``warmup`` seconds of messages
    at the same rate go first and are discarded from every figure except the loss count.
    """

    pub_url: str
    sub_url: str
    size: int = 256
    rate: float = 1_000.0
    duration: float = 5.0
    count: int | None = None
    warmup: float = 1.0
    drain_timeout: float = 2.0
    interest_timeout: float = 5.0
    subject: str | None = None
    tls: TlsOptions | None = None
    credentials: Credentials = field(default_factory=Credentials)
    max_batch: int = 256
    spin_us: float = 0.0  # busy-poll this long before each send and while awaiting its echo
    lead_us: float = 60.0  # wake this early before each send and poll until it is due
    # Wait mode: True polls the sockets without ever sleeping (one core at 100% for the run),
    # False sleeps in select between sends, None picks busy-polling up to BUSY_POLL_MAX_RATE.
    busy_poll: bool | None = None
    keep_samples: bool = False
    min_rate_ratio: float = 0.99
    # Fault injection that demonstrates coordinated omission: the publisher stalls for
    # ``pause_ms`` before sending message ``pause_at`` (counted from the first measured one).
    pause_at: int | None = None
    pause_ms: float = 0.0
    # Network namespace to open the client's connections in (``busbench local --netns``).
    netns: str | None = None

    def __post_init__(self) -> None:
        bench_url(self.pub_url)
        bench_url(self.sub_url)
        if self.size < MIN_PAYLOAD:
            raise ConfigError(
                f"payload size must be at least {MIN_PAYLOAD} bytes (sequence + intended send time), not {self.size}"
            )
        if self.size > 8 * 1024 * 1024:
            raise ConfigError(f"payload size {self.size} exceeds the 8 MiB the local servers accept")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"rate must be a positive number of messages per second, not {self.rate}")
        if self.count is None and not (self.duration > 0):
            raise ConfigError(f"duration must be positive, not {self.duration}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"count must be at least 1, not {self.count}")
        if self.warmup < 0 or self.drain_timeout <= 0 or self.interest_timeout <= 0:
            raise ConfigError("warm-up must be >= 0 and the drain/interest timeouts > 0 seconds")
        if self.measured + self.warmup_count > 50_000_000:
            raise ConfigError("more than 50 million messages in one run: shorten the duration or rate")
        if not 0 < self.min_rate_ratio <= 1:
            raise ConfigError("min_rate_ratio must be in (0, 1]")
        if not (0 <= self.spin_us <= 1e6 and 0 <= self.lead_us <= 1e6):
            raise ConfigError("spin_us and lead_us must be between 0 and 1,000,000 microseconds")
        if self.max_batch < 1:
            raise ConfigError("max_batch must be at least 1")

    @property
    def busy(self) -> bool:
        """Whether this run busy-polls (the resolved ``busy_poll``)."""
        return self.busy_poll if self.busy_poll is not None else self.rate <= BUSY_POLL_MAX_RATE

    @property
    def wait_mode(self) -> str:
        """How the client waits between sends, as stated in results: busy-poll or sleep."""
        return "busy-poll" if self.busy else "sleep"

    @property
    def measured(self) -> int:
        return self.count if self.count is not None else max(1, round(self.rate * self.duration))

    @property
    def warmup_count(self) -> int:
        return round(self.rate * self.warmup)

    @property
    def total(self) -> int:
        return self.measured + self.warmup_count

    @property
    def interval_ns(self) -> float:
        return 1e9 / self.rate


@dataclass(frozen=True)
class MatrixConfig:
    """A grid of runs over payload sizes and rates, sharing everything else with ``base``."""

    base: BenchConfig
    sizes: tuple[int, ...] = DEFAULT_SIZES
    rates: tuple[float, ...] = DEFAULT_RATES

    def __post_init__(self) -> None:
        if not self.sizes or not self.rates:
            raise ConfigError("a matrix needs at least one size and one rate")
        for s in self.sizes:
            if s < MIN_PAYLOAD:
                raise ConfigError(f"payload size must be at least {MIN_PAYLOAD} bytes, not {s}")
        for r in self.rates:
            if not r > 0:
                raise ConfigError(f"rates must be positive, not {r}")
