"""Sink URLs: one string names a sink and where it writes.

==========================  ===========================================================
``duckdb:PATH``             :class:`~tickpath.sinks.duckdb.DuckDBSink` (``duckdb`` alone:
                            ``./data/ticks.duckdb``)
``parquet:DIR``             :class:`~tickpath.sinks.parquet.ParquetSink`, partitioned by
                            venue/channel/date
``jsonl:-``, ``jsonl:PATH`` :class:`~tickpath.sinks.jsonl.JsonLinesSink` (``-`` = stdout)
``nats://HOST:PORT/...``    :class:`~tickpath.sinks.nats.NatsSink` (NATS JetStream)
``pubsub://PROJECT/TOPIC``  :class:`~tickpath.sinks.pubsub.PubSubSink` (Google Pub/Sub)
==========================  ===========================================================

:data:`SINKS` is the whole table: a scheme, how its URL is written, and a factory. Each factory
imports its sink when called, so the feed starts without the dependencies of sinks it does not use
(google-cloud-pubsub for ``pubsub://``); a missing one is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tickpath.errors import ConfigError
from tickpath.sinks.base import Sink


@dataclass(frozen=True)
class SinkKind:
    """One row of the table: ``factory(url, options)`` builds the sink ``url`` names."""

    scheme: str
    usage: str
    factory: Callable[[str, dict[str, Any]], Sink]


@contextmanager
def _needs(url: str, module: str) -> Iterator[None]:
    try:
        yield
    except ModuleNotFoundError as exc:
        raise ConfigError(f"sink {url!r} needs {module}, which is not available ({exc})") from exc


def _target(url: str) -> str:
    """What follows ``scheme:`` in a file sink's URL (a path, a directory, ``-``)."""
    return url.partition(":")[2]


def _duckdb(url: str, options: dict[str, Any]) -> Sink:
    from tickpath.sinks.duckdb import DEFAULT_PATH, DuckDBSink

    return DuckDBSink.from_target(_target(url) or DEFAULT_PATH, **options)  # PATH?memory_limit=SIZE


def _parquet(url: str, options: dict[str, Any]) -> Sink:
    from tickpath.sinks.parquet import ParquetSink

    if not _target(url):
        raise ConfigError("parquet sink needs a directory: parquet:DIR")
    return ParquetSink.from_target(_target(url), **options)  # DIR?flush_s=S&batch_rows=N


def _jsonl(url: str, options: dict[str, Any]) -> Sink:
    from tickpath.sinks.jsonl import JsonLinesSink

    return JsonLinesSink(_target(url) or "-", **options)


def _nats(url: str, options: dict[str, Any]) -> Sink:
    with _needs(url, "tickpath.sinks.nats"):
        from tickpath.sinks.nats import NatsSink
    return NatsSink.from_url(url, **options)


def _pubsub(url: str, options: dict[str, Any]) -> Sink:
    with _needs(url, "tickpath.sinks.pubsub"):
        from tickpath.sinks.pubsub import PubSubSink
    return PubSubSink.from_url(url, **options)


SINKS: tuple[SinkKind, ...] = (
    SinkKind("duckdb", "duckdb:PATH", _duckdb),
    SinkKind("parquet", "parquet:DIR", _parquet),
    SinkKind("jsonl", "jsonl:-|PATH", _jsonl),
    SinkKind("nats", "nats://HOST:PORT", _nats),
    SinkKind("pubsub", "pubsub://PROJECT/TOPIC", _pubsub),
)
_BY_SCHEME = {k.scheme: k for k in SINKS}
SCHEMES = tuple(_BY_SCHEME)


def open_sink(url: str, **options: Any) -> Sink:
    """The sink named by ``url``; an unknown scheme or a missing path is a :class:`ConfigError`."""
    url = url.strip()
    kind = _BY_SCHEME.get(url.partition(":")[0].lower())
    if kind is None:
        raise ConfigError(f"unknown sink {url!r}: use one of {', '.join(k.usage for k in SINKS)}")
    return kind.factory(url, options)
