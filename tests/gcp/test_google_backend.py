"""The Google backend's own logic (read-back after AlreadyExists, refusing differing resources,
label-guarded truncation), driven through stand-ins for the Google clients."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from tickpath.errors import InfraError
from tickpath.gcp.apply import GoogleBackend
from tickpath.gcp.plan import GcpConfig, setup_plan

CFG = GcpConfig(project="tick-proj", dataset="market", project_number="42")
STEPS = {s.key: s for s in setup_plan(CFG, "42")}


def backend(**clients: Any) -> GoogleBackend:
    b = GoogleBackend.__new__(GoogleBackend)  # no credentials: the clients are stand-ins
    b.cfg = CFG
    for name, client in clients.items():
        setattr(b, name, client)
    return b


class Publisher:
    def __init__(self, exists_after_race: bool = True) -> None:
        self.created: list[dict[str, Any]] = []
        self.exists = False
        self.race = exists_after_race

    def get_topic(self, topic: str) -> Any:
        if not self.exists:
            raise gexc.NotFound(f"topic {topic}")
        return SimpleNamespace(name=topic)

    def create_topic(self, request: dict[str, Any]) -> Any:
        self.created.append(request)
        self.exists = self.race
        raise gexc.AlreadyExists("created by someone else meanwhile")


def test_topic_already_exists_is_believed_only_after_reading_back() -> None:
    """AlreadyExists on create counts as 'exists' when the topic reads back, and fails when it does not."""
    step = STEPS["topic:crypto.binance.trades"]
    pub = Publisher()
    assert backend(publisher=pub).apply(step) == "exists"
    assert pub.created[0]["name"] == "projects/tick-proj/topics/crypto.binance.trades"
    with pytest.raises(InfraError, match="NotFound"):
        backend(publisher=Publisher(exists_after_race=False)).apply(step)


def test_subscription_writing_elsewhere_is_a_failure() -> None:
    """An existing subscription with another BigQuery table is reported, not accepted."""
    sub = SimpleNamespace(
        topic="projects/tick-proj/topics/crypto.binance.l2", bigquery_config=SimpleNamespace(table="tick-proj.other.l2")
    )
    client = SimpleNamespace(get_subscription=lambda subscription: sub)
    with pytest.raises(InfraError, match=r"the plan says tick-proj\.market\.l2"):
        backend(subscriber=client).apply(STEPS["subscription:crypto.binance.l2.bigquery"])


def test_subscription_is_created_with_bigquery_config_and_dead_letter_policy() -> None:
    """A missing subscription is created writing to its table with the table schema and a dead-letter policy."""
    made: list[dict[str, Any]] = []

    def get_subscription(subscription: str) -> Any:
        raise gexc.NotFound(subscription)

    client = SimpleNamespace(
        get_subscription=get_subscription, create_subscription=lambda request: made.append(request)
    )
    assert backend(subscriber=client).apply(STEPS["subscription:crypto.binance.trades.bigquery"]) == "created"
    req = made[0]
    assert req["bigquery_config"]["table"] == "tick-proj.market.trades"
    assert req["bigquery_config"]["use_table_schema"] is True
    assert req["dead_letter_policy"] == {
        "dead_letter_topic": "projects/tick-proj/topics/crypto.binance.dead-letter",
        "max_delivery_attempts": 5,
    }


def test_permission_denied_becomes_infra_error() -> None:
    """A Google PermissionDenied surfaces as InfraError naming the step."""

    def denied(**_kw: Any) -> Any:
        raise gexc.PermissionDenied("caller lacks pubsub.topics.get")

    with pytest.raises(InfraError, match="PermissionDenied"):
        backend(publisher=SimpleNamespace(get_topic=denied)).apply(STEPS["topic:crypto.binance.l2"])


def test_truncate_refuses_tables_without_tickpath_label() -> None:
    """clear only truncates tables labelled managed-by=tickpath."""
    queries: list[str] = []
    labels = {"tick-proj.market.l2": {"managed-by": "tickpath"}, "tick-proj.market.trades": {}}

    def get_table(table_id: str) -> Any:
        if table_id not in labels:
            raise gexc.NotFound(table_id)
        return SimpleNamespace(labels=labels[table_id])

    bq = SimpleNamespace(
        get_table=get_table, query=lambda sql: queries.append(sql) or SimpleNamespace(result=lambda: None)
    )
    b = backend(bq=bq)
    assert b.truncate("tick-proj.market.l2") == "updated"
    assert queries == ["TRUNCATE TABLE `tick-proj.market.l2`"]
    with pytest.raises(InfraError, match="not labelled"):
        b.truncate("tick-proj.market.trades")
    assert b.truncate("tick-proj.market.tickers") == "skipped"
