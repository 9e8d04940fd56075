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

from tickpath.clock import DEFAULT_CLOCK, Clock
from tickpath.errors import ConfigError
from tickpath.logs import log_event
from tickpath.nats.retry import StreamMissingError, js_call, retrying

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


async def ensure_stream(
    js: Any, spec: StreamSpec, servers: Sequence[str], *, wait_s: float | None = 30.0, clock: Clock = DEFAULT_CLOCK
) -> bool:
    """Create ``spec``'s stream unless it exists (True when created); an existing stream must take
    ``<prefix>.>``. A cluster that times out or has no leader yet (just started, a node lost) is
    waited for, up to ``wait_s``, as ``ingest`` waits (:mod:`tickpath.nats.retry`): shards started
    together against a new cluster must not exit for an election. Errors: ConfigError (a stream that
    does not take the subjects, a request refused), ConnectionFailedError (no JetStream on
    ``servers``, which must carry no credentials; :class:`ClusterUnansweredError` once the wait is over)."""
    what = f"JetStream stream {spec.name}"

    async def attempt() -> tuple[bool, Any]:
        try:
            return False, await js_call(js.stream_info(spec.name), servers, what, missing=what)
        except StreamMissingError:
            pass
        if await js_call(_create(js, spec), servers, what):
            log_event(
                log, logging.INFO, "nats_stream_created", stream=spec.name, replicas=spec.replicas, storage=spec.storage
            )
            return True, None
        # Another publisher created it between our look and our create: read what it made.
        return False, await js_call(js.stream_info(spec.name), servers, what)

    created, info = await retrying(attempt, what=what, budget_s=wait_s, clock=clock, who="nats_sink")
    if created:
        return True
    subjects = list(info.config.subjects or [])
    if not any(covers(s, spec.prefix) for s in subjects):
        # Left alone, as promised, but told: every publish would go unanswered and spool.
        raise ConfigError(
            f"JetStream stream {spec.name} exists with subjects {', '.join(subjects) or '(none)'}, "
            f"which do not take this sink's {spec.prefix}.>; use ?stream= for another stream, "
            f"?prefix= for subjects it takes, or add {spec.prefix}.> to its subjects"
        )
    return False


_STREAM_NAME_IN_USE = 10058  # JetStream's err_code for a create that lost a race (or differs)


async def _create(js: Any, spec: StreamSpec) -> bool:
    """Create the stream: True, or False when it exists already (made by a concurrent publisher)."""
    from nats.js.errors import BadRequestError

    try:
        await js.add_stream(spec.stream_config())
    except BadRequestError as exc:
        if exc.err_code == _STREAM_NAME_IN_USE:
            return False
        raise
    return True
