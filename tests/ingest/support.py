"""Helpers shared by the bus tests: generated events and real nats-server processes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tickpath.errors import ToolMissingError
from tickpath.events import BookDelta, Event, Ticker, Trade
from tickpath.natsserver import NatsCluster, find_nats_server

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def require_nats_server() -> None:
    """Skip the calling test when nats-server is not installed."""
    try:
        find_nats_server()
    except ToolMissingError:
        pytest.skip("nats-server is not installed (Debian: apt-get install nats-server)")


def make_events(n: int, *, session: str = "sess1", start_seq: int = 1) -> list[Event]:
    """``n`` events cycling through trades, tickers and book deltas of three symbols.

    ``seq`` is contiguous per (channel, symbol) stream, as the feed numbers them.
    """
    out: list[Event] = []
    seqs: dict[tuple[str, str], int] = {}
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        kind = (i // len(SYMBOLS)) % 3
        channel = ("trades", "ticker", "l2")[kind]
        seq = seqs.get((channel, sym), start_seq - 1) + 1
        seqs[(channel, sym)] = seq
        common = dict(
            session=session,
            venue="spot",
            symbol=sym,
            seq=seq,
            event_time_ms=1_700_000_000_000 + i,
            transaction_time_ms=1_700_000_000_000 + i,
            receipt_ns=1_700_000_000_000_000_000 + i,
        )
        if kind == 0:
            out.append(
                Trade(
                    **common,
                    trade_id=i,
                    price=f"{100 + i % 7}.5",
                    qty="0.01",  # type: ignore[arg-type]
                    side="buy" if i % 2 else "sell",
                )
            )
        elif kind == 1:
            out.append(
                Ticker(
                    **common,
                    update_id=i,
                    bid_price="99.9",
                    bid_qty="1",  # type: ignore[arg-type]
                    ask_price="100.1",
                    ask_qty="2",
                )
            )
        else:
            out.append(
                BookDelta(
                    **common,
                    first_update_id=i,
                    final_update_id=i,  # type: ignore[arg-type]
                    prev_final_update_id=None,
                    bids=[("99.9", "1")],
                    asks=[("100.1", "0")],
                )
            )
    return out


@contextlib.asynccontextmanager
async def nats_cluster(n: int = 1, **kw: Any) -> AsyncIterator[NatsCluster]:
    """A running nats-server (or cluster of ``n``), JetStream on unless ``jetstream=False``; more
    :class:`NatsCluster` options (``user``, ``password``) pass through. Stopped afterwards."""
    require_nats_server()
    async with NatsCluster(n, **{"jetstream": True, **kw}) as cluster:
        yield cluster


async def ingest_cli(*args: str) -> tuple[int, str, str]:
    """``tickpath ingest ARGS`` in a subprocess: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpath.cli.main",
        "ingest",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()
