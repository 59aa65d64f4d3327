"""Keeps the on-disk index in step with the database, the source of truth."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.embeddings.aspects import AspectLayout
from lookalike.index.base import FilteringIndex, IndexBackend, NoIndexError, ProductIndex
from lookalike.index.parts import PartScannedIndex, small_columns
from lookalike.index.vector_index import FaissBackend, ids_checksum
from lookalike.store.catalog import CatalogStore, ProductFields

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """How the index was obtained: loaded as saved, or rebuilt (and why)."""

    rebuilt: bool
    reason: str | None
    count: int
    first_build: bool = False


class IndexManager:
    """Loads, rebuilds, updates and checks the index of one model version, whatever its
    backend (FAISS by default)."""

    def __init__(
        self,
        store: CatalogStore,
        index_root: Path,
        model_version: str,
        dim: int,
        backend: IndexBackend | None = None,
        layout: AspectLayout | None = None,
    ) -> None:
        self.store = store
        self.model_version = model_version
        self.dim = dim
        self.folder = index_root / re.sub(r"[^A-Za-z0-9._-]+", "_", model_version)
        self.backend: IndexBackend = backend or FaissBackend()
        self.layout = layout

    def load(self) -> tuple[ProductIndex, SyncReport]:
        """The saved index if it matches the database exactly; otherwise a rebuild."""
        ids = self.store.embedding_ids(self.model_version)
        try:
            index = self._with_parts(self.backend.load(self.folder, self.model_version, self.dim))
        except NoIndexError:
            index = self.rebuild()
            return index, SyncReport(True, "no index yet", len(index), first_build=True)
        except ValueError as exc:
            reason: str | None = str(exc)
        else:
            reason = _mismatch(index, ids, self.model_version)
            if reason is None:
                return index, SyncReport(False, None, len(index))
        log.warning("index rebuilt from the database: %s", reason)
        index = self.rebuild()
        return index, SyncReport(True, reason, len(index))

    def rebuild(self, kind: str | None = None) -> ProductIndex:
        """Build from every embedding of the model version in the database, and save."""
        ids, vectors = self.vectors()
        keeps = self.backend.keeps_fields
        fields = self.store.product_fields(self.model_version) if keeps else None
        index = self.backend.build(ids, vectors, self.model_version, self.dim, kind, fields)
        index.save(self.folder)
        return self._with_parts(index)

    def _with_parts(self, index: ProductIndex) -> ProductIndex:
        """``index`` with its vectors' small aspect parts scanned on their own for
        reweighted queries (index/parts.py), when the layout has such parts and the
        backend does not filter itself (Milvus widens its own search instead)."""
        layout = self.layout
        if layout is None or not len(small_columns(layout)) or isinstance(index, FilteringIndex):
            return index
        return PartScannedIndex(index, layout, _StoredVectors(self.store, self.model_version))

    def fields(self, ids: np.ndarray) -> ProductFields | None:
        """The category and price of ``ids`` from the database, for a backend that keeps
        them (None for the others: nothing read)."""
        if not self.backend.keeps_fields or len(ids) == 0:
            return None
        return self.store.product_fields(self.model_version, ids.tolist())

    def update_fields(self, index: ProductIndex, ids: np.ndarray) -> None:
        """Copy a committed metadata-only change (category, price) of ``ids`` to an index
        that keeps those fields; nothing for the others (their filters read the database)."""
        if isinstance(index, FilteringIndex) and (fields := self.fields(ids)) is not None:
            index.update_fields(fields)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) of this model version from the database."""
        chunks = list(self.store.iter_vectors(self.model_version))
        if not chunks:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        return (
            np.concatenate([c[0] for c in chunks]),
            np.concatenate([c[1] for c in chunks]).astype(np.float32),
        )

    def apply(
        self,
        index: ProductIndex,
        add_ids: np.ndarray,
        add_vectors: np.ndarray,
        remove_ids: np.ndarray,
        *,
        save: bool = True,
    ) -> ProductIndex:
        """Apply a committed database change to the index (and save it, unless the caller
        saves later). An index its backend says has outgrown its kind (FAISS: a catalog
        that outgrew exact search, or shrank back) is rebuilt."""
        index.remove(remove_ids)
        index.add(add_ids, add_vectors, self.fields(add_ids))
        if self.backend.outgrown(index):
            return self.rebuild()
        if save:
            index.save(self.folder)
        return index

    def check(self, index: ProductIndex) -> dict[str, Any]:
        """Does the index agree with the database, and how good is its recall?"""
        db_ids = self.store.embedding_ids(self.model_version)
        mismatch = _mismatch(index, db_ids, self.model_version)
        if mismatch is None and isinstance(index, FilteringIndex):
            mismatch = self._fields_mismatch(index)
        ids, vectors = self.vectors()
        return {
            "model_version": self.model_version,
            "backend": self.backend.name,
            "kind": index.manifest.kind,
            "index_count": len(index),
            "database_count": len(db_ids),
            "consistent": mismatch is None,
            "problem": mismatch,
            "nlist": index.manifest.nlist,
            "nprobe": index.manifest.nprobe,
            "recall_at_10": round(index.measure_recall(vectors, ids), 4) if len(ids) else 1.0,
        }

    def _fields_mismatch(self, index: FilteringIndex) -> str | None:
        """Whether the index's copy of every product's category and price agrees with the
        database (a write that reached one and not the other)."""
        differing = index.stored_fields().differing(self.store.product_fields(self.model_version))
        if len(differing) == 0:
            return None
        shown = ", ".join(map(str, differing[:5].tolist()))
        more = ", ..." if len(differing) > 5 else ""
        return (
            f"index and database disagree on the category or price of {len(differing)} "
            f"products (ids {shown}{more})"
        )


def _mismatch(index: ProductIndex, db_ids: np.ndarray, model_version: str) -> str | None:
    m = index.manifest
    if m.model_version != model_version:
        return f"index is of model {m.model_version}, catalog uses {model_version}"
    if m.count != len(db_ids) or len(index) != len(db_ids):
        return f"index holds {len(index)} products, database {len(db_ids)}"
    if m.ids_sha256 != ids_checksum(db_ids):
        return "index and database hold different products"
    return None


class _StoredVectors:
    """The database's vectors of one model version (index/parts.VectorSource)."""

    def __init__(self, store: CatalogStore, model_version: str) -> None:
        self._store = store
        self._version = model_version

    def iter_vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self._store.iter_vectors(self._version)

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        return self._store.vectors(ids, self._version)
