"""What the fault harnesses share: real ``tickpath sim`` / ``feed`` / ``ingest`` processes, a seed,
the stream leader as the cluster states it, and the checks on the DuckDB store and the spool.

The processes are the CLI as a user runs it (``python -m tickpath.cli.main -v ...``), so a SIGKILL
is a real crash: no ``finally``, no flush, no close record. Their stderr is read line by line into
:attr:`Proc.lines`, which is how a harness aims at a phase (``book_synced``, ``nats_spool_resumed``).
Used by ``tests/faults`` (fast, seeded) and ``bench/soak_faults.py`` (long).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import struct
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

SEED_ENV = "TICKPATH_FAULT_SEED"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TABLES = ("trades", "tickers", "l2")


def fault_seed(default: int) -> int:
    """The run's seed: ``TICKPATH_FAULT_SEED`` if set, else ``default`` (a test prints it on failure)."""
    raw = os.environ.get(SEED_ENV, "").strip()
    return int(raw) if raw else default


@dataclass
class Proc:
    """A tickpath CLI child process whose stderr lines are collected as they come."""

    name: str
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    stdout: bytes = b""
    _reader: asyncio.Task[None] | None = None
    _out: asyncio.Task[bytes] | None = None
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)  # set per line: a kill aimed at one is prompt

    @classmethod
    async def start(cls, name: str, *args: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tickpath.cli.main",
            "-v",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        p = cls(name, proc)
        p._reader = asyncio.create_task(p._read())
        assert proc.stdout is not None
        p._out = asyncio.create_task(proc.stdout.read())
        return p

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new_line.set()
        self._new_line.set()

    def seen(self, needle: str, since: int = 0) -> bool:
        return any(needle in ln for ln in self.lines[since:])

    async def wait_line(self, needle: str, timeout: float, since: int = 0) -> str:
        """The first stderr line (from index ``since``) containing ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            self._new_line.clear()  # before the scan: a line read meanwhile sets it again
            for ln in self.lines[since:]:
                if needle in ln:
                    return ln
            since = max(since, len(self.lines))
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {needle!r} in {timeout} s; tail: {self.lines[-8:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_line.wait(), 0.1)

    async def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await self.finish(10)

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM (the feed's and ingest's clean stop: exit 130, summary printed), then wait; the exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        return await self.finish(timeout)

    async def finish(self, timeout: float) -> int:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
        if self._out is not None and not self._out.cancelled():
            self.stdout = await self._out
        return self.proc.returncode or 0

    def summary(self) -> dict[str, Any]:
        """The ``--json`` summary the process printed on stdout."""
        text = self.stdout.decode().strip()
        try:
            out: dict[str, Any] = json.loads(text)  # one object, maybe indented
        except ValueError:
            out = json.loads(text.splitlines()[-1])  # after other output
        return out


async def scrape(port: int, pattern: str) -> float | None:
    """The value of the first ``/metrics`` sample on ``port`` matching ``pattern`` (a regex of the
    sample's name and labels), or None (no such sample, or the process does not answer)."""

    def get() -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = re.search(rf"^{pattern} (\S+)$", text, re.M)
        return float(m[1]) if m else None

    return await asyncio.to_thread(get)


async def metrics_port(p: Proc, timeout: float = 30) -> int:
    """The port a process started with ``--metrics-port 0`` says it listens on."""
    line = await p.wait_line("metrics_listening", timeout)
    m = re.search(r"port=(\d+)", line)
    assert m is not None, line
    return int(m[1])


async def start_sim(rate: float, seed: int, *extra: str) -> tuple[Proc, str, str]:
    """``tickpath sim`` for the spot venue; (process, ws url, rest url)."""
    p = await Proc.start("sim", "sim", "--venue", "spot", "--symbols", ",".join(SYMBOLS), "--rate", str(rate),
                         "--seed", str(seed), "--json", *extra)  # fmt: skip
    assert p.proc.stdout is not None and p._out is not None
    p._out.cancel()  # the sim prints one line (its endpoints), read here
    await asyncio.gather(p._out, return_exceptions=True)
    line = await asyncio.wait_for(p.proc.stdout.readline(), 30)
    ep = json.loads(line)["endpoints"][0]
    return p, ep["ws_url"], ep["rest_url"]


def feed_args(ws: str, rest: str, sink: str) -> list[str]:
    return ["feed", "--venue", "spot", "--symbols", ",".join(SYMBOLS), "--base-url", ws, "--rest-url", rest,
            "--sink", sink, "--json", "--no-status", "--no-symbol-check"]  # fmt: skip


def ingest_args(hosts: str, db: Path, *extra: str) -> list[str]:
    return ["ingest", "--from", f"nats://{hosts}", "--to", f"duckdb:{db}", "--json", "--batch", "500",
            "--fetch-timeout", "0.2", "--ack-wait", "3", *extra]  # fmt: skip


Key = tuple[str, str, str, int]  # (session, table, symbol, seq)


def store_keys(db: Path) -> list[Key]:
    """Every event row's key; opening the file is itself the check that a crash left it readable."""
    union = " UNION ALL ".join(f"SELECT session, '{t}', symbol, seq FROM {t}" for t in TABLES)
    con = duckdb.connect(str(db), read_only=True)
    try:
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not set(TABLES) <= have:
            return []
        return [(s, t, sym, int(q)) for s, t, sym, q in con.execute(union).fetchall()]
    finally:
        con.close()


def session_rows(db: Path) -> dict[str, int | None]:
    """``feed_sessions``: session -> ended_ns (None: no close record, the feed died)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT session, ended_ns FROM feed_sessions").fetchall())
    except duckdb.CatalogException:
        return {}
    finally:
        con.close()


def gaps(keys: list[Key], *, from_one: bool = True) -> list[str]:
    """Streams (session, table, symbol) whose seqs are not 1..n (or min..max) without holes."""
    streams: dict[tuple[str, str, str], list[int]] = {}
    for s, t, sym, q in keys:
        streams.setdefault((s, t, sym), []).append(q)
    bad = []
    for k, seqs in sorted(streams.items()):
        seqs.sort()
        first = 1 if from_one else seqs[0]
        if seqs != list(range(first, first + len(seqs))):
            bad.append(f"{k}: {len(seqs)} rows, seq {seqs[0]}..{seqs[-1]}")
    return bad


_REC = struct.Struct(">HH")  # a spool record: len(subject), len(msg id), subject, msg id, payload


def spool_ids(directory: Path) -> list[str]:
    """The ``Nats-Msg-Id`` (the event key) of every record the spool still holds, oldest first."""
    from tickpath.sinks.spool import Spool

    if not directory.exists():
        return []
    spool = Spool(directory)
    try:
        out = []
        for rec in spool.peek(len(spool)):
            ls, lk = _REC.unpack_from(rec)
            out.append(rec[_REC.size + ls : _REC.size + ls + lk].decode())
        return out
    finally:
        spool.close()


def event_id(key: Key) -> str:
    """The message id the sink gives the event of a stored key (``tickpath.events.event_key``)."""
    s, t, sym, q = key
    channel = {"tickers": "ticker"}.get(t, t)
    return f"{s}.spot.{channel}.{sym}.{q}"


async def stream_leader(urls: list[str], stream: str = "TICKPATH") -> str | None:
    """The server name the cluster names as the stream's leader (None while it elects one)."""
    import nats

    async def quiet(exc: Exception) -> None:  # nats-py prints a traceback per refused node by default
        pass

    try:
        nc = await nats.connect(
            servers=urls, connect_timeout=1, allow_reconnect=False, error_cb=quiet, max_reconnect_attempts=0
        )
    except Exception:
        return None
    try:
        info = await nc.jetstream(timeout=1).stream_info(stream)
        return info.cluster.leader if info.cluster else None
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
