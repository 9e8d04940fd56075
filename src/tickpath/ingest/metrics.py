"""Prometheus ``/metrics`` for a running ``tickpath ingest`` (``--metrics-port``).

Exported (all prefixed ``tickpath_ingest_``, labels ``stream`` and ``durable``): ``messages_total``,
``rows_total{table}`` (inserted), ``duplicates_total``, ``rejected_total``, ``batches_total``,
``redeliveries_total`` (messages JetStream delivered more than once), the gauges ``acks_pending``
(messages this process holds, not yet acknowledged), ``lag_messages`` (messages in the stream the
consumer had yet to deliver, as of the last batch) and ``lag_seconds`` (commit time minus the
stream's store time of the newest committed message), and the histogram ``commit_seconds`` (one
batch's store commit).

Every figure comes from what the loop already holds: the delivery count, store time and pending
count are in each message's ack subject, so nothing is asked of the server per scrape.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tickpath.metrics import recorder_histogram

if TYPE_CHECKING:
    from tickpath.ingest.consumer import IngestResult

# Bucket bounds (seconds) of the commit-time histogram: 1 ms to 30 s.
COMMIT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def delivery_facts(replies: Sequence[bytes]) -> tuple[int, int, int] | None:
    """(redelivered messages, pending in the stream, store time ns of the last) of one batch, read
    from its ack subjects; None if they are not JetStream ack subjects.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>`` (the server's v1 form;
    v2 puts domain and account hash before the stream and a token after). Redeliveries are counted
    without a Python loop: every first delivery starts with the same prefix ending in ``.1.``.
    """
    if not replies:
        return None
    last = replies[-1].split(b".")
    if len(last) == 9:
        at = 4
    elif len(last) >= 12:
        at = 6
    else:
        return None
    first = b".".join(last[:at]) + b".1."
    firsts = (b"\n" + b"\n".join(replies)).count(b"\n" + first)
    try:
        return len(replies) - firsts, int(last[at + 4]), int(last[at + 3])
    except ValueError:
        return None


class IngestCollector(Collector):
    """Reads one run's :class:`~tickpath.ingest.consumer.IngestResult` at scrape time."""

    def __init__(self, result: IngestResult, stream: str, durable: str) -> None:
        self.result = result
        self.labels = {"stream": stream, "durable": durable}

    def collect(self) -> Iterator[Any]:
        r = self.result
        p = "tickpath_ingest_"
        keys, values = list(self.labels), list(self.labels.values())
        for name, value, doc in (
            ("messages", r.messages, "Messages committed and acknowledged"),
            ("duplicates", r.duplicates, "Rows already in the store, skipped"),
            ("rejected", r.rejected, "Messages that could not be decoded"),
            ("batches", r.batches, "Batches committed"),
            ("redeliveries", r.redeliveries, "Messages JetStream delivered more than once"),
        ):
            c = CounterMetricFamily(p + name, doc, labels=keys)
            c.add_metric(values, value)
            yield c
        rows = CounterMetricFamily(p + "rows", "Rows inserted, by table", labels=[*keys, "table"])
        for table, n in sorted(r.per_table.items()):
            rows.add_metric([*values, table], n)
        yield rows
        for name, gauge, doc in (
            ("acks_pending", r.acks_pending, "Messages received and not yet acknowledged"),
            ("lag_messages", r.lag_messages, "Messages in the stream not yet delivered to the consumer"),
            ("lag_seconds", r.lag_s, "Commit time minus stream time of the newest committed message"),
        ):
            g = GaugeMetricFamily(p + name, doc, labels=keys)
            g.add_metric(values, gauge)
            yield g
        yield recorder_histogram(
            p + "commit_seconds", "Store commit time per batch", r.commit_time, self.labels, COMMIT_BUCKETS_S
        )
