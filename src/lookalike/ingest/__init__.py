"""Catalog ingestion: read records (folder, CSV, JSONL), embed, store, index."""

from lookalike.ingest.pipeline import IngestSummary, ingest_records
from lookalike.ingest.readers import CatalogRead, CatalogRecord, RowError, read_catalog

__all__ = [
    "CatalogRead",
    "CatalogRecord",
    "IngestSummary",
    "RowError",
    "ingest_records",
    "read_catalog",
]
