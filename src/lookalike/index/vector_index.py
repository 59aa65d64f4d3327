"""A FAISS index whose ids are product ids, saved atomically with a manifest.

Small catalogs get exact search (flat inner product). Past ``exact_max`` vectors an IVF
index is trained, and its ``nprobe`` is the smallest that reaches the target recall@10
against exact search on fresh-like queries made from a sample of the catalog
(:func:`~lookalike.index.base.tuning_queries`: catalog vectors moved off themselves). The IVF
lists hold the vectors themselves (``ivf``) or, for the compressed kind (``ivfpq``, see
:mod:`lookalike.index.compressed`), PQ codes whose candidates are re-ranked on exact
vectors kept in a memory-mapped file. Every kind supports adding and removing single
products without a rebuild.
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
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import faiss
import numpy as np

from lookalike.index.base import (
    MANIFEST_FILE,
    RECALL_K,
    SCAN_ROWS,
    IndexManifest,
    NoIndexError,
    ProductIndex,
    isin_sorted,
    recall,
    tuning_queries,
)
from lookalike.index.compressed import (
    PQ_MIN_PRODUCTS,
    RERANK_DEPTHS,
    RERANK_FILE,
    CompressedManifest,
    RerankStore,
    new_ivfpq,
    pq_bytes,
)

if TYPE_CHECKING:
    from lookalike.store.catalog import ProductFields

FaissKind = Literal["flat", "ivf", "ivfpq"]
AnnKind = Literal["ivf", "ivfpq"]  # what a catalog past exact_max gets

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

    def __init__(
        self,
        index: faiss.Index,
        manifest: IndexManifest,
        ids: np.ndarray,
        rerank: RerankStore | None = None,
    ) -> None:
        self.index = index
        self.manifest = manifest
        # Sorted, not a set: a set of 1M Python ints takes 66 MB (66 bytes a product, a
        # third of what the compressed kind holds); this takes 8 bytes a product.
        self._ids = np.sort(np.asarray(ids, dtype=np.int64))
        self._rerank = rerank  # the compressed kind's exact vectors
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
        approximate: AnnKind = "ivf",
    ) -> VectorIndex:
        """Build the kind asked for, or :func:`auto_kind`'s for ``len(ids)``. ``dim`` is
        needed when there are no vectors yet. ``vectors`` may be float16: FAISS gets them
        as float32 a chunk at a time."""
        kind = kind or auto_kind(len(ids), exact_max, approximate)
        with all_build_threads():
            return cls._build(ids, vectors, model_version, dim, target_recall, kind)

    @classmethod
    def _build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int | None,
        target_recall: float,
        kind: FaissKind,
    ) -> VectorIndex:
        n = len(ids)
        dim = dim or int(vectors.shape[1])
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        manifest_type = CompressedManifest if kind == "ivfpq" else IndexManifest
        manifest = manifest_type(model_version, kind, dim, n, ids_checksum(ids))
        if kind == "flat":
            index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            built = cls(index, manifest, ids)
        else:
            if kind == "ivfpq" and n < PQ_MIN_PRODUCTS:
                raise ValueError(
                    f"an ivfpq index needs {PQ_MIN_PRODUCTS} products to train, not {n}"
                )
            nlist = suggested_nlist(n)
            rerank = None
            if isinstance(manifest, CompressedManifest):
                index = new_ivfpq(dim, nlist)
                manifest.pq_bytes = pq_bytes(dim)
                rerank = RerankStore.from_vectors(ids, vectors)
            else:
                index = faiss.IndexIVFFlat(
                    faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT
                )
                with_id_map(index)
            # 40 points per list is what k-means needs (FAISS warns below 39); a dozen
            # iterations is enough for a coarse quantizer and keeps 1M-vector builds short.
            faiss.extract_index_ivf(index).cp.niter = 12
            rng = np.random.default_rng(0)
            pick = rng.choice(n, size=min(n, nlist * 40), replace=False)
            index.train(np.asarray(vectors[pick], dtype=np.float32))
            manifest.nlist = nlist
            built = cls(index, manifest, ids, rerank)
        _add_in_chunks(index, ids, vectors)
        if kind != "flat":
            built.tune_nprobe(vectors, ids, target_recall)
        manifest.built_at = datetime.now(UTC).isoformat(timespec="seconds")
        return built

    def tune_nprobe(self, vectors: np.ndarray, ids: np.ndarray, target: float) -> None:
        """Smallest power-of-two nprobe (``ivfpq``: with the smallest re-rank depth at
        it) whose recall@10 against exact search reaches ``target`` on fresh-like
        queries (:func:`~lookalike.index.base.tuning_queries`): a catalog vector used as
        its own query would be routed to its own list and overstate a shopper's recall."""
        ivf = faiss.extract_index_ivf(self.index)
        sample = tuning_queries(vectors, ids)
        compressed = self.manifest if isinstance(self.manifest, CompressedManifest) else None
        nprobe = 1
        while True:
            self.manifest.nprobe = nprobe
            for depth in RERANK_DEPTHS if compressed else (0,):
                if compressed:
                    compressed.rerank_depth = depth
                reached = recall(self._search_raw(sample.queries, RECALL_K)[1], sample.truth)
                if reached >= target:
                    break
            if reached >= target or nprobe >= ivf.nlist:
                break
            nprobe = min(nprobe * 2, ivf.nlist)
        self.manifest.recall_at_10 = round(reached, 4)

    def measure_recall(self, vectors: np.ndarray, ids: np.ndarray) -> float:
        """Recall@10 of this index (its whole search: for ``ivfpq``, codes then re-rank)
        against exact search on fresh-like queries, as tuned (1.0 for a flat index)."""
        if self.manifest.kind == "flat" or len(ids) == 0:
            return 1.0
        with all_build_threads():
            sample = tuning_queries(vectors, ids)
            return recall(self._search_raw(sample.queries, RECALL_K)[1], sample.truth)

    # ---- queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def __contains__(self, product_id: int) -> bool:
        return bool(isin_sorted(self._ids, np.array([product_id]))[0])

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query; ``-1`` ids pad rows with fewer results.

        With ``allowed`` ids only those are searched (inside FAISS, so k results come back
        whenever k allowed products exist; an IVF index widens to all lists, ``ivfpq`` to
        an exact scan of the allowed products, if needed). An IVF search probes more lists
        the fewer products a filter allows (``nprobe`` / the allowed share), so that it
        meets as many allowed products as an unfiltered search meets products.
        ``exhaustive`` scores every product: all IVF lists, or for ``ivfpq`` every exact
        vector.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            return self._search_raw(q, k, exhaustive=exhaustive)
        allowed = np.ascontiguousarray(allowed, dtype=np.int64)
        scores, ids = self._search_raw(q, k, allowed, exhaustive)
        if self.manifest.kind != "flat" and not exhaustive:
            want = min(k, len(allowed))
            if int((ids >= 0).sum(axis=1).min()) < want:
                scores, ids = self._search_raw(q, k, allowed, exhaustive=True)
        return scores, ids

    def _search_raw(
        self,
        q: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, max(1, len(self))))
        one_query_thread()
        with self._lock:
            if self._rerank is not None and exhaustive:
                return self._rerank.scan(q, k, allowed)  # codes rank approximately
            selector = None if allowed is None else faiss.IDSelectorBatch(allowed)
            params: faiss.SearchParameters | None = None
            if self.manifest.kind != "flat":
                ivf_params = faiss.SearchParametersIVF()
                ivf_params.nprobe = self._nprobe(allowed, exhaustive)
                params = ivf_params
            elif selector is not None:
                params = faiss.SearchParameters()
            if params is not None and selector is not None:
                params.sel = selector
            if self._rerank is None:
                scores, ids = self.index.search(q, k, params=params)
                return scores, ids
            depth = cast(CompressedManifest, self.manifest).rerank_depth
            _, candidates = self.index.search(q, k * depth, params=params)
            return self._rerank.rerank(q, candidates, k)

    def _nprobe(self, allowed: np.ndarray | None, exhaustive: bool) -> int:
        """Lists to probe: the tuned ``nprobe``, divided by the share of products a filter
        allows. A filter's nearest allowed products lie farther out than the nearest of
        all: with the tuned 2 of 4,096 lists, a category of 1 % at 1M products met about 5
        allowed ones, so the search either widened to every list after the fact (IVF 34
        ms, ``ivfpq`` 72 ms) or kept those lists' k and missed better ones elsewhere
        (recall@10 0.959; docs/benchmarks.md, "Index backends at 100k and 1M")."""
        m = self.manifest
        if exhaustive:
            return m.nlist
        if allowed is None or len(allowed) >= len(self):
            return m.nprobe
        return min(m.nlist, math.ceil(m.nprobe * len(self) / max(1, len(allowed))))

    # ---- updates -----------------------------------------------------------------------

    def add(
        self, ids: np.ndarray, vectors: np.ndarray, fields: ProductFields | None = None
    ) -> None:
        """Add (or replace) products (``fields`` unused: filters come as allowed ids);
        an id given twice keeps its last vector."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        # Each id once: twice, it would be held twice (and the id map would find one).
        _, last = np.unique(ids[::-1], return_index=True)
        if len(last) < len(ids):
            keep = np.sort(len(ids) - 1 - last)
            ids, vectors = ids[keep], vectors[keep]
        with self._lock:
            self.remove(ids)
            _add_in_chunks(self.index, ids, vectors)
            if self._rerank is not None:
                self._rerank.add(ids, vectors)
            self._ids = insert_sorted(self._ids, ids)
            self._refresh_manifest()

    def remove(self, ids: np.ndarray) -> int:
        """Remove products; returns how many were in the index."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            present = self._held(ids)
            if len(present) == 0:
                return 0
            # Ids as an array: FAISS's Python wrapper picks the selector (an IVF index's
            # id map takes an array of ids, the others a batch); its stubs describe the
            # C++ signature.
            index: Any = self.index
            removed = int(index.remove_ids(present))
            if self._rerank is not None:
                self._rerank.discard(present)
            self._ids = np.delete(self._ids, np.searchsorted(self._ids, present))
            self._refresh_manifest()
            return removed

    def vectors_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of ``ids`` it holds, sorted; their exact vectors): looked up by id,
        0.4 ms for 128 at 100k products where reading them from SQLite took 3 to 4."""
        ids = np.asarray(ids, dtype=np.int64)
        one_query_thread()  # FAISS looks up more than 1,000 ids on OpenMP threads
        with self._lock:
            present = self._held(ids)
            if len(present) == 0:
                return present, np.empty((0, self.manifest.dim), dtype=np.float32)
            if self._rerank is not None:
                return present, self._rerank.vectors_of(present)
            vectors: np.ndarray = self.index.reconstruct_batch(present)
            return present, vectors

    def _held(self, ids: np.ndarray) -> np.ndarray:
        """The ids of ``ids`` the index holds, sorted, each once (under the lock)."""
        held: np.ndarray = np.unique(ids[isin_sorted(self._ids, ids)])
        return held

    def _refresh_manifest(self) -> None:
        self.manifest.count = len(self._ids)
        self.manifest.ids_sha256 = ids_checksum(self._ids)

    # ---- persistence -------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index (and the compressed kind's re-rank files), then the manifest
        holding their checksums; each by write-then-rename, so a crash leaves either the
        old set or a detectable mismatch."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            rerank = None
            if self._rerank is not None:
                assert isinstance(self.manifest, CompressedManifest)
                rerank = self._rerank.save(folder, self.manifest)
            data = self._serialized()
            self.manifest.file_sha256 = hashlib.sha256(data).hexdigest()
            manifest = json.dumps(asdict(self.manifest), indent=2).encode()
        if rerank is not None:
            atomic_write(folder / RERANK_FILE, rerank)
        atomic_write(folder / INDEX_FILE, data)
        atomic_write(folder / MANIFEST_FILE, manifest)

    def _serialized(self) -> bytes:
        """The FAISS index as saved: an IVF index without its id map, built again at
        load (5 ms at 100k products), so that the file stays what code before the map
        reads and writes (its removals fail on an index with one)."""
        if self.manifest.kind != "ivf":
            return bytes(faiss.serialize_index(self.index).tobytes())
        ivf = faiss.extract_index_ivf(self.index)
        ivf.set_direct_map_type(_ID_MAPS.NoMap)
        try:
            return bytes(faiss.serialize_index(self.index).tobytes())
        finally:
            with_id_map(ivf)

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        """Load a saved index; raises ValueError if the set of files is incomplete or
        corrupt (NoIndexError if there is none)."""
        if not (folder / MANIFEST_FILE).exists():
            raise NoIndexError(f"no index in {folder}")
        try:
            saved = json.loads((folder / MANIFEST_FILE).read_text())
            kind = saved.get("kind")
            manifest = (CompressedManifest if kind == "ivfpq" else IndexManifest)(**saved)
            data = (folder / INDEX_FILE).read_bytes()
            rerank = (
                RerankStore.load(folder, manifest)
                if isinstance(manifest, CompressedManifest)
                else None
            )
        except (OSError, TypeError, KeyError) as exc:
            raise ValueError(f"no usable index in {folder}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != manifest.file_sha256:
            raise ValueError(f"index file in {folder} does not match its manifest")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if manifest.kind == "flat":
            id_map: Any = faiss.downcast_index(index)
            ids = faiss.vector_to_array(id_map.id_map)
        else:
            ids = _ivf_ids(faiss.extract_index_ivf(index))
            if manifest.kind == "ivf":
                with_id_map(faiss.extract_index_ivf(index))  # not saved (_serialized)
        return cls(index, manifest, ids.astype(np.int64), rerank)


class FaissBackend:
    """The default backend: in-process FAISS, exact (flat) up to ``exact_max`` products,
    IVF (or, with ``approximate="ivfpq"``, compressed IVF-PQ) past it, saved next to the
    database (``HOME/index/<model version>/``)."""

    name = "faiss"
    keeps_fields = False

    def __init__(
        self, exact_max: int = 20_000, target_recall: float = 0.95, approximate: AnnKind = "ivf"
    ) -> None:
        self.exact_max = exact_max
        self.target_recall = target_recall
        self.approximate: AnnKind = approximate

    def build(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        model_version: str,
        dim: int,
        kind: str | None = None,
        fields: ProductFields | None = None,
    ) -> VectorIndex:
        """A flat, IVF or IVF-PQ index (``kind``, or by catalog size); ``fields`` unused."""
        if kind not in (None, *get_args(FaissKind)):
            raise ValueError(f"the faiss backend builds flat, ivf or ivfpq indexes, not {kind}")
        return VectorIndex.build(
            ids,
            vectors,
            model_version,
            dim=dim,
            exact_max=self.exact_max,
            target_recall=self.target_recall,
            kind=cast(FaissKind | None, kind),
            approximate=self.approximate,
        )

    def load(self, folder: Path, model_version: str, dim: int) -> VectorIndex:
        """The index saved in ``folder`` (checked against the manifest's checksums)."""
        return VectorIndex.load(folder)

    def outgrown(self, index: ProductIndex) -> bool:
        """A catalog that outgrew exact search (or shrank back) gets the other kind."""
        n, exact = len(index), index.manifest.kind == "flat"
        wanted_exact = auto_kind(n, self.exact_max, self.approximate) == "flat"
        # Hysteresis: switch kinds only well past the threshold, not at every product.
        return exact != wanted_exact and (
            n > 1.5 * self.exact_max if exact else n < 0.5 * self.exact_max
        )


def auto_kind(n: int, exact_max: int, approximate: AnnKind) -> FaissKind:
    """Flat up to ``exact_max`` products (and, for ``ivfpq``, below the 256 its codebooks
    need to train), else ``approximate``."""
    if n <= exact_max or (approximate == "ivfpq" and n < PQ_MIN_PRODUCTS):
        return "flat"
    return approximate


def _add_in_chunks(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Add as float32 a chunk at a time (``vectors`` may be float16)."""
    for start in range(0, len(ids), SCAN_ROWS):
        chunk = np.ascontiguousarray(vectors[start : start + SCAN_ROWS], dtype=np.float32)
        index.add_with_ids(chunk, ids[start : start + SCAN_ROWS])


_ID_MAPS = faiss.DirectMap  # type: ignore[attr-defined]  # not in faiss's stubs


def with_id_map(ivf: faiss.IndexIVF) -> None:
    """Give an IVF index a hash map from product id to its place in the lists, so that
    its vectors can be looked up by id (:meth:`VectorIndex.vectors_of`): about 50 bytes
    a product in RAM; building it for 100k products takes 5 ms."""
    if ivf.direct_map.type != _ID_MAPS.Hashtable:
        ivf.set_direct_map_type(_ID_MAPS.Hashtable)


def insert_sorted(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``sorted_ids`` with ``ids`` (none of them in it) inserted in order."""
    ids = np.sort(ids)
    return np.insert(sorted_ids, np.searchsorted(sorted_ids, ids), ids)


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
