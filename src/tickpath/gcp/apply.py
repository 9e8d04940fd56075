"""Applying a plan: an idempotent executor over a small backend interface, and the Google backend.

Idempotent means: a resource that exists *as planned* counts as done; one that exists but differs
(a table partitioned on another column, a subscription writing elsewhere) is a failure, never
silently accepted; "already exists" from a create is only believed after reading the resource back.
Every step's outcome is reported; a step whose prerequisites failed is skipped, not attempted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tickpath.errors import ConfigError, InfraError
from tickpath.gcp.plan import LABELS, TICKPATH_TABLES, GcpConfig, Step
from tickpath.logs import log_event

log = logging.getLogger(__name__)

Status = Literal["created", "updated", "exists", "failed", "skipped"]


class Backend(Protocol):
    """Applies one step (returning created / updated / exists) or raises :class:`InfraError`."""

    def apply(self, step: Step) -> Status: ...

    def project_number(self, project: str) -> str: ...

    def truncate(self, table_id: str) -> Status: ...


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: Status
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.step.to_dict(), "status": self.status, "message": self.message}


def apply_plan(
    steps: list[Step], backend: Backend, on_result: Callable[[StepResult], None] | None = None
) -> list[StepResult]:
    """Apply ``steps`` in order; returns every outcome (check for ``failed`` ones)."""
    done: dict[str, Status] = {}
    results = []
    for step in steps:
        blocked = [n for n in step.needs if done.get(n) in (None, "failed", "skipped")]
        if blocked:
            res = StepResult(step, "skipped", f"needs {', '.join(blocked)}")
        else:
            try:
                res = StepResult(step, backend.apply(step))
            except InfraError as exc:
                res = StepResult(step, "failed", str(exc))
        done[step.key] = res.status
        log_event(log, logging.INFO, "gcp_step", step=step.key, status=res.status)
        results.append(res)
        if on_result:
            on_result(res)
    return results


def raise_on_failure(results: list[StepResult]) -> None:
    bad = [r for r in results if r.status in ("failed", "skipped")]
    if bad:
        lines = "; ".join(f"{r.step.key}: {r.status} ({r.message})" for r in bad)
        raise InfraError(f"{len(bad)} of {len(results)} steps did not complete: {lines}")


def clear_tables(cfg: GcpConfig, backend: Backend) -> list[tuple[str, Status, str]]:
    """Truncate tickpath's own tables (and nothing else) in the configured dataset; every outcome."""
    out: list[tuple[str, Status, str]] = []
    for t in TICKPATH_TABLES:
        try:
            out.append((cfg.table_id(t), backend.truncate(cfg.table_id(t)), ""))
        except InfraError as exc:
            out.append((cfg.table_id(t), "failed", str(exc)))
    return out


# --- Google ---------------------------------------------------------------------------------------


class GoogleBackend:
    """The thin layer over google-cloud-pubsub and google-cloud-bigquery (Application Default
    Credentials). Google's exceptions are translated here, where they enter."""

    def __init__(self, cfg: GcpConfig) -> None:
        try:
            from google.cloud import bigquery, pubsub_v1  # type: ignore[attr-defined]
        except ImportError as exc:
            raise ConfigError("gcp needs the gcp extra: pip install 'tickpath[gcp]'") from exc
        self.cfg = cfg
        try:
            self.bq = bigquery.Client(project=cfg.project, location=cfg.location)
            self.publisher = pubsub_v1.PublisherClient()
            self.subscriber = pubsub_v1.SubscriberClient()
        except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and friends
            raise InfraError(
                f"cannot create Google clients for {cfg.project}: {exc} (credentials come from "
                "Application Default Credentials: `gcloud auth application-default login`, or "
                "GOOGLE_APPLICATION_CREDENTIALS)"
            ) from exc

    # paths
    def _topic(self, name: str) -> str:
        return f"projects/{self.cfg.project}/topics/{name}"

    def _sub(self, name: str) -> str:
        return f"projects/{self.cfg.project}/subscriptions/{name}"

    def apply(self, step: Step) -> Status:
        from google.api_core import exceptions as gexc

        handler = getattr(self, f"_apply_{step.kind}")
        try:
            return handler(step)  # type: ignore[no-any-return]
        except InfraError:
            raise
        except gexc.GoogleAPICallError as exc:
            raise InfraError(f"{step.describe()}: {type(exc).__name__}: {exc.message}") from exc

    def _apply_topic(self, step: Step) -> Status:
        from google.api_core import exceptions as gexc

        path = self._topic(step.name)
        try:
            self.publisher.get_topic(topic=path)
            return "exists"
        except gexc.NotFound:
            pass
        try:
            self.publisher.create_topic(request={"name": path, "labels": step.spec["labels"]})
            return "created"
        except gexc.AlreadyExists:
            self.publisher.get_topic(topic=path)  # created meanwhile: believe it only once read back
            return "exists"

    def _apply_dataset(self, step: Step) -> Status:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        try:
            ds = self.bq.get_dataset(step.name)
        except gexc.NotFound:
            ds = bigquery.Dataset(step.name)
            ds.location = step.spec["location"]
            ds.labels = dict(step.spec["labels"])
            self.bq.create_dataset(ds)
            return "created"
        if ds.location and ds.location.upper() != step.spec["location"].upper():
            raise InfraError(f"dataset {step.name} is in {ds.location}, the plan says {step.spec['location']}")
        return "exists"

    def _schema(self, fields: list[dict[str, Any]]) -> list[Any]:
        from google.cloud import bigquery

        return [
            bigquery.SchemaField(f["name"], f["type"], mode=f["mode"], fields=self._schema(f.get("fields", [])))
            for f in fields
        ]

    def _apply_table(self, step: Step) -> Status:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        spec = step.spec
        try:
            table = self.bq.get_table(step.name)
        except gexc.NotFound:
            table = bigquery.Table(step.name, schema=self._schema(spec["schema"]))
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=spec["partition_column"]
            )
            table.require_partition_filter = spec["require_partition_filter"]
            table.clustering_fields = spec["clustering"]
            table.labels = dict(spec["labels"])
            self.bq.create_table(table)
            return "created"
        part = table.time_partitioning
        if part is None or part.field != spec["partition_column"]:
            raise InfraError(
                f"table {step.name} exists but is not partitioned by {spec['partition_column']}; "
                "move it away or pick another --dataset"
            )
        have = {f.name for f in table.schema}
        missing = [f for f in spec["schema"] if f["name"] not in have]
        if missing:  # columns are only ever added, which BigQuery allows in place
            table.schema = [*table.schema, *self._schema(missing)]
            self.bq.update_table(table, ["schema"])
            return "updated"
        return "exists"

    def _apply_dataset_iam(self, step: Step) -> Status:
        from google.cloud import bigquery

        ds = self.bq.get_dataset(step.name)
        email = step.spec["member"].removeprefix("serviceAccount:")
        entries = list(ds.access_entries)
        if any(e.role == step.spec["role"] and e.entity_id == email for e in entries):
            return "exists"
        entries.append(bigquery.AccessEntry(role=step.spec["role"], entity_type="userByEmail", entity_id=email))
        ds.access_entries = entries
        self.bq.update_dataset(ds, ["access_entries"])  # etag-checked: a concurrent edit fails, not lost
        return "updated"

    def _grant(self, client: Any, resource: str, role: str, member: str) -> Status:
        policy = client.get_iam_policy(request={"resource": resource})
        for binding in policy.bindings:
            if binding.role == role and member in binding.members:
                return "exists"
        policy.bindings.add(role=role, members=[member])
        client.set_iam_policy(request={"resource": resource, "policy": policy})
        return "updated"

    def _apply_topic_iam(self, step: Step) -> Status:
        return self._grant(self.publisher, self._topic(step.name), step.spec["role"], step.spec["member"])

    def _apply_subscription_iam(self, step: Step) -> Status:
        return self._grant(self.subscriber, self._sub(step.name), step.spec["role"], step.spec["member"])

    def _apply_subscription(self, step: Step) -> Status:
        from google.api_core import exceptions as gexc

        spec = step.spec
        path = self._sub(step.name)
        try:
            sub = self.subscriber.get_subscription(subscription=path)
        except gexc.NotFound:
            request = {
                "name": path,
                "topic": self._topic(spec["topic"]),
                "labels": spec["labels"],
                "bigquery_config": {
                    "table": spec["table"],
                    "use_table_schema": spec["use_table_schema"],
                    "drop_unknown_fields": spec["drop_unknown_fields"],
                    "write_metadata": spec["write_metadata"],
                },
                "dead_letter_policy": {
                    "dead_letter_topic": self._topic(spec["dead_letter_topic"]),
                    "max_delivery_attempts": spec["max_delivery_attempts"],
                },
            }
            try:
                self.subscriber.create_subscription(request=request)
                return "created"
            except gexc.AlreadyExists:
                sub = self.subscriber.get_subscription(subscription=path)
        if sub.bigquery_config.table != spec["table"] or sub.topic != self._topic(spec["topic"]):
            raise InfraError(
                f"subscription {step.name} exists but writes {sub.topic} to "
                f"{sub.bigquery_config.table or 'no BigQuery table'}; the plan says {spec['table']}"
            )
        return "exists"

    def project_number(self, project: str) -> str:
        """The project's number (for the Pub/Sub service agent), from Cloud Resource Manager."""
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        try:
            creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            resp = AuthorizedSession(creds).get(
                f"https://cloudresourcemanager.googleapis.com/v1/projects/{project}", timeout=30
            )
        except Exception as exc:  # auth and transport errors of google-auth / requests
            raise InfraError(f"cannot look up the number of project {project}: {exc}") from exc
        if resp.status_code != 200:
            raise InfraError(
                f"cannot look up the number of project {project}: HTTP {resp.status_code}; pass --project-number"
            )
        return str(resp.json()["projectNumber"])

    def truncate(self, table_id: str) -> Status:
        from google.api_core import exceptions as gexc

        try:
            table = self.bq.get_table(table_id)
        except gexc.NotFound:
            return "skipped"
        if (table.labels or {}).get("managed-by") != LABELS["managed-by"]:
            raise InfraError(f"{table_id} is not labelled managed-by=tickpath; refusing to truncate it")
        try:
            self.bq.query(f"TRUNCATE TABLE `{table_id}`").result()
        except gexc.GoogleAPICallError as exc:
            raise InfraError(f"truncating {table_id} failed: {exc.message}") from exc
        return "updated"
