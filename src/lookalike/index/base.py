"""What every product-index backend offers (FAISS, Annoy, Milvus), and what they share.

The engine and the search code see only :class:`ProductIndex` (one loaded index of one
model version) and :class:`IndexBackend` (how to build, load and grow one); which backend
runs is a setting (``LOOKALIKE_INDEX_BACKEND``, :func:`lookalike.index.factory.create_backend`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from lookalike.errors import LookalikeError

if TYPE_CHECKING:  # search and store import this module: types only, no import cycle
    from lookalike.search.searcher import Filters
    from lookalike.store.catalog import ProductFields

IndexKind = Literal["flat", "ivf", "ivfpq", "annoy", "milvus"]
MANIFEST_FILE = "manifest.json"
RECALL_K = 10
_RECALL_QUERIES = 256
# Rows scored per step of an exact scan: 16,384 x 1,536 float32 is 96 MB of temporaries.
SCAN_ROWS = 16_384
PAD_SCORE = float(np.finfo(np.float32).min)  # what FAISS puts beside a -1 id (inner product)
# A reweighted query at least this aligned with the vector it was made from stays in the
# geometry an approximate index was built for. IVF at 100k products (docs/benchmarks.md):
# "shape only" (alignment 0.95 with the default shares) found 0.995 of the exact top 10,
# "shape 0.5 + colour 0.5" (0.57) 0.910, "colour only" (0.30) 0.254.
MIN_ALIGNMENT = 0.9


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
    # Recall@10 against exact search that the build's tuning measured, on fresh-like
    # queries (tuning_queries: catalog vectors moved off themselves, as a query that is
    # in no index), not on catalog vectors searched for themselves. None: not tuned (flat).
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
        search is widened (Milvus). Wrapped in index/parts.py, FAISS and Annoy answer
        colour-weighted ones from the colour parts and their own search instead (exact for
        colour alone, as good as the index's recall with shape weighed too)."""
        ...

    def add(
        self, ids: np.ndarray, vectors: np.ndarray, fields: ProductFields | None = None
    ) -> None:
        """Add or replace products. ``fields``: their category and price, kept by an index
        that applies filters itself (:class:`FilteringIndex`; without them a new product
        matches no category or price filter and a replaced one keeps its own); other
        indexes ignore them."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove products; returns how many were in the index."""
        ...

    def save(self, folder: Path) -> None:
        """Persist what is not persisted yet (a no-op for a database-backed index)."""
        ...

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 against exact search on fresh-like queries made from the catalog
        (:func:`tuning_queries`; 1.0 when exact)."""
        ...


@runtime_checkable
class HoldsVectors(ProductIndex, Protocol):
    """A :class:`ProductIndex` that holds its products' exact vectors and hands them out
    by id (FAISS: flat, IVF through its id map, ``ivfpq`` from its re-rank rows), so that
    re-scoring a few products needs no database read."""

    def vectors_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of ``ids`` it holds, sorted and each once; their vectors as held,
        one row each)."""
        ...


@runtime_checkable
class FilteringIndex(ProductIndex, Protocol):
    """A :class:`ProductIndex` that keeps each product's filter fields (category, price)
    beside its vector and applies :class:`~lookalike.search.searcher.Filters` inside its
    own search (Milvus: a boolean expression), so the caller passes the filters, not the
    ids they let through."""

    def search_filtered(
        self,
        queries: np.ndarray,
        k: int,
        filters: Filters | None,
        exclude: np.ndarray,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`ProductIndex.search`, among the products that pass ``filters`` (the
        database's rules: category equal, case and all; price within the inclusive bounds,
        a product without a price passing no bound) and are not in ``exclude``:
        ``min(k, passing)`` results for every query."""
        ...

    def update_fields(self, fields: ProductFields) -> None:
        """Write new categories and prices of products already in the index (their
        vectors stay); ids the index does not hold are skipped."""
        ...

    def stored_fields(self) -> ProductFields:
        """Every product's category and price as the index holds them (checked against
        the database by ``lookalike index check``)."""
        ...


class IndexBackend(Protocol):
    """Builds and opens :class:`ProductIndex` objects of one kind."""

    name: str
    # True when its indexes are FilteringIndex: the manager hands them the fields.
    keeps_fields: bool

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int,
        kind: str | None = None,
        fields: ProductFields | None = None,
    ) -> ProductIndex:
        """A new index holding exactly ``ids``; replaces what ``load`` would open.
        ``fields`` as for :meth:`ProductIndex.add`."""
        ...

    def load(self, folder: Path, model_version: str, dim: int) -> ProductIndex:
        """The saved index; NoIndexError if there is none, ValueError if it is unusable."""
        ...

    def outgrown(self, index: ProductIndex) -> bool:
        """True when the index should be rebuilt from the database after a change."""
        ...


@dataclass(frozen=True)
class TuningQueries:
    """Queries that behave like a shopper's (in no index), with their exact answers:
    what every backend tunes on (FAISS ``nprobe`` and re-rank depth, Annoy ``search_k``)
    and what ``measure_recall`` (``lookalike index check``) reports. Made by
    :func:`tuning_queries`."""

    queries: np.ndarray  # float32, one row a query
    truth: list[set[int]]  # each query's exact top-10 product ids over the whole catalog


def tuning_queries(vectors: np.ndarray, ids: np.ndarray) -> TuningQueries:
    """Up to 256 catalog vectors, each moved off itself in a random direction by its
    distance to its 10th nearest other product, and their exact top 10.

    A catalog vector used as the query itself sits where the index put it (its own IVF
    list, its own Annoy leaves) with its near-duplicates (a product's variants, its other
    photos) beside it, which the index finds because they share that place; a shopper's
    photo is in no index. Moved as far as its 10th neighbour is, the query is as far from
    the catalog as a fresh point is (in high dimensions about the nearest-neighbour
    distance: 0.58 against 0.55 at 100k x 1,536-d), or farther where near-duplicates
    crowd the vector, and its answer includes the product it came from (a photo of it).
    The direction is orthogonal to the vector; on unit vectors the vector is rotated by
    the angle that gives that distance, so the query stays a unit vector. Measured at
    100k (docs/benchmarks.md): recall on these was within 0.01 of recall on fresh
    synthetic queries, for IVF and Annoy alike (256 queries: about +-0.01 of sampling).
    """
    n = len(ids)
    rng = np.random.default_rng(1)
    pick = np.sort(rng.choice(n, size=min(n, _RECALL_QUERIES), replace=False))
    own = np.asarray(vectors[pick], dtype=np.float32)
    positions = np.arange(n)
    _, near = top_k(own, RECALL_K + 1, _row_chunks(vectors, positions))
    gap = np.zeros(len(pick), dtype=np.float32)
    for row, (self_pos, ranked) in enumerate(zip(pick, near, strict=True)):
        others = ranked[(ranked >= 0) & (ranked != self_pos)][:RECALL_K]
        if len(others):
            far = np.asarray(vectors[others[-1]], dtype=np.float32)
            gap[row] = np.linalg.norm(own[row] - far)
    away = rng.standard_normal(own.shape).astype(np.float32)
    norms = np.linalg.norm(own, axis=1, keepdims=True)
    unit = own / np.maximum(norms, 1e-12)
    away -= (away * unit).sum(axis=1, keepdims=True) * unit
    away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-12)
    if np.allclose(norms, 1.0, atol=1e-3):
        cos = np.clip(1.0 - gap**2 / 2.0, -1.0, 1.0)[:, None]  # |q - x| = gap, |q| = 1
        queries = cos * own + np.sqrt(1.0 - cos**2) * away
    else:
        queries = own + gap[:, None] * away
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    _, best = top_k(queries, RECALL_K, _row_chunks(vectors, positions))
    truth = [{int(i) for i in ids[row[row >= 0]]} for row in best]
    return TuningQueries(queries, truth)


def _row_chunks(vectors: np.ndarray, labels: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(labels), SCAN_ROWS):
        yield vectors[start : start + SCAN_ROWS], labels[start : start + SCAN_ROWS]


def top_k(
    queries: np.ndarray, k: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores, labels) per query, best first, over (vectors, labels)
    chunks scored one at a time: a float16 catalog is converted to float32 a chunk at a
    time, never whole (1M x 1,536 floats would be 6 GB). ``-1`` labels pad short rows."""
    scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    labels = np.full((len(queries), 0), -1, dtype=np.int64)
    for vectors, chunk_labels in chunks:
        chunk = queries @ np.asarray(vectors, dtype=np.float32).T
        keep = min(k, chunk.shape[1])
        best = np.argpartition(-chunk, keep - 1, axis=1)[:, :keep]
        scores = np.concatenate([scores, np.take_along_axis(chunk, best, axis=1)], axis=1)
        labels = np.concatenate([labels, chunk_labels[best]], axis=1)
        if scores.shape[1] > k:
            best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(scores, best, axis=1)
            labels = np.take_along_axis(labels, best, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    scores = np.take_along_axis(scores, order, axis=1)
    labels = np.take_along_axis(labels, order, axis=1)
    pad = k - scores.shape[1]
    if pad > 0:
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=PAD_SCORE)
        labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
    return scores, labels


def isin_sorted(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``sorted_ids`` (ascending): a boolean mask, by binary search."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.asarray(sorted_ids[pos] == ids)


def recall(found: np.ndarray, truth: list[set[int]]) -> float:
    """Share of the true top-10 found in the first 10 ids of each row of ``found``."""
    hits = total = 0
    for row, want in zip(found, truth, strict=True):
        top = [int(i) for i in row if i >= 0][:RECALL_K]
        hits += len(want.intersection(top))
        total += len(want)
    return hits / max(total, 1)


def recall_of(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    vectors: np.ndarray,
    ids: np.ndarray,
) -> float:
    """Recall@10 of ``search`` (queries, k) -> (scores, ids) against exact search, on
    :func:`tuning_queries` (fresh-like queries, as the tuning measures it)."""
    if len(ids) == 0:
        return 1.0
    sample = tuning_queries(vectors, ids)
    return recall(search(sample.queries, RECALL_K)[1], sample.truth)
