"""What every product-index backend offers (FAISS, Annoy, Milvus), and what they share.

The engine and the search code see only :class:`ProductIndex` (one loaded index of one
model version) and :class:`IndexBackend` (how to build, load and grow one); which backend
runs is a setting (``LOOKALIKE_INDEX_BACKEND``, :func:`lookalike.index.factory.create_backend`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import faiss
import numpy as np

from lookalike.errors import LookalikeError

IndexKind = Literal["flat", "ivf", "annoy", "milvus"]
MANIFEST_FILE = "manifest.json"
RECALL_K = 10
_RECALL_QUERIES = 256


class IndexBackendError(LookalikeError):
    """The configured backend cannot be used (unknown name, server not reachable)."""


class NoIndexError(ValueError):
    """Nothing was saved yet (a first build, not a repair)."""


@dataclass
class IndexManifest:
    """What an index holds; checked against the database when it is loaded."""

    model_version: str
    kind: IndexKind
    dim: int
    count: int
    ids_sha256: str
    file_sha256: str = ""
    nlist: int = 0
    nprobe: int = 0
    recall_at_10: float | None = None
    built_at: str = ""


class ProductIndex(Protocol):
    """One model version's product vectors, searchable by inner product.

    Ids are product ids. Implementations are thread-safe: searches run concurrently
    with single-product writes.
    """

    @property
    def manifest(self) -> IndexManifest:
        """Model version, kind, count and id-set checksum (what the database is checked against)."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, product_id: int) -> bool: ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query, best first; ``-1`` ids pad short rows (FAISS
        returns at most ``len(self)`` columns).
        With ``allowed``, only those ids are candidates, and ``min(k, len(allowed))``
        results come back for every query (filters never under-fill ``k``).
        ``exhaustive``: a query from another geometry than the one the index's structure
        was built for (reweighted aspects): every product is scored (FAISS, Annoy) or the
        search is widened (Milvus)."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace products."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove products; returns how many were in the index."""
        ...

    def save(self, folder: Path) -> None:
        """Persist what is not persisted yet (a no-op for a database-backed index)."""
        ...

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 against exact search on a sample of the catalog (1.0 when exact)."""
        ...


class IndexBackend(Protocol):
    """Builds and opens :class:`ProductIndex` objects of one kind."""

    name: str

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int,
        kind: str | None = None,
    ) -> ProductIndex:
        """A new index holding exactly ``ids``; replaces what ``load`` would open."""
        ...

    def load(self, folder: Path, model_version: str, dim: int) -> ProductIndex:
        """The saved index; NoIndexError if there is none, ValueError if it is unusable."""
        ...

    def outgrown(self, index: ProductIndex) -> bool:
        """True when the index should be rebuilt from the database after a change."""
        ...


def recall_sample(vectors: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Up to 256 catalog vectors (and their ids) to use as recall queries."""
    rng = np.random.default_rng(1)
    pick = rng.choice(len(ids), size=min(len(ids), _RECALL_QUERIES), replace=False)
    return np.ascontiguousarray(vectors[pick]), ids[pick]


def exact_neighbors(
    vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, qids: np.ndarray
) -> list[set[int]]:
    """The true top-10 of each query, its own id left out."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, pos = flat.search(queries, RECALL_K + 1)
    truth = []
    for row, q in zip(pos, qids, strict=True):
        ranked = [int(i) for i in ids[row[row >= 0]] if i != q]
        truth.append(set(ranked[:RECALL_K]))
    return truth


def recall(found: np.ndarray, qids: np.ndarray, truth: list[set[int]]) -> float:
    """Share of the true top-10 found in each row of ``found`` (the query's id left out)."""
    hits = total = 0
    for row, q, want in zip(found, qids, truth, strict=True):
        top = [int(i) for i in row if i >= 0 and i != q][:RECALL_K]
        hits += len(want.intersection(top))
        total += len(want)
    return hits / max(total, 1)


def recall_of(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    vectors: np.ndarray,
    ids: np.ndarray,
) -> float:
    """Recall@10 of ``search`` (queries, k) -> (scores, ids) against exact search."""
    if len(ids) == 0:
        return 1.0
    queries, qids = recall_sample(vectors, ids)
    truth = exact_neighbors(vectors, ids, queries, qids)
    return recall(search(queries, RECALL_K + 1)[1], qids, truth)
