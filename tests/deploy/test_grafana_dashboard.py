"""deploy/grafana/tickpath-dashboard.json: every panel's query names only metrics that the real feed,
ingest and simulator export (scraped from their /metrics endpoints in one live run), and every
metric they export has a panel."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.feed.helpers import all_synced, feed_config
from tests.ingest.support import nats_cluster
from tickpath.feed import Feed
from tickpath.ingest import IngestConfig, IngestResult, run_ingest
from tickpath.sim import SimConfig, Simulator

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tickpath-dashboard.json"
# PromQL words that look like metric names but are not.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
KEYWORDS |= {"offset", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels, keywords or numbers)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range selectors
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)  # label lists
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group() in KEYWORDS:
            continue  # a function call, or a keyword
        names.add(m.group())
    return names


def _panels(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in node.get("panels", []):
        out.append(p)
        out.extend(_panels(p))  # a collapsed row holds its panels
    return out


def unknown_metrics(dashboard: dict[str, Any], exported: set[str]) -> dict[str, list[str]]:
    """Panel title -> the names its queries read that nothing exports (also: a query reading none)."""
    bad: dict[str, list[str]] = {}
    for p in _panels(dashboard):
        for t in p.get("targets", []):
            names = metric_names(t["expr"])
            missing = sorted(names - exported) or ([] if names else [f"(no metric in {t['expr']!r})"])
            if missing:
                bad.setdefault(p["title"], []).extend(missing)
    return bad


def sample_names(text: str) -> set[str]:
    """Every series name a scrape can hold, from its families' types (also those with no sample yet)."""
    out: set[str] = set()
    for fam in text_string_to_metric_families(text):
        if fam.type == "counter":
            out.add(fam.name + "_total")
        elif fam.type == "histogram":
            out |= {fam.name + "_bucket", fam.name + "_sum", fam.name + "_count"}
        else:
            out.add(fam.name)
    return out


def _load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


async def _scrape(port: int) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        assert r.status == 200
        return await r.text()


async def _until(cond: Callable[[], bool], what: str, task: Awaitable[Any] | None = None) -> None:
    async with asyncio.timeout(30):
        while not cond():
            if isinstance(task, asyncio.Task) and task.done():
                raise AssertionError(f"{what}: the run ended first: {task.result()!r}")
            await asyncio.sleep(0.05)


async def _exported(tmp: Path) -> set[str]:
    """Series names scraped from a live sim, a feed into JetStream and an ingest out of it."""
    sim = Simulator(SimConfig(venues=("futures",), symbols=("BTCUSDT",), rate=200.0, book_levels=40))
    async with nats_cluster() as c, sim:
        text = [await _scrape((await sim.serve_metrics()).port)]
        nats_url = f"{c.client_urls[0]}?spool={tmp / 'spool'}&ack_timeout_s=1"
        feed = Feed(feed_config(sim.endpoint("futures"), "futures", ("BTCUSDT",), sinks=(nats_url,), metrics_port=0))
        feed_task = asyncio.create_task(feed.run())
        seen: list[IngestResult] = []
        ingest: asyncio.Task[IngestResult] | None = None
        try:
            # ingest starts once the feed has created the stream
            await _until(lambda: feed.engine is not None and all_synced(feed), "feed in sync", feed_task)
            cfg = IngestConfig(c.client_urls[0], f"duckdb:{tmp / 'bus.duckdb'}", batch=50, metrics_port=0)
            ingest = asyncio.create_task(run_ingest(cfg, progress=seen.append))
            await _until(lambda: bool(seen) and seen[-1].messages > 0, "ingest committed", ingest)
            feed_port, ingest_port = feed.snapshot().metrics_port, seen[-1].metrics_port
            assert feed_port is not None and ingest_port is not None
            text += [await _scrape(feed_port), await _scrape(ingest_port)]
        finally:
            feed.stop()
            await feed_task
            if ingest is not None:
                ingest.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await ingest
    return set().union(*(sample_names(t) for t in text))


@pytest.mark.integration
async def test_every_panel_reads_exported_metrics_and_every_metric_has_a_panel(tmp_path: Path) -> None:
    """No panel names a metric the code does not export; each exported feed, ingest and sim family is charted."""
    exported = await _exported(tmp_path)
    dash = _load()
    assert unknown_metrics(dash, exported) == {}
    charted = {n for p in _panels(dash) for t in p.get("targets", []) for n in metric_names(t["expr"])}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported if n.startswith("tickpath_")}
    uncharted = {f for f in families if not any(n == f or n.startswith(f + "_") for n in charted)}
    assert not uncharted, f"exported but not on the dashboard: {sorted(uncharted)}"
    for prefix in ("tickpath_feed_", "tickpath_ingest_", "tickpath_sim_"):
        assert any(n.startswith(prefix) for n in exported), prefix


def test_the_check_catches_a_misspelt_or_foreign_metric() -> None:
    """A panel reading tickpath_feed_gap_total (the counter is gaps) or `up` is reported by name."""
    dash = copy.deepcopy(_load())
    exported = {n for p in _panels(dash) for t in p.get("targets", []) for n in metric_names(t["expr"])}
    assert unknown_metrics(dash, exported) == {}
    dash["panels"].append(
        {"title": "typo", "targets": [{"expr": 'sum by (venue) (rate(tickpath_feed_gap_total{venue="spot"}[5m]))'}]}
    )
    dash["panels"].append({"title": "foreign", "targets": [{"expr": "up == 0"}, {"expr": "vector(1)"}]})
    assert unknown_metrics(dash, exported) == {
        "typo": ["tickpath_feed_gap_total"],
        "foreign": ["up", "(no metric in 'vector(1)')"],
    }


def test_metric_names_skips_functions_labels_and_numbers() -> None:
    """Only the series names of an expression count."""
    expr = (
        "histogram_quantile(0.99, sum by (le, venue) (rate(tickpath_feed_receipt_minus_event_seconds_bucket"
        '{venue=~"spot|futures"}[5m]))) > 1e-3 or on (venue) tickpath_feed_queue_depth offset 5m'
    )
    assert metric_names(expr) == {"tickpath_feed_receipt_minus_event_seconds_bucket", "tickpath_feed_queue_depth"}


def test_dashboard_has_feed_ingest_and_data_quality_rows_on_one_datasource() -> None:
    """Three rows the issue asks for, unique panel ids, every query on the chosen Prometheus."""
    dash = _load()
    rows = [p["title"] for p in _panels(dash) if p["type"] == "row"]
    assert rows[:3] == ["Feed", "Ingest", "Data quality (live signals of what dq checks)"]
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids))
    for p in _panels(dash):
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
