"""``tickpath gcp``: the Google Cloud side of the feed (Pub/Sub topics, BigQuery tables and the
subscriptions between them), planned as data and applied idempotently."""

from tickpath.gcp.apply import Backend, GoogleBackend, StepResult, apply_plan, clear_tables, raise_on_failure
from tickpath.gcp.plan import GcpConfig, Step, setup_plan, table_schema

__all__ = [
    "Backend",
    "GcpConfig",
    "GoogleBackend",
    "Step",
    "StepResult",
    "apply_plan",
    "clear_tables",
    "raise_on_failure",
    "setup_plan",
    "table_schema",
]
