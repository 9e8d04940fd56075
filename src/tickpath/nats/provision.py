"""JetStream stream provisioning and the naming rules of streams, consumers and subject prefixes.

A stream is created when absent and left alone when present (its settings are the operator's), but
a present stream that would not take the publisher's subjects is refused with a clear error: every
publish would otherwise go unanswered and end in the spool.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tickpath.errors import ConfigError, SinkError
from tickpath.logs import log_event
from tickpath.nats.client import jetstream_unavailable

log = logging.getLogger(__name__)

__all__ = ["StreamSpec", "check_name", "check_prefix", "covers", "ensure_stream"]

# JetStream stream and consumer names become subject tokens and file names: letters, digits, '-', '_'
# (no '.', wildcards, spaces or path separators). Subject prefixes are such tokens joined by '.'.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def check_name(kind: str, name: str) -> str:
    """``name`` when it is a valid JetStream ``kind`` ("stream", "durable") name, else ConfigError."""
    if not _NAME_RE.match(name):
        raise ConfigError(f"{kind}={name!r}: a JetStream {kind} name takes only letters, digits, '-' and '_'")
    return name


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is '.'-separated tokens of letters, digits, '-' and '_', else ConfigError."""
    if not all(_NAME_RE.match(t) for t in prefix.split(".")):
        raise ConfigError(f"prefix={prefix!r}: subject tokens of letters, digits, '-' and '_', separated by '.'")
    return prefix


def covers(pattern: str, prefix: str) -> bool:
    """True when the subject filter ``pattern`` (``*`` one token, ``>`` one or more) matches every
    subject under ``prefix``, i.e. takes all of ``<prefix>.>``: what a stream must bind for a sink."""
    p, q = pattern.split("."), prefix.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return i <= len(q)  # the rest of the prefix and at least one token more
        if i >= len(q) or (tok != "*" and tok != q[i]):
            return False  # a narrower filter, or another prefix
    return False  # without '>' a filter matches subjects of one length only


@dataclass(frozen=True)
class StreamSpec:
    """The stream a publisher needs: its name, the subjects under ``prefix`` and, for a new stream,
    its settings."""

    name: str = "TICKPATH"
    prefix: str = "tickpath"
    replicas: int = 1
    storage: str = "file"  # file | memory
    retention: str = "limits"  # limits | interest | workqueue
    max_age_s: float = 0.0  # 0 = keep forever
    max_bytes: int = -1
    duplicate_window_s: float = 120.0

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.replicas > 5:
            raise ConfigError(f"JetStream replicas must be 1..5, not {self.replicas}")
        if self.storage not in ("file", "memory"):
            raise ConfigError(f"storage must be 'file' or 'memory', not {self.storage!r}")
        if self.retention not in ("limits", "interest", "workqueue"):
            raise ConfigError(f"retention must be limits, interest or workqueue, not {self.retention!r}")
        check_prefix(self.prefix)
        check_name("stream", self.name)

    def stream_config(self) -> Any:
        """nats-py's ``StreamConfig`` for creating this stream."""
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig

        return StreamConfig(
            name=self.name,
            subjects=[f"{self.prefix}.>"],
            retention=RetentionPolicy(self.retention),
            storage=StorageType(self.storage),
            num_replicas=self.replicas,
            duplicate_window=self.duplicate_window_s,
            max_age=self.max_age_s or None,
            max_bytes=self.max_bytes,
        )


async def ensure_stream(js: Any, spec: StreamSpec, servers: Sequence[str]) -> bool:
    """Create ``spec``'s stream unless it exists (True when created); an existing stream must take
    ``<prefix>.>``. Errors: ConfigError (a stream that does not take the subjects),
    ConnectionFailedError (no JetStream on ``servers``, which must carry no credentials) or SinkError."""
    from nats.js.errors import NotFoundError, ServiceUnavailableError

    try:
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(spec.stream_config())
            log_event(
                log, logging.INFO, "nats_stream_created", stream=spec.name, replicas=spec.replicas, storage=spec.storage
            )
            return True
    except ServiceUnavailableError as exc:  # no responders on $JS.API: no JetStream
        raise jetstream_unavailable(servers) from exc
    except Exception as exc:
        raise SinkError(f"cannot create or inspect JetStream stream {spec.name}: {exc}") from exc
    subjects = list(info.config.subjects or [])
    if not any(covers(s, spec.prefix) for s in subjects):
        # Left alone, as promised, but told: every publish would go unanswered and spool.
        raise ConfigError(
            f"JetStream stream {spec.name} exists with subjects {', '.join(subjects) or '(none)'}, "
            f"which do not take this sink's {spec.prefix}.>; use ?stream= for another stream, "
            f"?prefix= for subjects it takes, or add {spec.prefix}.> to its subjects"
        )
    return False
