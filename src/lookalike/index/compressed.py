"""The compressed FAISS kind, ``ivfpq``: IVF lists of product-quantised codes in RAM, and
the exact vectors in a memory-mapped file beside the index for re-ranking.

A query takes the top ``k * rerank_depth`` candidates by their PQ codes, then scores those
candidates on their exact vectors (rows read from the memory-mapped file) and returns the
top ``k``; an exhaustive search scores every row. RAM holds the codes (``pq_bytes(dim)`` a
product, 128 at 1,536-d), the product ids, the coarse centroids and the id -> row map; the
exact vectors cost disk and page cache, which the kernel can drop and re-read.

The rows are float32, the database's own vectors, so re-ranked and exhaustive scores are
exact. float16 would halve the disk, but numpy's conversion of it made an exhaustive scan
take 12.6 s a query per 1M rows against 0.8 s for float32 (measured on 200k x 1,536), and
swapped near-ties of the exact top 10 (1 result in 200 on the backend tests' vectors).

On disk, beside ``index.faiss`` and the manifest:

- ``vectors.npy``: float32 rows (a ``.npy`` file, memory-mapped read-only). Written once
  by a fold (below) and never modified: another process mapping it is never disturbed.
- ``rerank.npz``: the id -> row map (``ids``, sorted, and their ``rows``) and the **tail**,
  rows added since ``vectors.npy`` was written, held in RAM.

Adding a product appends its row to the tail; removing one drops it from the map (its row
stays until the next fold); replacing is both. A save **folds** (writes a new
``vectors.npy`` of the live rows in id order, by write-then-rename) when the folder holds
no rows file of this index yet, or when the tail has reached ``FOLD_ROWS``; otherwise it
writes only the map and tail. The manifest holds the checksums of all three files.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from lookalike.index.base import PAD_SCORE, SCAN_ROWS, IndexManifest, isin_sorted, top_k

VECTORS_FILE = "vectors.npy"
RERANK_FILE = "rerank.npz"
# PQ: one byte codes a sub-vector of this many dimensions (128 bytes at 1,536-d). Measured
# (benchmarks/compressed_index.py; 100k, IVF1024, nprobe 2, 100 candidates): 64-, 128- and
# 192-byte codes reached recall@10 0.969, 0.972 and 0.972 (IVF-flat: 0.972) for 193, 257
# and 321 bytes a product of RAM. 128 bytes keeps IVF-flat's recall and fits the 300-byte
# budget at 1M (where the centroids weigh less a product).
DIMS_PER_CODE_BYTE = 12
# Candidates taken from the codes and re-ranked on exact vectors: k times the depth, tuned
# with nprobe (the smallest depth that reaches the target recall at the smallest nprobe).
# For a top 10 at 100k (128-byte codes), 10, 50, 100 and 200 candidates gave recall@10
# 0.609, 0.968, 0.972 and 0.972 at a p50 of 0.45, 0.56, 0.59 and 0.75 ms; at 1M, where
# hundreds of near neighbours share a list, 100, 200 and 400 gave 0.926, 0.990 and 0.997
# (p50 3.2, 3.5 and 10 ms): the depth has to grow with the catalog.
RERANK_DEPTHS = (10, 20, 40, 80)
# Tail rows (added since the rows file was written) kept in RAM and rewritten with every
# save before a fold writes a new rows file: 4,096 x 1,536 floats are 24 MB.
FOLD_ROWS = 4096
_CODE_BITS = 8  # 256 centroids per sub-quantizer: a byte per code
PQ_MIN_PRODUCTS = 2**_CODE_BITS  # k-means of a codebook needs a training point per centroid


@dataclass
class CompressedManifest(IndexManifest):
    """An ``ivfpq`` index's manifest: the FAISS fields, its code size, and the checksums
    of the re-rank files."""

    pq_bytes: int = 0
    rerank_depth: int = RERANK_DEPTHS[0]  # candidates re-ranked: k times this
    rerank_sha256: str = ""
    vectors_sha256: str = ""


def pq_bytes(dim: int) -> int:
    """Bytes of PQ code per product for ``dim``-d vectors."""
    return math.ceil(dim / DIMS_PER_CODE_BYTE)


def new_ivfpq(dim: int, nlist: int) -> faiss.Index:
    """An untrained IVF-PQ index (inner product) for ``dim``-d vectors. A ``dim`` that the
    code size does not divide is zero-padded (inner products unchanged) by a transform."""
    m = pq_bytes(dim)
    padded = m * DIMS_PER_CODE_BYTE
    ivf = faiss.IndexIVFPQ(
        faiss.IndexFlatIP(padded), padded, nlist, m, _CODE_BITS, faiss.METRIC_INNER_PRODUCT
    )
    # Codebooks from 64 points a centroid in 12 iterations instead of FAISS's 256 and 25:
    # 128 codebooks of 1,536-d trained in 4 s instead of 13 s (20k vectors, one thread),
    # and the re-rank makes up for the coarser codes. Polysemous codes serve a Hamming
    # pre-filter that is not used.
    ivf.pq.cp.max_points_per_centroid = 64
    ivf.pq.cp.niter = 12
    ivf.do_polysemous_training = False  # type: ignore[attr-defined]  # not in the stub
    if padded == dim:
        return ivf
    return faiss.IndexPreTransform(faiss.RemapDimensionsTransform(dim, padded), ivf)


class RerankStore:
    """The exact vectors of an ``ivfpq`` index's products, by product id.

    Not thread-safe on its own: the index calls it under its lock.
    """

    def __init__(
        self,
        dim: int,
        ids: np.ndarray,
        rows: np.ndarray,
        base: np.ndarray,
        tail: np.ndarray,
        base_file: tuple[Path, str] | None,
    ) -> None:
        self.dim = dim
        self._ids = ids  # sorted product ids
        self._rows = rows  # their rows in base + tail
        self._base = base  # memory-mapped vectors.npy, or empty before the first save
        self._tail = tail
        self._base_file = base_file  # (path, sha256 of its rows) of the mapped file

    @classmethod
    def from_vectors(cls, ids: np.ndarray, vectors: np.ndarray) -> RerankStore:
        """A store reading ``vectors`` (not copied when float32) as its tail until its
        first save writes them to a rows file."""
        order = np.argsort(ids, kind="stable")
        tail = np.asarray(vectors, dtype=np.float32)
        empty = np.empty((0, tail.shape[1]), dtype=np.float32)
        return cls(tail.shape[1], ids[order], order.astype(np.int64), empty, tail, None)

    # ---- reads -------------------------------------------------------------------------

    def rerank(
        self, queries: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) of each query's ``candidates`` (ids, ``-1`` padded) by
        inner product with their exact vectors."""
        scores = np.full((len(queries), k), PAD_SCORE, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for i, (q, row) in enumerate(zip(queries, candidates, strict=True)):
            found = row[row >= 0]
            exact = self._vectors(self._rows[np.searchsorted(self._ids, found)]) @ q
            best = np.argsort(-exact, kind="stable")[:k]
            scores[i, : len(best)] = exact[best]
            ids[i, : len(best)] = found[best]
        return scores, ids

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The exact vectors of ``ids`` (sorted, all in the store), one row each."""
        return self._vectors(self._rows[np.searchsorted(self._ids, ids)])

    def scan(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` (scores, ids) over every product (or every ``allowed`` one)."""
        ids = self._ids if allowed is None else np.unique(allowed[isin_sorted(self._ids, allowed)])
        return top_k(queries, k, self._chunks(ids))

    def _chunks(self, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(ids), SCAN_ROWS):
            chunk = ids[start : start + SCAN_ROWS]
            yield self._vectors(self._rows[np.searchsorted(self._ids, chunk)]), chunk

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (base rows first, then the tail)."""
        if len(rows) and rows[-1] < len(self._base) and (np.diff(rows) == 1).all():
            return self._base[rows[0] : rows[-1] + 1]  # a run (an exhaustive scan): in place
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        in_base = rows < len(self._base)
        out[in_base] = self._base[rows[in_base]]
        out[~in_base] = self._tail[rows[~in_base] - len(self._base)]
        return out

    # ---- writes ------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append rows for ``ids`` (none of them in the store)."""
        first = len(self._base) + len(self._tail)
        self._tail = np.concatenate([self._tail, np.asarray(vectors, dtype=np.float32)])
        rows = np.arange(first, first + len(ids), dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        at = np.searchsorted(self._ids, ids[order])
        self._ids = np.insert(self._ids, at, ids[order])
        self._rows = np.insert(self._rows, at, rows[order])

    def discard(self, ids: np.ndarray) -> None:
        """Drop ``ids`` (all in the store) from the map; their rows stay until a fold."""
        at = np.searchsorted(self._ids, ids)
        self._ids = np.delete(self._ids, at)
        self._rows = np.delete(self._rows, at)

    # ---- persistence -------------------------------------------------------------------

    def save(self, folder: Path, manifest: CompressedManifest) -> bytes:
        """Fold if due (see the module docstring); returns the map-and-tail file's bytes
        to write, and sets the manifest's checksums."""
        target = folder / VECTORS_FILE
        mapped_here = self._base_file is not None and self._base_file[0] == target
        if not mapped_here or len(self._tail) >= FOLD_ROWS:
            self._fold(target)
        assert self._base_file is not None
        buffer = io.BytesIO()
        np.savez(buffer, ids=self._ids, rows=self._rows, tail=self._tail)
        data = buffer.getvalue()
        manifest.vectors_sha256 = self._base_file[1]
        manifest.rerank_sha256 = hashlib.sha256(data).hexdigest()
        return data

    def _fold(self, target: Path) -> None:
        """Write the live rows, in id order, to a new rows file and map it."""
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float32, shape=(len(self._ids), self.dim)
            )
            for start in range(0, len(self._ids), SCAN_ROWS):
                rows = self._rows[start : start + SCAN_ROWS]
                chunk = np.ascontiguousarray(self._vectors(rows))
                out[start : start + len(rows)] = chunk
                digest.update(chunk.data)
            out.flush()
            del out
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._base = np.load(target, mmap_mode="r")
        self._base_file = (target, digest.hexdigest())
        self._rows = np.arange(len(self._ids), dtype=np.int64)
        self._tail = np.empty((0, self.dim), dtype=np.float32)

    @classmethod
    def load(cls, folder: Path, manifest: CompressedManifest) -> RerankStore:
        """The saved store; ValueError when a file is missing or does not match the
        manifest's checksums."""
        data = (folder / RERANK_FILE).read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest.rerank_sha256:
            raise ValueError(f"re-rank map in {folder} does not match its manifest")
        saved = np.load(io.BytesIO(data))
        base = np.load(folder / VECTORS_FILE, mmap_mode="r")
        digest = hashlib.sha256()
        for start in range(0, len(base), SCAN_ROWS):
            digest.update(np.ascontiguousarray(base[start : start + SCAN_ROWS]).data)
        if digest.hexdigest() != manifest.vectors_sha256 or base.shape[1:] != (manifest.dim,):
            raise ValueError(f"exact vectors in {folder} do not match their manifest")
        return cls(
            manifest.dim,
            saved["ids"],
            saved["rows"],
            base,
            saved["tail"],
            (folder / VECTORS_FILE, manifest.vectors_sha256),
        )
