"""``tickpath feed``: Binance market data with books in exact sync, into DuckDB, Parquet, JSON lines
or a bus. ``await run(FeedConfig(...))``; see ``docs/schema.md`` for what lands where."""

from tickpath.feed.config import FeedConfig
from tickpath.feed.run import Feed, run
from tickpath.feed.snapshot import FeedSnapshot, FeedSummary

__all__ = ["Feed", "FeedConfig", "FeedSnapshot", "FeedSummary", "run"]
