"""Sink URLs: one string names a sink and where it writes.

==========================  ===========================================================
``duckdb:PATH``             :class:`~tickpath.sinks.duckdb.DuckDBSink` (``duckdb`` alone:
                            ``./data/ticks.duckdb``)
``parquet:DIR``             :class:`~tickpath.sinks.parquet.ParquetSink`, partitioned by
                            venue/channel/date
``jsonl:-``, ``jsonl:PATH`` :class:`~tickpath.sinks.jsonl.JsonLinesSink` (``-`` = stdout)
``nats://HOST:PORT/...``    ``tickpath.sinks.nats`` (NATS JetStream)
``pubsub://PROJECT/TOPIC``  ``tickpath.sinks.pubsub`` (Google Pub/Sub)
==========================  ===========================================================

The bus sinks are imported by module name only when asked for, so the registry (and the feed)
works without their dependencies or before they exist. A bus module provides either
``open_sink(url, **options) -> Sink``, or a single :class:`Sink` subclass with a ``from_url(url,
**options)`` class method (or a constructor taking ``(url, **options)``).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from tickpath.errors import ConfigError
from tickpath.sinks.base import Sink
from tickpath.sinks.duckdb import DEFAULT_PATH

SCHEMES = ("duckdb", "parquet", "jsonl", "nats", "pubsub")
_BUS_MODULES = {"nats": "tickpath.sinks.nats", "pubsub": "tickpath.sinks.pubsub"}


def _split(url: str) -> tuple[str, str]:
    if "://" in url:
        scheme = url.split("://", 1)[0]
        return scheme.lower(), url
    scheme, _, rest = url.partition(":")
    return scheme.lower(), rest


def _bus_sink(scheme: str, url: str, options: dict[str, Any]) -> Sink:
    module_name = _BUS_MODULES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"sink {url!r} needs {module_name}, which is not available ({exc})") from exc
    factory = getattr(module, "open_sink", None)
    if callable(factory):
        sink = factory(url, **options)
        if not isinstance(sink, Sink):
            raise ConfigError(f"{module_name}.open_sink did not return a Sink")
        return sink
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, Sink) and c is not Sink and c.__module__ == module_name
    ]
    if len(classes) != 1:
        raise ConfigError(f"{module_name} has no open_sink() and {len(classes)} Sink classes")
    cls = classes[0]
    from_url = getattr(cls, "from_url", None)
    sink = from_url(url, **options) if callable(from_url) else cls(url, **options)  # type: ignore[call-arg]
    if not isinstance(sink, Sink):
        raise ConfigError(f"{module_name}.{cls.__name__}.from_url did not return a Sink")
    return sink


def open_sink(url: str, **options: Any) -> Sink:
    """The sink named by ``url``; an unknown scheme or a missing path is a :class:`ConfigError`."""
    scheme, rest = _split(url.strip())
    if scheme == "duckdb":
        from tickpath.sinks.duckdb import DuckDBSink

        return DuckDBSink(rest or DEFAULT_PATH, **options)
    if scheme == "parquet":
        from tickpath.sinks.parquet import ParquetSink

        if not rest:
            raise ConfigError("parquet sink needs a directory: parquet:DIR")
        return ParquetSink(rest, **options)
    if scheme == "jsonl":
        from tickpath.sinks.jsonl import JsonLinesSink

        return JsonLinesSink(rest or "-", **options)
    if scheme in _BUS_MODULES:
        return _bus_sink(scheme, url, options)
    raise ConfigError(
        f"unknown sink {url!r}: use one of duckdb:PATH, parquet:DIR, jsonl:-|PATH, "
        "nats://HOST:PORT, pubsub://PROJECT/TOPIC"
    )
