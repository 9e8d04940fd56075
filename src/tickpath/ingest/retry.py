"""How ``ingest`` waits for a stream it cannot use yet, instead of exiting.

A stream that does not exist yet (ingest started before the feed), or a JetStream cluster that
does not answer (a node SIGKILLed, a stream or meta leader being elected) is a moment, not a
configuration mistake: ingest retries with a doubling delay (0.25 s to 5 s,
:func:`tickpath.nats.retry.retrying`, shared with the sink) and says so in one log line per attempt
(``ingest_waiting_for_stream``, a warning the first time). ``--wait-stream S``
bounds the wait (0 = the first failure is the error: exit 2 for a missing stream, 4 for a cluster
that does not answer). Without it, a service (no ``--idle-exit``) waits forever, and an
``--idle-exit`` run waits at least :data:`REELECTION_S`, long enough for a JetStream re-election.
"""

from __future__ import annotations

import logging

from tickpath.logs import log_event
from tickpath.nats.retry import ClusterUnansweredError

log = logging.getLogger(__name__)

__all__ = ["REELECTION_S", "Silence", "running_give_up_s", "wait_budget_s"]

REELECTION_S = 30.0  # an --idle-exit run's default wait: a 3-node re-election takes a few seconds


def wait_budget_s(wait_stream_s: float | None, idle_exit_s: float | None, connect_timeout_s: float) -> float | None:
    """How long to keep retrying an unusable stream (None: forever)."""
    if wait_stream_s is not None:
        return wait_stream_s
    if idle_exit_s is not None:  # the run must end, but not during a re-election
        return max(REELECTION_S, idle_exit_s, connect_timeout_s)
    return None


class Silence:
    """How long a running ingest has heard nothing from JetStream, and whether that ends the run.

    ``give_up_s`` None: never (a service waits for its cluster). One warning when a silence passes
    :data:`WARN_AFTER_S`, one line when it ends, so an outage is visible in the log with its length.
    """

    WARN_AFTER_S = 5.0

    def __init__(self, give_up_s: float | None, now_s: float) -> None:
        self.give_up_s = give_up_s
        self.last = now_s
        self._warned = False

    def answered(self, now_s: float) -> None:
        if self._warned:
            log_event(log, logging.WARNING, "ingest_cluster_answering_again", silent_s=round(now_s - self.last, 1))
            self._warned = False
        self.last = now_s

    def check(self, now_s: float, servers: str, why: str) -> None:
        """Raise :class:`ClusterUnansweredError` once the silence is over the bound."""
        silent = now_s - self.last
        if self.give_up_s is not None and silent >= self.give_up_s:
            raise ClusterUnansweredError(
                f"NATS at {servers} has not answered for {silent:.0f} s ({why}); giving up "
                f"(--idle-exit/--wait-stream); every batch committed so far is kept"
            )
        if silent >= self.WARN_AFTER_S and not self._warned:
            self._warned = True
            log_event(
                log,
                logging.WARNING,
                "ingest_cluster_not_answering",
                silent_s=round(silent, 1),
                why=why,
                gives_up_in_s="never" if self.give_up_s is None else round(self.give_up_s - silent, 1),
            )


def running_give_up_s(budget_s: float | None, idle_exit_s: float | None, connect_timeout_s: float) -> float | None:
    """A running ingest's bound on a silent cluster: the wait budget, never below the idle and connect times."""
    if budget_s is None:
        return None
    return max(budget_s, idle_exit_s or 0.0, connect_timeout_s)
