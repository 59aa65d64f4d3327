"""A FAISS index whose ids are product ids, saved atomically with a manifest.

Small catalogs get exact search (flat inner product). Past ``exact_max`` vectors an IVF
index is trained, and its ``nprobe`` is the smallest that reaches the target recall@10
against exact search on a sample of the catalog itself (autofaiss-style tuning).
Both kinds support adding and removing single products without a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import faiss
import numpy as np

from lookalike.index.base import (
    MANIFEST_FILE,
    RECALL_K,
    IndexManifest,
    NoIndexError,
    ProductIndex,
    exact_neighbors,
    recall,
    recall_sample,
)

FaissKind = Literal["flat", "ivf"]

# Queries run one at a time on one thread: FAISS's OpenMP threads keep spinning after a
# parallel search and steal the CPU from the model's next inference (measured: photo ->
# top-10 at 25 ms instead of 15 ms on 2 cores; in the API server an OpenMP thread spun
# for 0.7 of a core). Builds use every core (see all_build_threads). OpenMP keeps the thread
# count per calling thread, so every thread that queries sets it (one_query_thread).
faiss.omp_set_num_threads(1)
_build_lock = threading.Lock()
_query_thread = threading.local()


def one_query_thread() -> None:
    """Make FAISS run single-threaded on the calling thread (every query thread calls it)."""
    if not getattr(_query_thread, "single", False):
        faiss.omp_set_num_threads(1)
        _query_thread.single = True


@contextmanager
def all_build_threads() -> Iterator[None]:
    """FAISS on every core for the duration (index builds), one build at a time."""
    with _build_lock:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        _query_thread.single = True  # queries inside a build (recall tuning) use all too
        try:
            yield
        finally:
            faiss.omp_set_num_threads(1)


INDEX_FILE = "index.faiss"


def ids_checksum(ids: np.ndarray) -> str:
    """Order-independent fingerprint of a set of product ids."""
    return hashlib.sha256(np.sort(ids.astype("<i8")).tobytes()).hexdigest()


class VectorIndex:
    """Thread-safe wrapper: searches run concurrently, writes take the lock."""

    def __init__(self, index: faiss.Index, manifest: IndexManifest, ids: np.ndarray) -> None:
        self.index = index
        self.manifest = manifest
        self._ids = set(ids.tolist())
        self._lock = threading.RLock()

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        *,
        dim: int | None = None,
        exact_max: int = 20_000,
        target_recall: float = 0.95,
        kind: FaissKind | None = None,
    ) -> VectorIndex:
        """Build the index kind that suits ``len(ids)`` (or the one asked for).
        ``dim`` is needed when there are no vectors yet."""
        with all_build_threads():
            return cls._build(ids, vectors, model_version, dim, exact_max, target_recall, kind)

    @classmethod
    def _build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int | None,
        exact_max: int,
        target_recall: float,
        kind: FaissKind | None,
    ) -> VectorIndex:
        n = len(ids)
        dim = dim or int(vectors.shape[1])
        kind = kind or ("flat" if n <= exact_max else "ivf")
        assert kind in ("flat", "ivf"), kind
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        manifest = IndexManifest(model_version, kind, dim, n, ids_checksum(ids))
        if kind == "flat":
            index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            if n:
                index.add_with_ids(vectors, ids)
            built = cls(index, manifest, ids)
        else:
            nlist = suggested_nlist(n)
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            # 40 points per list is what k-means needs (FAISS warns below 39); a dozen
            # iterations is enough for a coarse quantizer and keeps 1M-vector builds short.
            ivf.cp.niter = 12
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(n, size=min(n, nlist * 40), replace=False)]
            ivf.train(sample)
            ivf.add_with_ids(vectors, ids)
            manifest.nlist = nlist
            built = cls(ivf, manifest, ids)
            built.tune_nprobe(vectors, ids, target_recall)
        manifest.built_at = datetime.now(UTC).isoformat(timespec="seconds")
        return built

    def tune_nprobe(self, vectors: np.ndarray, ids: np.ndarray, target: float) -> None:
        """Smallest power-of-two nprobe whose recall@10 against exact search reaches
        ``target`` on catalog vectors used as queries (their own id left out)."""
        ivf = faiss.extract_index_ivf(self.index)
        queries, qids = recall_sample(vectors, ids)
        truth = exact_neighbors(vectors, ids, queries, qids)
        nprobe = 1
        while True:
            self.manifest.nprobe = nprobe
            reached = recall(self._search_raw(queries, RECALL_K + 1)[1], qids, truth)
            if reached >= target or nprobe >= ivf.nlist:
                break
            nprobe = min(nprobe * 2, ivf.nlist)
        self.manifest.recall_at_10 = round(reached, 4)

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 of this index against exact search (1.0 for a flat index)."""
        if self.manifest.kind == "flat":
            return 1.0
        queries, qids = recall_sample(vectors, ids)
        with all_build_threads():
            truth = exact_neighbors(vectors, ids, queries, qids)
            return recall(self._search_raw(queries, RECALL_K + 1)[1], qids, truth)

    # ---- queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def __contains__(self, product_id: int) -> bool:
        return product_id in self._ids

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query; ``-1`` ids pad rows with fewer results.

        With ``allowed`` ids only those are searched (inside FAISS, so k results come back
        whenever k allowed products exist; an IVF index widens to all lists if needed).
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            return self._search_raw(q, k, exhaustive=exhaustive)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        scores, ids = self._search_raw(q, k, selector, exhaustive)
        if self.manifest.kind == "ivf" and not exhaustive:
            want = min(k, len(allowed))
            if int((ids >= 0).sum(axis=1).min()) < want:
                scores, ids = self._search_raw(q, k, selector, exhaustive=True)
        return scores, ids

    def _search_raw(
        self,
        q: np.ndarray,
        k: int,
        selector: faiss.IDSelector | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, max(1, len(self))))
        one_query_thread()
        with self._lock:
            params: faiss.SearchParameters | None = None
            if self.manifest.kind == "ivf":
                ivf_params = faiss.SearchParametersIVF()
                ivf_params.nprobe = self.manifest.nlist if exhaustive else self.manifest.nprobe
                params = ivf_params
            elif selector is not None:
                params = faiss.SearchParameters()
            if params is not None and selector is not None:
                params.sel = selector
            scores, ids = self.index.search(q, k, params=params)
            return scores, ids

    # ---- updates -----------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) products."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            self.remove(ids)
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            self._ids.update(ids.tolist())
            self._refresh_manifest()

    def remove(self, ids: np.ndarray) -> int:
        """Remove products; returns how many were in the index."""
        present = np.array([i for i in ids.tolist() if i in self._ids], dtype=np.int64)
        if len(present) == 0:
            return 0
        with self._lock:
            removed = int(self.index.remove_ids(faiss.IDSelectorBatch(present)))
            self._ids.difference_update(present.tolist())
            self._refresh_manifest()
            return removed

    def _refresh_manifest(self) -> None:
        ids = np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))
        self.manifest.count = len(ids)
        self.manifest.ids_sha256 = ids_checksum(ids)

    # ---- persistence -------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index, then the manifest holding the index file's checksum; each by
        write-then-rename, so a crash leaves either the old pair or a detectable mismatch."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = faiss.serialize_index(self.index).tobytes()
            self.manifest.file_sha256 = hashlib.sha256(data).hexdigest()
            manifest = json.dumps(asdict(self.manifest), indent=2).encode()
        atomic_write(folder / INDEX_FILE, data)
        atomic_write(folder / MANIFEST_FILE, manifest)

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        """Load a saved index; raises ValueError if the pair is incomplete or corrupt
        (NoIndexError if there is none)."""
        if not (folder / MANIFEST_FILE).exists():
            raise NoIndexError(f"no index in {folder}")
        try:
            manifest = IndexManifest(**json.loads((folder / MANIFEST_FILE).read_text()))
            data = (folder / INDEX_FILE).read_bytes()
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"no usable index in {folder}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != manifest.file_sha256:
            raise ValueError(f"index file in {folder} does not match its manifest")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if manifest.kind == "flat":
            id_map: Any = faiss.downcast_index(index)
            ids = faiss.vector_to_array(id_map.id_map)
        else:
            ids = _ivf_ids(faiss.extract_index_ivf(index))
        return cls(index, manifest, ids.astype(np.int64))


class FaissBackend:
    """The default backend: in-process FAISS, exact (flat) up to ``exact_max`` products,
    IVF past it, saved next to the database (``HOME/index/<model version>/``)."""

    name = "faiss"

    def __init__(self, exact_max: int = 20_000, target_recall: float = 0.95) -> None:
        self.exact_max = exact_max
        self.target_recall = target_recall

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int,
        kind: str | None = None,
    ) -> VectorIndex:
        """A flat or IVF index (``kind``, or by catalog size)."""
        if kind not in (None, "flat", "ivf"):
            raise ValueError(f"the faiss backend builds flat or ivf indexes, not {kind}")
        return VectorIndex.build(
            ids,
            vectors,
            model_version,
            dim=dim,
            exact_max=self.exact_max,
            target_recall=self.target_recall,
            kind=cast(FaissKind | None, kind),
        )

    def load(self, folder: Path, model_version: str, dim: int) -> VectorIndex:
        """The index saved in ``folder`` (checked against the manifest's checksum)."""
        return VectorIndex.load(folder)

    def outgrown(self, index: ProductIndex) -> bool:
        """A catalog that outgrew exact search (or shrank back) gets the other kind."""
        kind = index.manifest.kind
        wanted = "flat" if len(index) <= self.exact_max else "ivf"
        # Hysteresis: switch kinds only well past the threshold, not at every product.
        return wanted != kind and (
            (wanted == "ivf" and len(index) > 1.5 * self.exact_max)
            or (wanted == "flat" and len(index) < 0.5 * self.exact_max)
        )


def suggested_nlist(n: int) -> int:
    """About 4 * sqrt(n) lists, a power of two between 16 and 65536."""
    target = 4 * math.sqrt(max(n, 1))
    return int(min(65536, max(16, 2 ** round(math.log2(target)))))


def _ivf_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    invlists = ivf.invlists
    assert invlists is not None
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            ptr = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by write-fsync-rename: readers see the old file or the new."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
