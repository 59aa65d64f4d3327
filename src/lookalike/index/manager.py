"""Keeps the on-disk index in step with the database, the source of truth."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.index.vector_index import MANIFEST_FILE, VectorIndex, ids_checksum
from lookalike.store.catalog import CatalogStore

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """How the index was obtained: loaded as saved, or rebuilt (and why)."""

    rebuilt: bool
    reason: str | None
    count: int
    first_build: bool = False


class IndexManager:
    """Loads, rebuilds, updates and checks the index of one model version."""

    def __init__(
        self,
        store: CatalogStore,
        index_root: Path,
        model_version: str,
        dim: int,
        *,
        exact_max: int = 20_000,
        target_recall: float = 0.95,
    ) -> None:
        self.store = store
        self.model_version = model_version
        self.dim = dim
        self.folder = index_root / re.sub(r"[^A-Za-z0-9._-]+", "_", model_version)
        self.exact_max = exact_max
        self.target_recall = target_recall

    def load(self) -> tuple[VectorIndex, SyncReport]:
        """The saved index if it matches the database exactly; otherwise a rebuild."""
        ids = self.store.embedding_ids(self.model_version)
        if not (self.folder / MANIFEST_FILE).exists():
            index = self.rebuild()
            return index, SyncReport(True, "no index yet", len(index), first_build=True)
        try:
            index = VectorIndex.load(self.folder)
        except ValueError as exc:
            reason: str | None = str(exc)
        else:
            reason = _mismatch(index, ids, self.model_version)
            if reason is None:
                return index, SyncReport(False, None, len(index))
        log.warning("index rebuilt from the database: %s", reason)
        index = self.rebuild()
        return index, SyncReport(True, reason, len(index))

    def rebuild(self, kind: str | None = None) -> VectorIndex:
        """Build from every embedding of the model version in the database, and save."""
        ids, vectors = self.vectors()
        index = VectorIndex.build(
            ids,
            vectors,
            self.model_version,
            dim=self.dim,
            exact_max=self.exact_max,
            target_recall=self.target_recall,
            kind=kind,  # type: ignore[arg-type]
        )
        index.save(self.folder)
        return index

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
        index: VectorIndex,
        add_ids: np.ndarray,
        add_vectors: np.ndarray,
        remove_ids: np.ndarray,
        *,
        save: bool = True,
    ) -> VectorIndex:
        """Apply a committed database change to the index (and save it, unless the caller
        saves later). A catalog that outgrew exact search (or shrank back) gets the other
        index kind by a rebuild."""
        index.remove(remove_ids)
        index.add(add_ids, add_vectors)
        wanted = "flat" if len(index) <= self.exact_max else "ivf"
        # Hysteresis: switch kinds only well past the threshold, not at every product.
        if wanted != index.manifest.kind and (
            (wanted == "ivf" and len(index) > 1.5 * self.exact_max)
            or (wanted == "flat" and len(index) < 0.5 * self.exact_max)
        ):
            return self.rebuild()
        if save:
            index.save(self.folder)
        return index

    def check(self, index: VectorIndex) -> dict[str, Any]:
        """Does the index agree with the database, and how good is its recall?"""
        db_ids = self.store.embedding_ids(self.model_version)
        mismatch = _mismatch(index, db_ids, self.model_version)
        ids, vectors = self.vectors()
        return {
            "model_version": self.model_version,
            "kind": index.manifest.kind,
            "index_count": len(index),
            "database_count": len(db_ids),
            "consistent": mismatch is None,
            "problem": mismatch,
            "nlist": index.manifest.nlist,
            "nprobe": index.manifest.nprobe,
            "recall_at_10": round(index.measure_recall(vectors, ids), 4) if len(ids) else 1.0,
        }


def _mismatch(index: VectorIndex, db_ids: np.ndarray, model_version: str) -> str | None:
    m = index.manifest
    if m.model_version != model_version:
        return f"index is of model {m.model_version}, catalog uses {model_version}"
    if m.count != len(db_ids) or len(index) != len(db_ids):
        return f"index holds {len(index)} products, database {len(db_ids)}"
    if m.ids_sha256 != ids_checksum(db_ids):
        return "index and database hold different products"
    return None
