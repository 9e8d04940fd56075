"""Turning one run's raw timestamps into figures: latencies, losses, rates.

The hot paths only store integers (one send and one receipt time per sequence number); all
arithmetic and every HdrHistogram record happens here, after the run, so measuring does not
slow down what is measured. Pure functions of arrays, tested without a server.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tickpath.stats import LatencyRecorder

# The table: the original tool's percentiles, up to the maximum.
TABLE_PERCENTILES: tuple[float, ...] = (10.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0)
_LATENCY_FIELDS = ("min", "mean", "p50", "p90", "p99", "p999", "p9999", "max")
CLOCK_NOTE = "CLOCK_MONOTONIC of one process (publisher and subscriber share it)"


def intended_ns(t0: int, seq: int, interval_ns: float) -> int:
    """Intended send time of message ``seq`` on an open-loop schedule starting at ``t0``."""
    return t0 + int(seq * interval_ns)


def due_until(t0: int, now: int, interval_ns: float, total: int) -> int:
    """How many messages (from seq 0) are due at ``now``: those whose intended time <= now."""
    if now < t0:
        return 0
    return min(total, int((now - t0) / interval_ns) + 1)


def percentiles_ns(rec: LatencyRecorder, ps: Sequence[float]) -> dict[float, int]:
    """Many percentiles in one pass over the histogram (one pass per percentile costs ~30 ms
    each in the pure-Python HdrHistogram, seconds for a spectrum)."""
    if not rec.count:
        return {p: 0 for p in ps}
    values = rec._hist.get_percentile_to_value_dict(list(ps))  # LatencyRecorder has no bulk query
    return {p: int(values[p]) for p in ps}


@dataclass
class RunCounters:
    """What the receiver counts while the run is going (mutated by one thread)."""

    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    unexpected: int = 0
    probes: int = 0
    max_seq: int = -1
    sleeps: int = 0  # timed waits between sends (always 0 when busy-polling)


@dataclass
class BenchResult:
    """Every figure of one run. Latency recorders hold nanoseconds."""

    size: int
    rate: float
    pub: str
    sub: str
    subject: str
    warmup: int
    measured: int
    sent: int
    received: int
    lost: int
    warmup_lost: int
    unsent: int
    duplicates: int
    reordered: int
    achieved_rate: float
    sustained: bool
    duration_s: float
    intended: LatencyRecorder
    actual: LatencyRecorder
    send_lag: LatencyRecorder
    rtt_pub_ns: list[int]
    rtt_sub_ns: list[int]
    tls: bool = False
    errors: list[str] = field(default_factory=list)
    samples: list[tuple[int, int, int, int]] | None = None  # (seq, intended, actual, receipt)
    wait_mode: str = "sleep"  # "busy-poll": the client spun one core for the whole run
    sleeps: int = 0  # timed waits between sends: 0 when busy-polling
    # Settings of servers this process started (busbench local), e.g. GOMAXPROCS; None otherwise.
    servers: dict[str, Any] | None = None

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.achieved_rate * self.size

    @property
    def sustained_end_to_end(self) -> bool:
        """The publisher kept the target rate and the subscriber received messages at all."""
        return self.sustained and self.received > 0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.warmup_lost == 0 and self.unsent == 0 and not self.errors

    def to_dict(self, unit: str = "us") -> dict[str, Any]:
        """JSON-ready figures (latencies in ``unit``), encoded histograms included."""
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[unit]

        return {
            "schema": "tickpath.busbench/1",
            "unit": unit,
            "clock": CLOCK_NOTE,
            "pub": self.pub,
            "sub": self.sub,
            "subject": self.subject,
            "tls": self.tls,
            "wait_mode": self.wait_mode,
            "client_sleeps": self.sleeps,
            "servers": self.servers,
            "size": self.size,
            "target_rate": self.rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "rate_ratio": round(self.achieved_rate / self.rate, 5) if self.rate else 0.0,
            # A publisher that kept its rate while nothing arrived did not sustain the rate end to end.
            "sustained": self.sustained_end_to_end,
            "publisher_kept_rate": self.sustained,
            "bandwidth_bytes_per_s": round(self.bandwidth_bytes_per_s, 1),
            "duration_s": round(self.duration_s, 4),
            "warmup": self.warmup,
            "measured": self.measured,
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "warmup_lost": self.warmup_lost,
            "unsent": self.unsent,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "ok": self.ok,
            "errors": list(self.errors),
            "latency_from_intended": _latency(self.intended, unit, scale),
            "latency_from_actual": _latency(self.actual, unit, scale),
            "send_lag": self.send_lag.summary().to_dict(unit),
            "rtt_pub": _rtt(self.rtt_pub_ns, scale),
            "rtt_sub": _rtt(self.rtt_sub_ns, scale),
        }


def _latency(rec: LatencyRecorder, unit: str, scale: float) -> dict[str, Any]:
    # Nothing received: no latency exists, so every figure is null (never a 0.0 that reads as
    # "instant"); counts, losses and the (empty) histogram stay.
    out: dict[str, Any] = rec.to_dict(unit)
    if not rec.count:
        for key in (*(f"p{p:g}" for p in TABLE_PERCENTILES), *_LATENCY_FIELDS):
            out[key] = None
        return out
    values = percentiles_ns(rec, TABLE_PERCENTILES)
    return {**{f"p{p:g}": round(values[p] / scale, 3) for p in TABLE_PERCENTILES}, **out}


def _rtt(v: list[int], scale: float) -> dict[str, float]:
    if not v:
        return {}
    return {
        "min": round(min(v) / scale, 3),
        "median": round(statistics.median(v) / scale, 3),
        "max": round(max(v) / scale, 3),
    }


def _send_span_ns(t0: int, warmup: int, interval_ns: float, last_sent: int) -> float:
    """From the first measured intended send to the last actual send, plus one interval (0: none sent)."""
    return (last_sent - intended_ns(t0, warmup, interval_ns) + interval_ns) if last_sent else 0.0


def analyse(
    *, t0: int, interval_ns: float, warmup: int, sent_ns: array[int], recv_ns: array[int], keep_samples: bool = False
) -> dict[str, Any]:
    """Latency recorders, losses and the achieved rate from the per-sequence timestamps.

    A zero in ``sent_ns`` means never sent, a zero in ``recv_ns`` never received. Messages
    before ``warmup`` are counted for losses only. The achieved rate divides the measured
    messages by the time from the first measured intended send to the last actual send (plus
    one interval), so a publisher that keeps up scores exactly the target rate.
    """
    import numpy as np

    total = len(sent_ns)
    sent_a = np.frombuffer(sent_ns, dtype=np.int64) if total else np.zeros(0, dtype=np.int64)
    recv_a = np.frombuffer(recv_ns, dtype=np.int64) if total else np.zeros(0, dtype=np.int64)
    seqs = np.arange(total, dtype=np.int64)
    # Same float arithmetic and truncation as intended_ns(), element by element.
    want_a = t0 + (seqs * interval_ns).astype(np.int64)
    was_sent = sent_a != 0
    got = recv_a != 0
    measured_mask = seqs >= warmup
    unsent = int(np.count_nonzero(measured_mask & ~was_sent))
    warmup_lost = int(np.count_nonzero(~measured_mask & was_sent & ~got))
    m_sent = measured_mask & was_sent
    m_lost = m_sent & ~got
    m_ok = m_sent & got
    lost = int(np.count_nonzero(m_lost))

    intended = LatencyRecorder("from intended send time")
    actual = LatencyRecorder("from actual send time")
    lag = LatencyRecorder("send lag (actual - intended)")
    lag.record_array(np.maximum(sent_a[m_sent] - want_a[m_sent], 1))
    intended.record_array(recv_a[m_ok] - want_a[m_ok])
    actual.record_array(recv_a[m_ok] - sent_a[m_ok])
    intended.record_loss(lost)
    actual.record_loss(lost)
    samples: list[tuple[int, int, int, int]] | None = None
    if keep_samples:
        samples = list(
            zip(seqs[m_ok].tolist(), want_a[m_ok].tolist(), sent_a[m_ok].tolist(), recv_a[m_ok].tolist(), strict=True)
        )
    measured = total - warmup
    sent = measured - unsent
    last_sent = int(sent_a[m_sent].max()) if sent else 0
    span = _send_span_ns(t0, warmup, interval_ns, last_sent)
    achieved = sent / (span / 1e9) if span > 0 else 0.0
    return {
        "intended": intended,
        "actual": actual,
        "send_lag": lag,
        "lost": lost,
        "warmup_lost": warmup_lost,
        "unsent": unsent,
        "sent": sent,
        "measured": measured,
        "achieved_rate": achieved,
        "duration_s": span / 1e9,
        "samples": samples,
        "received": sent - lost,
    }
