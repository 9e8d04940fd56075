"""`feed --ca-file`: wss:// and https:// verified against a given CA bundle (a `sim --tls`, a proxy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.virtual_time import virtual_time
from tickpath.clock import VirtualClock
from tickpath.errors import ConfigError
from tickpath.feed import Feed, FeedConfig
from tickpath.sim import SimConfig, Simulator
from tickpath.sinks.jsonl import JsonLinesSink

from .helpers import all_synced, assert_books_match_truth, feed_config, run_until


@virtual_time
async def test_ca_file_lets_the_feed_sync_over_tls_and_the_system_store_does_not(
    tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    """Against a TLS simulator the feed with --ca-file syncs its book exactly (REST snapshot and stream
    both over TLS); without it the same run never connects: the certificate is refused."""
    async with Simulator(
        SimConfig(venues=("futures",), symbols=("BTCUSDT",), seed=3, rate=200.0, book_levels=40, tls=True),
        clock=virtual_clock,
    ) as sim:
        ep = sim.endpoint("futures")
        assert ep.ws_url.startswith("wss://") and ep.rest_url.startswith("https://") and ep.cafile
        feed = Feed(
            feed_config(ep, "futures", ("BTCUSDT",), ca_file=Path(ep.cafile), sinks=(f"jsonl:{tmp_path / 'a.jsonl'}",)),
            clock=virtual_clock,
        )
        summary = await run_until(feed, lambda f: all_synced(f) and f.pipeline.stats.by_channel["l2"] > 5)
        assert_books_match_truth(feed, sim)
        assert summary.connects >= 1 and summary.snapshots.get("errors", 0) == 0

        untrusted = Feed(
            feed_config(
                ep,
                "futures",
                ("BTCUSDT",),
                duration_s=1.0,
                check_symbols=False,
                sinks=(f"jsonl:{tmp_path / 'b.jsonl'}",),
            ),
            clock=virtual_clock,
        )
        refused = await untrusted.run()
        assert refused.connects == 0 and refused.connect_failures > 0
        assert "certificate" in str(refused.last_error).lower()


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
async def test_a_missing_or_bad_ca_file_is_a_config_error_before_anything_opens(
    content: bytes | None, tmp_path: Path
) -> None:
    """A CA file that is missing or not PEM is one ConfigError naming it; the sink is never opened."""
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    out = tmp_path / "out.jsonl"
    config = FeedConfig(
        venue="spot",
        symbols=("BTCUSDT",),
        base_url="wss://127.0.0.1:9",
        rest_url="https://127.0.0.1:9",
        ca_file=ca,
        duration_s=1.0,
    )
    feed = Feed(config, sinks=[JsonLinesSink(out)])
    with pytest.raises(ConfigError, match=r"cannot load TLS files \(ca=.*ca\.pem\)"):
        await feed.run()
    assert not out.exists()
