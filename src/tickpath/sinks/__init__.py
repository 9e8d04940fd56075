"""Sinks: where normalized events go. One small interface (:class:`~tickpath.sinks.base.Sink`)."""

from tickpath.sinks.base import Sink, SinkStats

__all__ = ["Sink", "SinkStats"]
