"""The ``gcp setup`` plan as data, its idempotent application, and ``gcp clear``'s safety."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tickpath.cli.gcp import clear, setup
from tickpath.errors import ConfigError, InfraError
from tickpath.gcp import GcpConfig, Step, apply_plan, raise_on_failure, setup_plan
from tickpath.gcp.plan import TICKPATH_TABLES
from tickpath.tables import SCHEMAS

CFG = GcpConfig(project="tick-proj", dataset="market")
AGENT = "serviceAccount:service-123456@gcp-sa-pubsub.iam.gserviceaccount.com"


class FakeBackend:
    """In-memory GCP: resources by step key; a differing spec or a listed key fails like the API would."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.fail = fail or set()
        self.calls: list[str] = []
        self.truncated: list[str] = []

    def apply(self, step: Step) -> str:
        self.calls.append(step.key)
        if step.key in self.fail:
            raise InfraError(f"{step.describe()}: PermissionDenied: caller lacks permission")
        have = self.resources.get(step.key)
        if have is not None:
            if have != step.spec:
                raise InfraError(f"{step.key} exists but differs from the plan")
            return "exists"
        self.resources[step.key] = step.spec
        return "updated" if step.kind.endswith("_iam") else "created"

    def project_number(self, project: str) -> str:
        return "123456"

    def truncate(self, table_id: str) -> str:
        self.truncated.append(table_id)
        return "updated"


def test_plan_has_topics_dead_letter_tables_grants_and_subscriptions() -> None:
    """The plan names every resource of the issue, with the Pub/Sub agent's dataEditor grant."""
    steps = setup_plan(CFG, "123456")
    by_kind: dict[str, list[Step]] = {}
    for s in steps:
        by_kind.setdefault(s.kind, []).append(s)
    assert [s.name for s in by_kind["topic"]] == [
        "crypto.binance.trades",
        "crypto.binance.ticker",
        "crypto.binance.l2",
        "crypto.binance.session",
        "crypto.binance.dead-letter",
    ]
    assert [s.name for s in by_kind["dataset"]] == ["tick-proj.market"]
    assert {s.name for s in by_kind["table"]} == {
        f"tick-proj.market.{t}" for t in ("trades", "tickers", "l2", "feed_sessions")
    }
    (grant,) = by_kind["dataset_iam"]
    assert grant.spec == {"role": "roles/bigquery.dataEditor", "member": AGENT}
    assert by_kind["topic_iam"][0].spec["role"] == "roles/pubsub.publisher"
    subs = {s.name: s.spec for s in by_kind["subscription"]}
    assert subs["crypto.binance.ticker.bigquery"]["table"] == "tick-proj.market.tickers"
    # The feed's session rows (cadences, clock offset) reach the table dq reads them from.
    assert subs["crypto.binance.session.bigquery"]["table"] == "tick-proj.market.feed_sessions"
    assert sorted(subs) == sorted(f"crypto.binance.{c}.bigquery" for c in ("trades", "ticker", "l2", "session"))
    assert {s.name for s in by_kind["subscription_iam"]} == set(subs)
    for spec in subs.values():
        assert spec["use_table_schema"] and spec["dead_letter_topic"] == "crypto.binance.dead-letter"
    assert all(s.spec["role"] == "roles/pubsub.subscriber" for s in by_kind["subscription_iam"])


def test_tables_are_partitioned_by_event_date_and_clustered_by_symbol() -> None:
    """Every table has the canonical columns plus event_date, DAY-partitioned on it, clustered by symbol."""
    for s in setup_plan(CFG, "1"):
        if s.kind != "table":
            continue
        table = s.name.rsplit(".", 1)[1]
        names = [f["name"] for f in s.spec["schema"]]
        assert names == [f.name for f in SCHEMAS[table]] + ["event_date"]
        assert s.spec["partition_column"] == "event_date"
        assert s.spec["clustering"][0] == ("venue" if table == "feed_sessions" else "symbol")
        if table == "l2":
            bids = next(f for f in s.spec["schema"] if f["name"] == "bids")
            assert bids["mode"] == "REPEATED" and bids["type"] == "RECORD"
            assert [f["name"] for f in bids["fields"]] == ["price", "qty"]


def test_dataset_grant_precedes_every_subscription() -> None:
    """Pub/Sub checks table access when a BigQuery subscription is created, so the grant comes first."""
    keys = [s.key for s in setup_plan(CFG, "1")]
    grant = keys.index("dataset_iam:tick-proj.market")
    assert all(keys.index(k) > grant for k in keys if k.startswith("subscription:"))
    for s in setup_plan(CFG, "1"):
        assert all(keys.index(n) < keys.index(s.key) for n in s.needs)


def test_setup_is_idempotent() -> None:
    """A second run creates nothing and reports every step as existing."""
    backend = FakeBackend()
    steps = setup_plan(CFG, "123456")
    first = apply_plan(steps, backend)
    assert {r.status for r in first} == {"created", "updated"}
    second = apply_plan(steps, backend)
    assert {r.status for r in second} == {"exists"}
    raise_on_failure(second)


def test_failure_is_reported_and_dependents_are_skipped() -> None:
    """A denied dataset grant is a failure; subscriptions needing it are skipped; the rest still runs."""
    backend = FakeBackend(fail={"dataset_iam:tick-proj.market"})
    results = apply_plan(setup_plan(CFG, "123456"), backend)
    status = {r.step.key: r.status for r in results}
    assert status["dataset_iam:tick-proj.market"] == "failed"
    assert all(v == "skipped" for k, v in status.items() if k.startswith(("subscription:", "subscription_iam:")))
    assert status["topic_iam:crypto.binance.dead-letter"] == "updated"
    assert not any(k.startswith("subscription:") for k in backend.calls)
    with pytest.raises(InfraError, match="PermissionDenied"):
        raise_on_failure(results)


def test_existing_resource_that_differs_is_not_masked() -> None:
    """An existing table set up differently fails the step instead of counting as 'already exists'."""
    backend = FakeBackend()
    steps = setup_plan(CFG, "1")
    table = next(s for s in steps if s.kind == "table")
    backend.resources[table.key] = {**table.spec, "partition_column": "ingest_date"}
    results = apply_plan(steps, backend)
    assert next(r for r in results if r.step.key == table.key).status == "failed"


def _args(**kw: Any) -> argparse.Namespace:
    base = dict(
        project="tick-proj",
        dataset="market",
        location="US",
        json=True,
        dry_run=False,
        project_number=None,
        channels="trades,ticker,l2",
        max_delivery_attempts=5,
        yes=False,
    )
    base.update(kw)
    return argparse.Namespace(**base)


def test_dry_run_prints_the_plan_and_touches_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run --json prints every step with a placeholder project number, without any backend."""
    assert setup(_args(dry_run=True)) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan) == len(setup_plan(CFG, "1"))
    assert any("service-PROJECT_NUMBER@gcp-sa-pubsub" in s["text"] for s in plan)


def test_setup_cli_applies_with_the_looked_up_project_number(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI resolves the project number and applies the plan; a failure exits through InfraError."""
    backend = FakeBackend()
    assert setup(_args(), backend) == 0
    assert "dataset_iam:tick-proj.market" in backend.calls
    assert backend.resources["dataset_iam:tick-proj.market"]["member"] == AGENT
    with pytest.raises(InfraError):
        setup(_args(), FakeBackend(fail={"topic:crypto.binance.l2"}))


def test_clear_needs_confirmation() -> None:
    """clear truncates nothing on a wrong answer, and only tickpath's four tables on the right one."""
    backend = FakeBackend()
    assert clear(_args(json=False), backend, ask=lambda _prompt: "nope") == 1
    assert backend.truncated == []
    assert clear(_args(json=False), backend, ask=lambda _prompt: "market") == 0
    assert backend.truncated == [f"tick-proj.market.{t}" for t in TICKPATH_TABLES]


def test_clear_yes_skips_the_question() -> None:
    """--yes truncates without asking."""
    backend = FakeBackend()

    def never(_prompt: str) -> str:
        raise AssertionError("asked")

    assert clear(_args(yes=True), backend, ask=never) == 0
    assert len(backend.truncated) == len(TICKPATH_TABLES)


@pytest.mark.parametrize(
    "kw", [{"project": "Bad_Project"}, {"dataset": "bad-name"}, {"channels": ("book",)}, {"max_delivery_attempts": 2}]
)
def test_bad_config_is_a_config_error(kw: dict[str, Any]) -> None:
    """Invalid project ids, dataset names, channels and retry counts are rejected up front."""
    with pytest.raises(ConfigError):
        GcpConfig(**{"project": "tick-proj", **kw})


def test_no_credentials_is_exit_8_with_how_to_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gcp setup` and `dq --bigquery` with no usable Application Default Credentials: one line naming
    the project and how to log in, exit 8 (an infrastructure problem), not 2 (bad arguments)."""
    from tickpath.cli.main import main

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    assert main(["gcp", "setup", "--project", "tick-proj"]) == 8
    err = capsys.readouterr().err
    assert "cannot create Google clients for tick-proj" in err and "application-default login" in err
    assert "Traceback" not in err
    assert main(["dq", "--bigquery", "tick-proj.market", "--since", "1h"]) == 8
    err = capsys.readouterr().err
    assert "cannot create a BigQuery client for tick-proj" in err and "Traceback" not in err
