"""``ingest --metrics-port``: /metrics of a live run against a real nats-server (lag, commit time,
redeliveries, acks pending), and bad ports as one-line errors."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.support import make_events, nats_cluster
from tickpath.cli.main import main
from tickpath.ingest import IngestConfig, IngestResult, run_ingest
from tickpath.ingest.metrics import delivery_facts
from tickpath.sinks.nats import NatsSink

FAST_SINK = {"ack_timeout_s": 0.5, "backpressure_s": 0.3, "close_timeout_s": 20.0}


async def _publish(url: str, n: int, spool: Path) -> None:
    sink = NatsSink.from_url(url, spool=str(spool), **FAST_SINK)  # type: ignore[arg-type]
    await sink.start()
    await sink.write(make_events(n))
    await sink.close()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_delivery_facts_reads_the_ack_subjects() -> None:
    """Delivery counts above 1 are redeliveries; pending and store time come from the last subject."""
    replies = [
        b"$JS.ACK.S.d.1.1.1.1700000000000000001.9",
        b"$JS.ACK.S.d.2.2.2.1700000000000000002.8",
        b"$JS.ACK.S.d.11.3.3.1700000000000000003.7",
        b"$JS.ACK.S.d.1.4.4.1700000000000000004.6",
    ]
    assert delivery_facts(replies) == (2, 6, 1700000000000000004)
    v2 = [b"$JS.ACK.dom.ACCHASH.S.d.3.5.5.1700000000000000005.4.tok"]
    assert delivery_facts(v2) == (1, 4, 1700000000000000005)
    assert delivery_facts([b"_INBOX.x.y"]) is None and delivery_facts([]) is None


@pytest.mark.integration
async def test_metrics_show_messages_redeliveries_lag_and_commit_time(tmp_path: Path) -> None:
    """100 messages a crashed reader left unacknowledged come back as 100 redeliveries; at the end
    nothing is pending, every message is counted once, and one commit time per batch."""
    async with nats_cluster() as c:
        url = c.client_urls[0]
        await _publish(url, 450, tmp_path / "spool")
        # A reader that takes 100 messages and dies without acknowledging them (ack wait 1 s).
        nc = await nats.connect(url)
        js = nc.jetstream()
        from nats.js.api import AckPolicy, ConsumerConfig

        await js.add_consumer(
            "TICKPATH",
            ConsumerConfig(
                durable_name="tickpath-ingest", ack_policy=AckPolicy.EXPLICIT, filter_subject="tickpath.>", ack_wait=1.0
            ),
        )
        psub = await js.pull_subscribe_bind(durable="tickpath-ingest", stream="TICKPATH")
        held = await psub.fetch(100, timeout=5)
        assert len(held) == 100
        await nc.close()

        seen: list[IngestResult] = []

        def keep(r: IngestResult) -> None:
            seen[:] = [r]

        task = asyncio.create_task(
            run_ingest(
                IngestConfig(url, f"duckdb:{tmp_path / 'b.duckdb'}", batch=100, fetch_timeout_s=0.2, metrics_port=0),
                progress=keep,
            )
        )
        try:
            async with asyncio.timeout(30):
                while not seen or seen[0].messages < 450:
                    assert not task.done(), task.result()
                    await asyncio.sleep(0.05)
            port = seen[0].metrics_port
            assert port
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    got = _samples(text)
    lab = (("durable", "tickpath-ingest"), ("stream", "TICKPATH"))
    assert got[("tickpath_ingest_messages_total", lab)] == 450
    assert got[("tickpath_ingest_redeliveries_total", lab)] == 100
    assert got[("tickpath_ingest_duplicates_total", lab)] == 0
    rows = {dict(k[1])["table"]: v for k, v in got.items() if k[0] == "tickpath_ingest_rows_total"}
    assert rows == {"trades": 150, "tickers": 150, "l2": 150}
    assert got[("tickpath_ingest_acks_pending", lab)] == 0
    assert got[("tickpath_ingest_lag_messages", lab)] == 0
    # the last batch was redelivered after the 1 s ack wait: its newest message is older than that
    assert got[("tickpath_ingest_lag_seconds", lab)] >= 0.9
    batches = got[("tickpath_ingest_batches_total", lab)]
    assert batches >= 5 and got[("tickpath_ingest_commit_seconds_count", lab)] == batches
    assert got[("tickpath_ingest_commit_seconds_bucket", tuple(sorted((*lab, ("le", "+Inf")))))] == batches
    assert got[("tickpath_ingest_commit_seconds_sum", lab)] > 0


@pytest.mark.integration
async def test_lag_is_what_the_stream_still_holds_for_the_consumer(tmp_path: Path) -> None:
    """After 100 of 450 messages, in batches of 50, the consumer's lag is the 350 not yet delivered."""
    async with nats_cluster() as c:
        url = c.client_urls[0]
        await _publish(url, 450, tmp_path / "spool")
        res = await run_ingest(
            IngestConfig(url, f"duckdb:{tmp_path / 'l.duckdb'}", batch=50, fetch_timeout_s=0.2, max_messages=100)
        )
    assert res.messages == 100 and res.batches == 2
    assert (res.lag_messages, res.acks_pending, res.redeliveries) == (350, 0, 0)
    assert res.commit_time.count == 2


def test_metrics_port_out_of_range_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--metrics-port 70000: one line naming the port, exit 2, before any connection."""
    argv = ["ingest", "--from", "nats://127.0.0.1:1", "--to", f"duckdb:{tmp_path / 'x.duckdb'}"]
    assert main([*argv, "--metrics-port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "metrics port 70000 out of range" in err and "Traceback" not in err


def test_metrics_port_in_use_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A taken --metrics-port is exit 2 with the reason, and no store is created."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "x.duckdb"
        assert (
            main(["ingest", "--from", "nats://127.0.0.1:1", "--to", f"duckdb:{db}", "--metrics-port", str(port)]) == 2
        )
    err = capsys.readouterr().err
    assert f"--metrics-port {port} on 127.0.0.1 is already in use" in err
    assert not db.exists()
