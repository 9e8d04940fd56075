"""--symbols grammar (all, filters, names, exclusions), listing diffs and start-up progress: pure logic,
an injected clock, no network."""

from __future__ import annotations

import pytest

from tickpath.clock import ManualClock
from tickpath.errors import ConfigError, UnknownSymbolError
from tickpath.feed.listings import ListingChange, diff_listing
from tickpath.feed.progress import SyncProgress
from tickpath.feed.universe import parse_selection
from tickpath.venues.binance.rest import SymbolInfo


def _listing(*rows: tuple[str, str, str, str]) -> dict[str, SymbolInfo]:
    return {s: SymbolInfo(s, st, b, q) for s, st, b, q in rows}


LISTING = _listing(
    ("BTCUSDT", "TRADING", "BTC", "USDT"),
    ("ETHUSDT", "TRADING", "ETH", "USDT"),
    ("SOLUSDT", "BREAK", "SOL", "USDT"),
    ("BTCUSDC", "TRADING", "BTC", "USDC"),
    ("ETHBTC", "TRADING", "ETH", "BTC"),
    ("XRPFDUSD", "TRADING", "XRP", "FDUSD"),
)


def test_all_keeps_only_trading_symbols_in_name_order() -> None:
    sel = parse_selection("all")
    assert sel.dynamic
    assert sel.select(LISTING) == ["BTCUSDC", "BTCUSDT", "ETHBTC", "ETHUSDT", "XRPFDUSD"]


def test_same_key_is_any_value_and_different_keys_must_all_hold() -> None:
    assert parse_selection("quote=USDT|usdc").select(LISTING) == ["BTCUSDC", "BTCUSDT", "ETHUSDT"]
    assert parse_selection("quote=USDT,quote=BTC").select(LISTING) == ["BTCUSDT", "ETHBTC", "ETHUSDT"]
    assert parse_selection("quote=USDT|USDC,base=BTC").select(LISTING) == ["BTCUSDC", "BTCUSDT"]


def test_names_are_added_first_and_exclusions_win() -> None:
    sel = parse_selection("SOLUSDT, quote=USDT, -ETHUSDT")
    # an explicit symbol stays even in BREAK (the feed warns); the filter skips it and the excluded one
    assert sel.select(LISTING) == ["SOLUSDT", "BTCUSDT"]


def test_a_plain_list_is_not_dynamic() -> None:
    sel = parse_selection("btcusdt,ETHUSDT")
    assert not sel.dynamic
    assert sel.explicit == ("BTCUSDT", "ETHUSDT")
    assert sel.select(LISTING) == ["BTCUSDT", "ETHUSDT"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("side=BUY", "unknown symbol filter 'side'"),
        ("quote=", "has no value"),
        ("BTC-USDT", "invalid symbol"),
        (" , ", "no symbols given"),
        ("BTCUSDT,btcusdt", "listed twice"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_selection(spec)


def test_unknown_explicit_symbol_names_the_nearest_listed_ones() -> None:
    with pytest.raises(UnknownSymbolError) as err:
        parse_selection("BTCUSTD,quote=USDT").select(LISTING)
    assert str(err.value).startswith("BTCUSTD (did you mean BTCUSDT")
    assert "\n" not in str(err.value)


def test_diff_adds_new_trading_matches_and_removes_delisted_and_halted() -> None:
    sel = parse_selection("quote=USDT")
    current = {"BTCUSDT": "TRADING", "ETHUSDT": "TRADING"}
    fresh = _listing(
        ("BTCUSDT", "BREAK", "BTC", "USDT"),  # halted: closed
        ("NEWUSDT", "TRADING", "NEW", "USDT"),  # listed: added
        ("PREUSDT", "PRE_TRADING", "PRE", "USDT"),  # not trading yet: not added
        ("ETHBTC", "TRADING", "ETH", "BTC"),  # not chosen
    )  # ETHUSDT gone: delisted
    change = diff_listing(current, sel, fresh)
    assert change == ListingChange(added=("NEWUSDT",), removed=(("BTCUSDT", "break"), ("ETHUSDT", "delisted")))
    assert not diff_listing({"NEWUSDT": "TRADING"}, sel, fresh)


def test_an_explicit_symbol_already_halted_at_start_is_not_closed_again() -> None:
    sel = parse_selection("SOLUSDT,quote=USDC")
    assert not diff_listing({"SOLUSDT": "BREAK", "BTCUSDC": "TRADING"}, sel, LISTING)


def test_progress_eta_from_the_recent_rate_and_time_to_all_synced() -> None:
    clock = ManualClock()
    p = SyncProgress(clock=clock, window_s=10.0)
    assert p.update(0, 100).eta_s is None  # no rate yet
    for i in range(1, 5):
        clock.advance(1_000_000_000)
        rep = p.update(10 * i, 100)
    assert rep.eta_s == pytest.approx(6.0)  # 60 left at 10 books/s
    assert "40/100 books synced, ETA 6 s" in rep.bar()
    clock.advance(6_000_000_000)
    done = p.update(100, 100)
    assert done.done and done.all_synced_s == pytest.approx(10.0) and done.eta_s == 0
    assert p.line() == ""
    clock.advance(5_000_000_000)
    assert p.update(100, 120).all_synced_s == pytest.approx(10.0)  # new listings do not move the start-up figure


@pytest.mark.parametrize("venue", ["spot", "futures", "coinm"])
def test_the_whole_universe_is_split_within_the_venues_streams_per_connection(venue: str) -> None:
    """Every TRADING symbol of `sim --universe binance`, three streams each: connections of at most
    the venue's limit, every symbol's streams on one connection, none left out."""
    from tickpath.feed.config import FeedConfig
    from tickpath.feed.shards import plan_shards
    from tickpath.sim.universe import universe_symbols
    from tickpath.venues.binance.endpoints import VENUES, endpoints

    if venue not in VENUES:
        pytest.skip(f"venue {venue} is not in this build's venue table")
    cap = endpoints(venue).max_streams_per_connection  # type: ignore[arg-type]
    symbols = tuple(u.symbol for u in universe_symbols("binance", venue, 1) if u.status == "TRADING")
    cfg = FeedConfig(venue=venue, symbols=symbols)  # type: ignore[arg-type]
    shards = plan_shards(cfg.streams_by_symbol(), cfg.effective_streams_per_connection)
    assert all(len(sh.streams) <= cap for sh in shards)
    assert len(shards) == -(-3 * len(symbols) // (cap - cap % 3))  # packed full, whole symbols
    assert [s for sh in shards for s in sh.symbols] == list(symbols)


async def test_the_status_line_leads_with_the_progress_bar_until_all_books_synced() -> None:
    import asyncio
    import io

    from rich.console import Console

    from tickpath.feed import Feed, FeedConfig
    from tickpath.feed.status import run_status

    clock = ManualClock()
    progress = SyncProgress(clock=clock)
    progress.update(0, 4)
    clock.advance(2_000_000_000)
    progress.update(1, 4)
    feed = Feed(FeedConfig(venue="spot", symbols=("BTCUSDT",)), sinks=[])
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    task = asyncio.create_task(run_status(feed.snapshot, console=console, period_s=0.01, extra=progress.line))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "[#####---------------] 1/4 books synced, ETA 6 s" in out.getvalue()
