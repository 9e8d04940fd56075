"""What ``tickpath gcp setup`` builds, as data: a list of steps a backend applies in order.

Pub/Sub topics ``crypto.binance.<channel>`` and a dead-letter topic; a BigQuery dataset; the tables
of :mod:`tickpath.tables` partitioned by ``event_date`` and clustered by symbol and venue
(feed_sessions by venue); the IAM grants the
Pub/Sub service agent (``service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com``) needs:
``roles/bigquery.dataEditor`` on the dataset to write rows, ``roles/pubsub.publisher`` on the
dead-letter topic and ``roles/pubsub.subscriber`` on each subscription to dead-letter messages;
and one BigQuery subscription per channel writing into its table with the table's schema, plus one
from the session topic ``crypto.binance.session`` into ``feed_sessions`` (the feed's subscriptions and
clock offset, which dq on BigQuery reads).

Order matters: the dataset grant must exist before a BigQuery subscription is created, because
Pub/Sub checks that it may write to the table when the subscription is made.

Publishers must send each event as its table row (``tables.event_row``) in JSON plus ``event_date``
(``YYYY-MM-DD`` of the event time, or of the receipt time when the venue sends none): a BigQuery
subscription maps JSON fields to columns by name and cannot derive columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tickpath.errors import ConfigError
from tickpath.events import CHANNELS
from tickpath.tables import CHANNEL_TABLE, SCHEMAS

TOPIC_PREFIX = "crypto.binance"
LABELS = {"managed-by": "tickpath"}
PARTITION_COLUMN = "event_date"
TICKPATH_TABLES = (*CHANNEL_TABLE.values(), "feed_sessions")
SESSION_TOPIC = "session"  # the feed's session rows: topic crypto.binance.session -> feed_sessions

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


@dataclass(frozen=True)
class GcpConfig:
    project: str
    dataset: str = "tickpath"
    location: str = "US"
    channels: tuple[str, ...] = CHANNELS  # the feed's default three; any of CHANNEL_TABLE may be named
    dead_letter_topic: str = f"{TOPIC_PREFIX}.dead-letter"
    max_delivery_attempts: int = 5
    project_number: str | None = None  # looked up through the API when not given

    def __post_init__(self) -> None:
        if not _PROJECT_RE.match(self.project):
            raise ConfigError(f"GCP project id {self.project!r} must be 6-30 lower-case letters, digits or '-'")
        if not _DATASET_RE.match(self.dataset):
            raise ConfigError(f"BigQuery dataset {self.dataset!r} may hold only letters, digits and '_'")
        unknown = [c for c in self.channels if c not in CHANNEL_TABLE]
        if unknown or not self.channels:
            raise ConfigError(f"unknown channel {', '.join(unknown) or '(none)'}; channels: {', '.join(CHANNEL_TABLE)}")
        if not 5 <= self.max_delivery_attempts <= 100:
            raise ConfigError("Pub/Sub allows 5 to 100 delivery attempts before dead-lettering")
        if self.project_number is not None and not self.project_number.isdigit():
            raise ConfigError(f"project number {self.project_number!r} must be digits")

    def topic(self, channel: str) -> str:
        return f"{TOPIC_PREFIX}.{channel}"

    def subscription(self, channel: str) -> str:
        return f"{TOPIC_PREFIX}.{channel}.bigquery"

    def table_id(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"


def pubsub_agent(project_number: str) -> str:
    return f"service-{project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Step:
    """One resource or grant; ``needs`` names the steps that must have succeeded first."""

    kind: str  # topic | dataset | table | dataset_iam | topic_iam | subscription | subscription_iam
    name: str
    spec: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def describe(self) -> str:
        s = self.spec
        if self.kind == "table":
            return (
                f"table {self.name} partitioned by DAY({s['partition_column']}), clustered by "
                f"{', '.join(s['clustering'])}, {len(s['schema'])} columns"
            )
        if self.kind.endswith("_iam"):
            return f"grant {s['role']} on {self.name} to {s['member']}"
        if self.kind == "subscription":
            return (
                f"subscription {self.name}: {s['topic']} -> BigQuery {s['table']} (table schema), "
                f"dead letters to {s['dead_letter_topic']} after {s['max_delivery_attempts']} attempts"
            )
        if self.kind == "dataset":
            return f"dataset {self.name} in {s['location']}"
        return f"{self.kind} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "spec": self.spec,
            "needs": list(self.needs),
            "text": self.describe(),
        }


def bigquery_type(t: pa.DataType) -> tuple[str, str, list[dict[str, Any]]]:
    """(type, mode, fields) of a BigQuery column for an Arrow type of :mod:`tickpath.tables`."""
    if pa.types.is_list(t):
        inner, _, fields = bigquery_type(t.value_type)
        return inner, "REPEATED", fields
    if pa.types.is_struct(t):
        return "RECORD", "NULLABLE", [bigquery_field(f.name, f.type) for f in t]
    if pa.types.is_string(t):
        return "STRING", "NULLABLE", []
    if pa.types.is_integer(t):
        return "INT64", "NULLABLE", []
    if pa.types.is_boolean(t):  # a candle's closed flag
        return "BOOL", "NULLABLE", []
    raise ConfigError(f"no BigQuery type for {t}")  # pragma: no cover - the schema is fixed


def bigquery_field(name: str, t: pa.DataType) -> dict[str, Any]:
    kind, mode, fields = bigquery_type(t)
    out: dict[str, Any] = {"name": name, "type": kind, "mode": mode}
    if fields:
        out["fields"] = fields
    return out


def table_schema(table: str) -> list[dict[str, Any]]:
    """The BigQuery schema of a tickpath table: its columns plus the ``event_date`` partition column."""
    cols = [bigquery_field(f.name, f.type) for f in SCHEMAS[table]]
    return [*cols, {"name": PARTITION_COLUMN, "type": "DATE", "mode": "NULLABLE"}]


def setup_plan(cfg: GcpConfig, project_number: str) -> list[Step]:
    """Every step of ``gcp setup``, in the order they must be applied."""
    agent = f"serviceAccount:{pubsub_agent(project_number)}"
    dataset_id = f"{cfg.project}.{cfg.dataset}"
    dl = cfg.dead_letter_topic
    # Each channel's topic into its table, and the session rows into feed_sessions.
    feeds = [(c, CHANNEL_TABLE[c]) for c in cfg.channels] + [(SESSION_TOPIC, "feed_sessions")]  # type: ignore[index]
    steps: list[Step] = [Step("topic", cfg.topic(c), {"labels": LABELS}) for c, _ in feeds]
    steps.append(Step("topic", dl, {"labels": LABELS}))
    steps.append(Step("dataset", dataset_id, {"location": cfg.location, "labels": LABELS}))
    steps += [_table_step(cfg, t, dataset_id) for _, t in feeds]
    steps.append(
        Step(
            "dataset_iam",
            dataset_id,
            {"role": "roles/bigquery.dataEditor", "member": agent},
            needs=(f"dataset:{dataset_id}",),
        )
    )
    steps.append(Step("topic_iam", dl, {"role": "roles/pubsub.publisher", "member": agent}, needs=(f"topic:{dl}",)))
    for c, t in feeds:
        steps += _subscription_steps(cfg, c, t, dataset_id, agent)
    return steps


def _table_step(cfg: GcpConfig, table: str, dataset_id: str) -> Step:
    """A partitioned, clustered table; event tables refuse queries without a partition filter."""
    spec = {
        "schema": table_schema(table),
        "partition_column": PARTITION_COLUMN,
        "clustering": ["symbol", "venue"] if table != "feed_sessions" else ["venue"],
        "require_partition_filter": table != "feed_sessions",
        "labels": LABELS,
    }
    return Step("table", cfg.table_id(table), spec, needs=(f"dataset:{dataset_id}",))


def _subscription_steps(cfg: GcpConfig, channel: str, table_name: str, dataset_id: str, agent: str) -> list[Step]:
    """A BigQuery subscription of one topic into its table, and the agent's right to pull from it."""
    table, sub, dl = cfg.table_id(table_name), cfg.subscription(channel), cfg.dead_letter_topic
    spec = {
        "topic": cfg.topic(channel),
        "table": table,
        "use_table_schema": True,
        "drop_unknown_fields": True,
        "write_metadata": False,
        "dead_letter_topic": dl,
        "max_delivery_attempts": cfg.max_delivery_attempts,
        "labels": LABELS,
    }
    needs = (f"topic:{cfg.topic(channel)}", f"table:{table}", f"dataset_iam:{dataset_id}", f"topic:{dl}")
    return [
        Step("subscription", sub, spec, needs=needs),
        Step(
            "subscription_iam",
            sub,
            {"role": "roles/pubsub.subscriber", "member": agent},
            needs=(f"subscription:{sub}",),
        ),
    ]
