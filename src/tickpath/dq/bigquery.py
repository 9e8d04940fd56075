"""Runs check queries on BigQuery: the same check SQL, transpiled by sqlglot to BigQuery's dialect,
with every table read bounded by a partition filter on ``event_date`` (see :mod:`tickpath.dq.sql`).

The client calls are thin: one query job per check, with a byte cap so a mistake cannot bill a
whole-table scan, and Google's errors translated to tickpath's where they enter.
"""

from __future__ import annotations

import re
from typing import Any

from tickpath.dq.sql import Dialect
from tickpath.errors import ConfigError, ConnectionFailedError, InfraError, TickpathError

_DATASET_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\.[A-Za-z0-9_]{1,1024}$")
DEFAULT_MAX_BYTES = 50 * 1024**3  # 50 GiB per query


def parse_dataset(text: str) -> tuple[str, str]:
    """``PROJECT.DATASET`` split and validated (GCP project ids: 6-30 chars, lower case)."""
    if not _DATASET_RE.match(text):
        raise ConfigError(f"--bigquery expects PROJECT.DATASET (e.g. my-project.tickpath), got {text!r}")
    project, _, dataset = text.partition(".")
    return project, dataset


class BigQueryEngine:
    """Query jobs in ``PROJECT.DATASET``; credentials come from Application Default Credentials."""

    dialect: Dialect = "bigquery"
    writer_gone = False  # a dataset shows no writer: a session without its close record may be running

    def __init__(
        self,
        dataset: str,
        *,
        location: str | None = None,
        max_bytes_billed: int = DEFAULT_MAX_BYTES,
        client: Any = None,
    ) -> None:
        self.project, ds = parse_dataset(dataset)
        self.dataset = f"{self.project}.{ds}"
        self.name = f"bigquery {self.dataset}"
        self._location = location
        self._max_bytes = max_bytes_billed
        if client is None:
            try:
                from google.cloud import bigquery
            except ImportError as exc:
                raise ConfigError("BigQuery needs the gcp extra: pip install 'tickpath[gcp]'") from exc
            try:
                client = bigquery.Client(project=self.project, location=location)
            except Exception as exc:  # google.auth raises DefaultCredentialsError and friends
                raise InfraError(
                    f"cannot create a BigQuery client for {self.project}: {exc} (credentials come "
                    "from Application Default Credentials: `gcloud auth application-default login`, "
                    "or GOOGLE_APPLICATION_CREDENTIALS)"
                ) from exc
        self._client = client
        self.bytes_processed = 0

    def query(self, sql: str) -> list[dict[str, Any]]:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(maximum_bytes_billed=self._max_bytes, use_legacy_sql=False)
        try:
            job = self._client.query(sql, job_config=config, location=self._location)
            rows = job.result()
        except gexc.BadRequest as exc:
            raise TickpathError(f"BigQuery rejected the query: {exc.message}") from exc
        except gexc.NotFound as exc:
            raise ConfigError(f"BigQuery: {exc.message}; run `tickpath gcp setup` first") from exc
        except gexc.Forbidden as exc:
            raise ConfigError(f"BigQuery: permission denied: {exc.message}") from exc
        except gexc.GoogleAPICallError as exc:
            raise ConnectionFailedError(f"BigQuery call failed: {exc}") from exc
        self.bytes_processed += int(getattr(job, "total_bytes_processed", 0) or 0)
        return [dict(row.items()) for row in rows]
