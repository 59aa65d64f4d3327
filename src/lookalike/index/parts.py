"""Weighted searches without a full scan: the small aspect parts scanned on their own.

An approximate index's lists (IVF) or trees (Annoy) are drawn from default-blend vectors.
A query that weighs the small colour part far above its stored share lands in lists made
for another geometry (IVF at 100k products: recall@10 0.25 for "colour only"), so such a
query used to score every product's whole vector: 131.6 ms a photo at 100k against 44.1
for the default blend (docs/benchmarks.md).

The colour part is 256 of a vector's 1,536 floats. :class:`PartScannedIndex` keeps the
small parts of every product's vector in a flat index of their own, as half-precision
floats (~0.6 KB a product in RAM: a scan of 100k takes 2.5 ms instead of 6.5 as float32,
the top 100 the same, scores within 1e-4; read from the database in the background after
the first weighted search, which is scanned whole as before), and answers such a query
from lists: the products whose small parts score best, and, when the query weighs the
large parts too, those whose large parts score best and the query's own neighbours (the
product index's search: a large-parts-only query stays in its geometry). Every product in
none of the lists scores at most the sum of the first two lists' last scores; once the
k-th best total of the listed products reaches that bound, the top k is found (Fagin's
threshold algorithm: Fagin, Lotem & Naor 2003; the listed products' totals are exact,
from the vectors the index holds, or the database's) — for colour alone the full scan's
but for half-precision rounding, as good as the index's recall when its list is part of
the bound. Otherwise the lists grow, and past ``MAX_LIST`` the index is scanned whole as
before. Dev catalog, IVF, 200 queries: recall@10 against exact 1.000 (colour only), 0.992
(shape 0.5 + colour 0.5), 0.989 (0.7 + 0.3), where searching as built found 0.31, 0.82
and 0.92.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import faiss
import numpy as np

from lookalike.embeddings.aspects import AspectLayout
from lookalike.index.base import (
    MIN_ALIGNMENT,
    PAD_SCORE,
    HoldsVectors,
    IndexManifest,
    ProductIndex,
)
from lookalike.index.vector_index import one_query_thread

if TYPE_CHECKING:
    from lookalike.store.catalog import ProductFields

log = logging.getLogger(__name__)

# A part is scanned on its own when it is at most this share of the vector (colour: 256
# of 1,536 floats; the 1,280-float shape and texture parts are not: scanning them is
# most of a full scan).
SMALL_PART = 0.25
FIRST_LIST = 64  # each list's first length, at least 4 k
MAX_LIST = 1024  # past this, a full scan (exact totals read for up to 2x this many)
# Writes are applied to the rows in batches (one pass over the rows per batch, not per
# write: replacing a row shifts every row after it, ~10 ms at 200k), at the next weighted
# search or once this many are waiting.
LOG_MAX = 4096
RETRY_S = 60.0  # a failed build is tried again after this long, not on every search


class VectorSource(Protocol):
    """Where the stored vectors come from (the database): all of them, or some by id."""

    def iter_vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def vectors(self, ids: list[int]) -> dict[int, np.ndarray]: ...


def small_columns(layout: AspectLayout) -> np.ndarray:
    """The columns of ``layout``'s small parts (see SMALL_PART), in order; empty when the
    layout has one part only."""
    dim = sum(p.stop - p.start for p in layout.parts)
    if len(layout.parts) < 2:
        return np.empty(0, dtype=np.int64)
    cols = [
        np.arange(p.start, p.stop) for p in layout.parts if (p.stop - p.start) <= SMALL_PART * dim
    ]
    return np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)


class PartScannedIndex:
    """A :class:`ProductIndex` whose exhaustive searches (queries reweighted away from the
    stored blend) are answered by the threshold algorithm above; everything else is the
    wrapped index's. Thread-safe as the wrapped index is: the part rows have their own
    lock. Writes reach the rows in batches (LOG_MAX). Each wrapper builds its rows once;
    a reloaded index (after another process's writes) builds them again, and the dropped
    one's build stops."""

    def __init__(self, inner: ProductIndex, layout: AspectLayout, source: VectorSource) -> None:
        self.inner = inner
        # Decided once: a runtime protocol check costs ~25 us, and re-scoring asks it on
        # every mixed search.
        self._holder = inner if isinstance(inner, HoldsVectors) else None
        self._layout = layout
        self._source = source
        self._cols = small_columns(layout)
        self._lock = threading.Lock()
        self._rows: _PartRows | None = None  # built in the background on first use
        self._building = False
        self._retry_at = 0.0
        # Writes not applied to the rows yet (parts None: a removal), in order: those
        # that land during the build, then those since the last weighted search.
        self._log: list[tuple[np.ndarray, np.ndarray | None]] = []

    # ---- the wrapped index's own ---------------------------------------------------------

    @property
    def manifest(self) -> IndexManifest:
        return self.inner.manifest

    def __len__(self) -> int:
        return len(self.inner)

    def __contains__(self, product_id: int) -> bool:
        return product_id in self.inner

    def save(self, folder: Path) -> None:
        self.inner.save(folder)

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        return self.inner.measure_recall(vectors, ids)

    def add(
        self, ids: np.ndarray, vectors: np.ndarray, fields: ProductFields | None = None
    ) -> None:
        self.inner.add(ids, vectors, fields)
        self._record(ids, np.ascontiguousarray(vectors[:, self._cols], dtype=np.float32))

    def remove(self, ids: np.ndarray) -> int:
        removed = self.inner.remove(ids)
        self._record(ids, None)
        return removed

    def _record(self, ids: np.ndarray, parts: np.ndarray | None) -> None:
        """Log a write (``parts`` None: a removal) for the part rows, when they are built
        or being built (before that, the build reads it from the database)."""
        with self._lock:
            if self._rows is None and not self._building:
                return
            self._log.append((np.asarray(ids, dtype=np.int64), parts))
            if self._rows is not None and len(self._log) >= LOG_MAX:
                self._rows.apply(self._log)
                self._log = []

    @property
    def parts_ready(self) -> bool:
        """Whether the part rows are built (until then weighted searches scan whole)."""
        return self._rows is not None

    def _ready_rows(self) -> _PartRows | None:
        """The part rows; None while they are being built (the first call starts it)."""
        with self._lock:
            if self._rows is None and not self._building and time.monotonic() >= self._retry_at:
                self._building = True
                threading.Thread(
                    target=_build,
                    args=(weakref.ref(self), self._source, self._cols),
                    name="part-rows",
                    daemon=True,
                ).start()
            return self._rows

    def _built(self, rows: _PartRows | None) -> None:
        """The build's end: the rows with the writes logged meanwhile, or (None) a failure,
        tried again after RETRY_S."""
        with self._lock:
            self._building = False
            try:
                if rows is not None:
                    rows.apply(self._log)
                    self._rows = rows
            except Exception:
                log.exception("the part rows could not be built; weighted searches scan whole")
                rows = None
            finally:
                self._log = []
            if rows is None:
                self._retry_at = time.monotonic() + RETRY_S

    # ---- searches ------------------------------------------------------------------------

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The wrapped index's search; an ``exhaustive`` one (a reweighted query) of an
        approximate index is answered from the lists (module docstring): for colour alone
        the top ``k`` a full scan gives, with the large parts weighed too as good as the
        index's recall."""
        if not exhaustive or self.inner.manifest.kind == "flat" or len(self._cols) == 0:
            return self.inner.search(queries, k, allowed, exhaustive)
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
        k = max(1, k)
        scores = np.full((len(q), k), PAD_SCORE, dtype=np.float32)
        found = np.full((len(q), k), -1, dtype=np.int64)
        for row, vector in enumerate(q):
            top = self._threshold_search(vector, k, allowed)
            if top is None:  # rows being built, out of geometry, or not proven: scan all
                s, i = self.inner.search(vector[None], k, allowed, exhaustive=True)
                top = s[0], i[0]
            scores[row, : len(top[0])], found[row, : len(top[1])] = top
        return scores, found

    def _threshold_search(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The top ``k`` (scores, ids) for ``q``, or None while the part rows are being
        built, when the query's large parts left the index's geometry too, or when
        ``MAX_LIST`` could not bound it."""
        small = np.ascontiguousarray(q[self._cols])
        rest = q.copy()
        rest[self._cols] = 0.0
        rest_norm = float(np.linalg.norm(rest))
        if rest_norm > 0 and self._alignment(rest) < MIN_ALIGNMENT:
            return None
        if self._ready_rows() is None:
            return None  # being built: this one is scanned whole
        available = len(self.inner) if allowed is None else len(allowed)
        if available == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        # How far a half-precision score may be from the exact one: 2^-11 of each term,
        # and the stored part is at most unit length (twice that, to be safe).
        eps = 2.0**-10 * float(np.linalg.norm(small))
        if rest_norm == 0:  # colour alone: the scan's scores are the query's
            return self._colour_alone(q, small, k, available, allowed, eps)
        if 4 * k > MAX_LIST:
            return None  # lists this long would not be shorter than the full scan
        n = min(max(FIRST_LIST, 4 * k), available)
        while True:
            small_scores, small_ids = self._scan_search(small, n, allowed)
            rest_scores, rest_ids = self._listed(rest / rest_norm, n, allowed)
            if len(rest_ids) == 0:
                return None  # nothing to bound the large parts with
            # The query's own neighbours as built: the rest's list comes from the
            # approximate index, so its bound is as good as the index's recall, and these
            # catch most of what it misses (dev catalog, IVF: recall@10 0.986 -> 0.992 for
            # shape 0.5 + colour 0.5, 0.976 -> 0.989 for 0.7 + 0.3). They come scored.
            direct_scores, direct_ids = self._listed(q, n, allowed)
            totals = dict(zip(direct_ids.tolist(), direct_scores.tolist(), strict=True))
            # The rest's list: its large parts' scores, plus their small parts' (the scan).
            rest_of = dict(zip(rest_ids.tolist(), (rest_norm * rest_scores).tolist(), strict=True))
            need = np.array([i for i in rest_of if i not in totals], dtype=np.int64)
            if len(need):
                part_scores, part_ids = self._scan_search(small, len(need), need)
                for i, part in zip(part_ids.tolist(), part_scores.tolist(), strict=True):
                    totals[i] = rest_of[i] + part
            # What a product scores at most outside a list: its last score, or -inf when the
            # list holds every product it may (shorter than asked).
            small_bound = float(small_scores[-1]) + eps if len(small_ids) == n else -np.inf
            rest_bound = -np.inf if len(rest_ids) >= available else rest_norm * rest_scores[-1]
            # The small list's others, read and scored. (Reading only those whose small
            # part + rest_bound could still reach the top k trusts the rest's list as a
            # bound per product: recall@10 fell to 0.969 from 0.992 on the dev catalog.)
            unscored = [i for i in small_ids.tolist() if i not in totals]
            # And the rest's list's totals with a half-precision part that could reach the
            # top k, read and scored exactly too: rounding must not order the results.
            if len(totals) >= k:
                kth = float(np.partition(np.fromiter(totals.values(), np.float64), -k)[-k])
                unscored += [i for i in need.tolist() if i in totals and totals[i] >= kth - 2 * eps]
            totals.update(self._exact_scores(unscored, q))
            ids = np.fromiter(totals, dtype=np.int64, count=len(totals))
            scores = np.fromiter(totals.values(), dtype=np.float32, count=len(totals))
            top = np.argsort(-scores, kind="stable")[:k]
            bound = small_bound + rest_bound
            if bound == -np.inf or (
                len(top) == min(k, available) and float(scores[top[-1]]) >= bound
            ):
                return scores[top], ids[top]
            if n >= min(MAX_LIST, available):
                return None
            n = min(4 * n, MAX_LIST, available)

    def _colour_alone(
        self,
        q: np.ndarray,
        small: np.ndarray,
        k: int,
        available: int,
        allowed: np.ndarray | None,
        eps: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` of a query that weighs the small parts alone: the scan's, with
        the products whose half-precision score lies near the k-th read and scored
        exactly, so that rounding never decides which products make it."""
        n = min(k + FIRST_LIST, available)
        while True:
            scores, ids = self._scan_search(small, n, allowed)
            if len(ids) <= k:
                return scores, ids
            kth = float(scores[k - 1])
            # A product scanned below kth - 2 eps is below the k-th exactly; one not
            # scanned scores at most the last scanned.
            if len(ids) < n or float(scores[-1]) < kth - 2 * eps or n >= available:
                break
            n = min(2 * n, available)
        near = np.flatnonzero(np.abs(scores - kth) <= 2 * eps)
        exact = self._exact_scores(ids[near].tolist(), q)
        scores = scores.copy()
        for j in near.tolist():
            scores[j] = exact.get(int(ids[j]), scores[j])
        top = np.argsort(-scores, kind="stable")[:k]
        return scores[top], ids[top]

    def _exact_scores(self, ids: list[int], q: np.ndarray) -> dict[int, float]:
        """``q``'s inner products with these products' exact vectors: the index's own
        when it holds them (FAISS; a mixed search re-scores ~100 at k = 28, 0.4 ms by id
        against 3-4 ms of database reads, which also pushed other searches' vectors out
        of the store's cache), else the database's (Annoy: its items come back as Python
        lists, no faster). Products the one asked no longer holds are left out."""
        if self._holder is not None:
            held, vectors = self._holder.vectors_of(np.asarray(ids, dtype=np.int64))
            return dict(zip(held.tolist(), (vectors @ q).tolist(), strict=True))
        return {i: float(vector @ q) for i, vector in self._source.vectors(ids).items()}

    def _listed(
        self, q: np.ndarray, n: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The product index's top ``n`` for ``q`` (scores, ids), padding dropped."""
        scores, ids = self.inner.search(q[None], n, allowed)
        kept = ids[0] >= 0
        return scores[0][kept], ids[0][kept]

    def _alignment(self, rest: np.ndarray) -> float:
        """The cosine between ``rest`` (a weighted query's large parts) and a stored-blend
        vector whose parts point its way: each part of a stored vector has length
        sqrt(its share)."""
        along = sum(
            float(np.linalg.norm(rest[p.start : p.stop])) * float(np.sqrt(p.share))
            for p in self._layout.parts
        )
        return along / float(np.linalg.norm(rest))

    def _scan_search(
        self, small: np.ndarray, n: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` products by the small parts alone: (scores, ids)."""
        with self._lock:  # writes change the rows
            assert self._rows is not None
            if self._log:
                self._rows.apply(self._log)
                self._log = []
            return self._rows.search(small, n, allowed)


class _PartRows:
    """Each product's small parts, by product id, in a half-precision flat index (its owner
    locks)."""

    def __init__(self, dim: int) -> None:
        self.index = faiss.IndexIDMap(
            faiss.IndexScalarQuantizer(
                dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        )
        self.held: set[int] = set()

    def apply(self, writes: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Apply logged writes, in order: each product ends as its last write left it."""
        last: dict[int, np.ndarray | None] = {}
        for ids, parts in writes:
            for j, i in enumerate(ids.tolist()):
                last[i] = None if parts is None else parts[j]
        # One removal pass for all of them, and only of rows it holds: a removal passes
        # over every row (and moves those after it), and most added products are new.
        present = [i for i in last if i in self.held]
        if present:
            self.index.remove_ids(faiss.IDSelectorBatch(np.array(present, dtype=np.int64)))
            self.held.difference_update(present)
        put = [(i, row) for i, row in last.items() if row is not None]
        if put:
            self.add(np.array([i for i, _ in put], dtype=np.int64), np.stack([r for _, r in put]))

    def add(self, ids: np.ndarray, parts: np.ndarray) -> None:
        """Rows of products it does not hold."""
        self.index.add_with_ids(np.ascontiguousarray(parts, dtype=np.float32), ids)
        self.held.update(ids.tolist())

    def search(
        self, small: np.ndarray, n: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        one_query_thread()
        params = None
        if allowed is not None:
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, np.int64))
        scores, ids = self.index.search(small[None], n, params=params)
        kept = ids[0] >= 0
        return scores[0][kept], ids[0][kept]


def _build(owner: weakref.ref[PartScannedIndex], source: VectorSource, cols: np.ndarray) -> None:
    """Read the small parts of every stored vector from the database (600 MB of vectors
    at 100k products: seconds, so off the query's path) for ``owner``. Stops early when
    the index is dropped (a reload after another process's writes makes a new one)."""
    rows = _PartRows(len(cols))
    built: _PartRows | None = rows
    try:
        for ids, vectors in source.iter_vectors():
            if owner() is None:
                return
            rows.add(ids, vectors[:, cols])
    except Exception:
        log.exception("the part rows could not be built; weighted searches scan whole")
        built = None
    index = owner()
    if index is not None:
        index._built(built)
