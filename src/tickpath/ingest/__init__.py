"""Loading the bus into storage: ``tickpath ingest`` (JetStream -> DuckDB / Parquet, exactly once)."""

from tickpath.ingest.consumer import IngestConfig, IngestResult, run_ingest
from tickpath.ingest.store import DuckDBStore, ParquetStore, Store, open_store

__all__ = ["DuckDBStore", "IngestConfig", "IngestResult", "ParquetStore", "Store", "open_store", "run_ingest"]
