"""Unit tests of the schedule and of turning per-sequence timestamps into figures."""

from __future__ import annotations

from array import array

from tickpath.busbench.results import analyse, due_until, intended_ns

MS = 1_000_000


def _arrays(n: int) -> tuple[array[int], array[int]]:
    return array("q", bytes(8 * n)), array("q", bytes(8 * n))


def test_schedule_is_open_loop() -> None:
    """Intended times depend only on t0, the sequence number and the rate, and due counts follow."""
    assert intended_ns(1_000, 3, 1e6) == 1_000 + 3 * MS
    assert due_until(1_000, 999, 1e6, 10) == 0
    assert due_until(1_000, 1_000, 1e6, 10) == 1
    assert due_until(1_000, 1_000 + 5 * MS + 1, 1e6, 10) == 6
    assert due_until(1_000, 1_000 + 500 * MS, 1e6, 10) == 10


def test_on_time_run_scores_target_rate_and_exact_latencies() -> None:
    """A publisher that keeps its schedule scores the target rate; both latencies equal the delay."""
    n, warm, t0 = 110, 10, 5 * MS
    sent, recv = _arrays(n)
    for i in range(n):
        sent[i] = intended_ns(t0, i, 1e6)
        recv[i] = sent[i] + 50_000 + i  # 50 µs plus a little
    f = analyse(t0=t0, interval_ns=1e6, warmup=warm, sent_ns=sent, recv_ns=recv)
    assert f["measured"] == 100 and f["sent"] == 100 and f["lost"] == 0
    assert abs(f["achieved_rate"] - 1000.0) < 1e-6
    assert f["intended"].count == 100
    assert abs(f["intended"].percentile(0) - 50_010) <= 64  # HdrHistogram keeps 3 digits
    assert f["actual"].percentile(100) == f["intended"].percentile(100)


def test_losses_warmup_losses_and_unsent_are_told_apart() -> None:
    """Missing receipts are losses (separately in warm-up); never-sent messages are unsent."""
    n, warm, t0 = 20, 5, MS
    sent, recv = _arrays(n)
    for i in range(n - 3):  # the last 3 never sent
        sent[i] = intended_ns(t0, i, 1e6)
        recv[i] = sent[i] + 10_000
    recv[2] = 0  # warm-up loss
    recv[7] = recv[8] = 0  # measured losses
    f = analyse(t0=t0, interval_ns=1e6, warmup=warm, sent_ns=sent, recv_ns=recv, keep_samples=True)
    assert (f["lost"], f["warmup_lost"], f["unsent"]) == (2, 1, 3)
    assert f["sent"] == 12 and f["received"] == 10
    assert f["intended"].losses == 2 and f["intended"].count == 10
    assert [s[0] for s in f["samples"]] == [5, 6, 9, 10, 11, 12, 13, 14, 15, 16]


def test_stalled_publisher_shows_only_in_intended_latency() -> None:
    """After a 100 ms stall, latency from the intended time grows; from the actual time it does not."""
    n, t0 = 300, MS
    sent, recv = _arrays(n)
    for i in range(n):
        want = intended_ns(t0, i, 1e6)
        sent[i] = max(want, t0 + 200 * MS) if i >= 100 else want  # stall from message 100 to 200 ms
        recv[i] = sent[i] + 80_000
    f = analyse(t0=t0, interval_ns=1e6, warmup=0, sent_ns=sent, recv_ns=recv)
    assert f["intended"].percentile(100) >= 100 * MS
    assert f["actual"].percentile(100) < 100_000
    assert f["send_lag"].percentile(100) >= 99 * MS


def test_bulk_recording_matches_value_by_value_recording() -> None:
    """The bulk path (``record_array``) gives the very same histogram, exact mean included."""
    import random

    import numpy as np

    from tickpath.stats import LatencyRecorder

    rng = random.Random(8)
    values = (
        [rng.randint(1, 3_000) for _ in range(2_000)]
        + [int(rng.lognormvariate(12, 2)) + 1 for _ in range(20_000)]
        + [2_047, 2_048, 2_049, 4_095, 4_096]
    )
    one_by_one = LatencyRecorder()
    for v in values:
        one_by_one.record(v)
    bulk = LatencyRecorder()
    bulk.record_array(np.array(values, dtype=np.int64))
    assert bulk.count == one_by_one.count == len(values)
    for p in (0, 10, 50, 90, 99, 99.9, 99.99, 100):
        assert bulk.percentile(p) == one_by_one.percentile(p), p
    assert LatencyRecorder.decode(bulk.encode()).percentile(99) == one_by_one.percentile(99)
    assert bulk.mean() == one_by_one.mean() > 0  # the old bulk path left the exact sum at 0
