"""The frozen configuration of one feed run (one venue), validated when built.

The CLI builds it from arguments; tests and other programs build it directly. Every bad value is a
:class:`ConfigError` naming the value and what would be accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.events import CHANNELS, Channel, Venue
from tickpath.feed.memtrim import DEFAULT_TRIM_INTERVAL_S
from tickpath.feed.sharding import ShardSpec
from tickpath.feed.universe import Selection
from tickpath.venues.binance import channels as channel_names
from tickpath.venues.binance.endpoints import VENUES, endpoints, validate_depth_limit
from tickpath.venues.binance.streams import DEPTH_SPEEDS_MS, TRADE_STREAMS, TradeStream, channel_streams

DEFAULT_SINK = "duckdb:./data/ticks.duckdb"
# The snapshot depth Binance's sync guides use per venue (spot-rule venues 5000, futures 1000).
DEFAULT_SNAPSHOT_LIMIT: dict[str, int] = {v: endpoints(v).snapshot_limit for v in VENUES}
_SYMBOL_RE = re.compile(r"^[A-Z0-9_]{2,30}$")  # "_": COIN-M's BTCUSD_PERP, BTCUSD_250627


@dataclass(frozen=True)
class FeedConfig:
    """Everything ``tickpath feed`` needs for one venue."""

    venue: Venue
    symbols: tuple[str, ...]
    channels: tuple[str, ...] = CHANNELS  # l2/trades/ticker and venues/binance/channels.py's names
    depth: int | None = None  # top-N window; None = full book
    sinks: tuple[str, ...] = (DEFAULT_SINK,)
    base_url: str | None = None  # WebSocket base (default: the venue's production host)
    rest_url: str | None = None  # REST base
    ca_file: Path | None = None  # trust this CA bundle instead of the system's (a --tls simulator, a proxy)
    duration_s: float | None = None  # None = until stopped
    record_dir: Path | None = None
    metrics_port: int | None = None  # 0 = any free port
    metrics_host: str = "127.0.0.1"
    snapshot_limit: int | None = None  # None = DEFAULT_SNAPSHOT_LIMIT[venue]
    depth_speed_ms: int = 100
    trade_stream: TradeStream = "aggTrade"  # or "trade"
    streams_per_connection: int | None = None  # None = the venue's documented maximum
    subscribe: bool = False  # SUBSCRIBE messages instead of streams in the URL
    stale_after_s: float = 30.0
    rollover_after_s: float | None = None  # None = 95 % of the venue's 24 h connection lifetime
    rollover_overlap_s: float = 2.0
    reconnect_base_s: float = 0.1
    reconnect_max_s: float = 30.0
    batch_size: int = 2000
    flush_interval_s: float = 0.1
    queue_batches: int = 32
    clock_samples: int = 10
    check_symbols: bool = True  # one exchangeInfo request at start: unlisted symbols are an error
    # --symbols all / quote=USDT ...: resolved from exchangeInfo at start (``symbols`` may then be
    # empty), and followed every listing_poll_s while running when dynamic (tickpath.feed.universe)
    selection: Selection | None = None
    listing_poll_s: float = 60.0
    # glibc malloc_trim every trim_memory_s (0 = never): freed heap back to the system (feed/memtrim.py)
    trim_memory_s: float = DEFAULT_TRIM_INTERVAL_S
    status: bool = False  # live terminal status line
    # --shard i/N and --workers: this process's share (tickpath.feed.sharding). With a shard,
    # ``symbols`` holds only the owned symbols (filtered here, so a replace() re-filters).
    shard: ShardSpec | None = None

    def __post_init__(self) -> None:
        if self.venue not in VENUES:
            raise UnknownSymbolError(f"unknown venue {self.venue!r}: use one of {', '.join(VENUES)}")
        all_market_only = self._owns_all_market_streams()
        if not self.symbols and self.selection is None and not all_market_only:
            raise ConfigError("no symbols given: pass --symbols BTCUSDT,ETHUSDT")
        if self.shard is not None and not self.shard.trivial:
            owned = self.shard.select(self.symbols)
            if not owned and self.selection is None and not all_market_only:
                raise ConfigError(f"shard {self.shard.label()} owns none of {','.join(self.symbols)}")
            object.__setattr__(self, "symbols", owned)  # frozen: set once, here
        if not self.listing_poll_s > 0:
            raise ConfigError(f"listing poll interval {self.listing_poll_s} must be a positive number of seconds")
        if not 0 <= self.trim_memory_s < float("inf"):
            raise ConfigError(f"--trim-memory {self.trim_memory_s} must be 0 (off) or a number of seconds")
        for s in self.symbols:
            if not _SYMBOL_RE.match(s):
                raise UnknownSymbolError(
                    f"invalid symbol {s!r}: symbols are letters, digits and '_', e.g. BTCUSDT, BTCUSD_PERP"
                )
            if not endpoints(self.venue).valid_symbol(s):  # BTCUSDT on coinm, BTCUSD_PERP on spot
                raise UnknownSymbolError(
                    f"{s} is not a {self.venue} symbol: they look like {endpoints(self.venue).symbol_examples}"
                )
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"a symbol is listed twice in {','.join(self.symbols)}")
        if not self.channels:
            raise ConfigError("no channels given: use any of l2, trades, ticker")
        for c in self.channels:
            if c not in CHANNELS:
                channel_names.validate(c, self.venue)  # the low-rate ones: offered by this venue?
        if self.depth is not None and not 1 <= self.depth <= 5000:
            raise ConfigError(f"--depth {self.depth} must be between 1 and 5000")
        if not self.sinks:
            raise ConfigError("at least one sink is needed")
        if self.duration_s is not None and not 0 < self.duration_s < float("inf"):
            raise ConfigError(f"--duration {self.duration_s} must be a positive, finite number of seconds")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics port {self.metrics_port} out of range 0..65535")
        try:
            validate_depth_limit(self.venue, self.effective_snapshot_limit)
        except ValueError as exc:
            raise ConfigError(f"snapshot limit: {exc}") from None
        if self.depth_speed_ms not in DEPTH_SPEEDS_MS[self.venue]:
            speeds = ", ".join(str(s) for s in DEPTH_SPEEDS_MS[self.venue])
            raise ConfigError(f"{self.venue} depth speed must be one of {speeds} ms")
        if self.trade_stream not in TRADE_STREAMS:
            raise ConfigError(f"trade stream {self.trade_stream!r}: use aggTrade or trade")
        cap = endpoints(self.venue).max_streams_per_connection
        if self.streams_per_connection is not None and not 1 <= self.streams_per_connection <= cap:
            raise ConfigError(f"streams per connection must be 1..{cap} on {self.venue}")
        for name in ("stale_after_s", "rollover_overlap_s", "reconnect_base_s", "reconnect_max_s", "flush_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.rollover_after_s is not None and self.rollover_after_s <= self.rollover_overlap_s:
            raise ConfigError("rollover_after_s must be longer than the rollover overlap")
        if self.batch_size < 1 or self.queue_batches < 1:
            raise ConfigError("batch size and queue length must be at least 1")

    @property
    def effective_snapshot_limit(self) -> int:
        return self.snapshot_limit if self.snapshot_limit is not None else DEFAULT_SNAPSHOT_LIMIT[self.venue]

    @property
    def effective_streams_per_connection(self) -> int:
        return self.streams_per_connection or endpoints(self.venue).max_streams_per_connection

    @property
    def effective_rollover_after_s(self) -> float:
        if self.rollover_after_s is not None:
            return self.rollover_after_s
        return endpoints(self.venue).max_lifetime_s * 0.95

    @property
    def ws_base(self) -> str:
        return (self.base_url or endpoints(self.venue).ws_base).rstrip("/")

    @property
    def rest_base(self) -> str:
        return (self.rest_url or endpoints(self.venue).rest_base).rstrip("/")

    def streams_for(self, symbol: str) -> list[str]:
        """Binance stream names of ``symbol`` for the configured channels."""
        core: list[Channel] = [c for c in CHANNELS if c in self.channels]
        streams = channel_streams(
            symbol, self.venue, core, depth_speed_ms=self.depth_speed_ms, trade_stream=self.trade_stream
        )
        return streams + channel_names.symbol_streams(symbol, self.channels)

    def _owns_all_market_streams(self) -> bool:
        # The one process of a --shard/--workers run that owns the all-market streams runs for them
        # even when the hash gives it none of an explicit list (they would be captured nowhere else).
        return (
            self.shard is not None
            and self.shard.owns_all_market
            and bool(channel_names.all_market_streams(self.channels))
        )

    def streams_by_symbol(self) -> dict[str, list[str]]:
        """Streams per symbol; the all-market streams (one for every symbol) ride on the first one's,
        in the one process of a --shard/--workers run that owns them (stored once)."""
        out = {s: self.streams_for(s) for s in self.symbols}
        if out and (self.shard is None or self.shard.owns_all_market):
            out[next(iter(out))] += channel_names.all_market_streams(self.channels)
        return out


def parse_symbols(text: str) -> tuple[str, ...]:
    """``"btcusdt, ETHUSDT"`` -> ``("BTCUSDT", "ETHUSDT")``."""
    return tuple(s.strip().upper() for s in text.split(",") if s.strip())


def parse_channels(text: str) -> tuple[str, ...]:
    """``"l2,trades,kline_1m"`` -> ``("l2", "trades", "kline_1m")``; aliases ``book``/``depth`` = l2,
    ``bbo`` = ticker. Kline intervals keep their case (``kline_1M`` is a month, ``kline_1m`` a minute);
    which venue offers a channel is checked by :class:`FeedConfig`."""
    aliases = {"book": "l2", "depth": "l2", "trade": "trades", "bbo": "ticker", "tickers": "ticker"}
    known = {n.lower(): n for n in channel_names.SUBSCRIPTIONS}
    out: list[str] = []
    for raw in text.split(","):
        low = raw.strip().lower()
        name = raw.strip() if low.startswith("kline_") else aliases.get(low, known.get(low, low))
        if not name:
            continue
        if name not in CHANNELS and name not in known.values() and not name.startswith("kline_"):
            raise ConfigError(
                f"unknown channel {raw.strip()!r}: use l2, trades, ticker, kline_1m, ... (docs/schema.md)"
            )
        if name not in out:
            out.append(name)
    return tuple(out)
