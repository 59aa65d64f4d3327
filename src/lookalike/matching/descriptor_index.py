"""Candidate products from local descriptors: an inverted file over compressed RootSIFT.

Every catalog descriptor is stored in a FAISS IVF-PQ index under its product's id (16-byte
PQ code + 8-byte id = 24 bytes a descriptor, 9.6 KB for a product's 400). Each photo
descriptor votes for the product of its nearest catalog descriptor when that one is
clearly nearer than the nearest descriptor of any *other* product (Lowe's ratio test
across products); products are ranked by votes / sqrt(their descriptor count). The top
few are then verified geometrically (matching/verify.py).

Measured on SMVS (400 phone photos; 100 DVD covers + 2,946 fashion products, 481k
descriptors): the photographed product is the first candidate for 98.8% of photos and
among the first five for all of them, in about 30 ms a photo on one core, where a flat
search over every descriptor takes 0.45 s at 100 products (4 of 1,024 lists probed).

Small catalogs (under ``FLAT_MAX`` descriptors) use an exact flat index instead: too few
descriptors to train a quantizer, and cheap to search anyway. Like the product index, it
is derived data: saved with a manifest, checked against the database at load, rebuilt
from the stored features when they disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np

from lookalike.index.vector_index import (
    all_build_threads,
    atomic_write,
    ids_checksum,
    one_query_thread,
)
from lookalike.matching.features import DESCRIPTOR_DIM

FLAT_MAX = 50_000  # descriptors: below this, exact search (about 125 products)
PQ_BYTES = 16  # 16 sub-quantizers x 8 bits
NPROBE = 4
NEIGHBOURS = 5  # per photo descriptor: enough to find the nearest *other* product
VOTE_RATIO = 0.9  # looser than verification's 0.8: PQ distances are approximate
SAME_DISTANCE = 1e-5  # relative: neighbours this near the first hold the same descriptor
ADD_CHUNK = 1 << 20  # descriptors added per call when building (512 MB as float32)
MIN_COUNT = 50  # floor of the count normalisation: tiny feature sets would win on luck
# A photo's descriptors are searched in parts, one a core, at least this many a part:
# 47 -> 32 ms for 1,000 descriptors at 1.8M on two cores. Threads of our own, not FAISS's
# OpenMP ones, which keep spinning after a search and slow the model's next inference
# (index/vector_index.py). (Verifying candidates side by side gained nothing: the
# matching's BLAS already uses both cores.)
SEARCH_THREADS = os.cpu_count() or 1
SEARCH_PART_MIN = 256
INDEX_FILE = "descriptors.faiss"
COUNTS_FILE = "counts.npy"
MANIFEST_FILE = "manifest.json"


class Vote(NamedTuple):
    """A candidate product: how many photo descriptors voted for it, and its score
    (votes / sqrt(its descriptor count))."""

    product_id: int
    score: float
    votes: int


@dataclass
class DescriptorManifest:
    """What a saved descriptor index holds; compared with the database at load."""

    feature_version: str
    kind: str  # "flat" or "ivfpq"
    products: int
    descriptors: int
    ids_sha256: str
    trained_on: int = 0  # descriptors the quantizer was trained on (0 for flat)
    nlist: int = 0
    index_sha256: str = ""
    counts_sha256: str = ""
    built_at: str = ""


class DescriptorIndex:
    """Thread-safe: searches, adds and removals take one lock (as the product index's do)."""

    def __init__(
        self, index: faiss.Index, manifest: DescriptorManifest, counts: dict[int, int]
    ) -> None:
        self.index = index
        self.manifest = manifest
        self._counts = counts
        self._lock = threading.RLock()
        self._refresh()

    @classmethod
    def build(
        cls,
        feature_version: str,
        items: Iterable[tuple[int, np.ndarray]],
        *,
        flat_max: int = FLAT_MAX,
        nlist: int | None = None,
    ) -> DescriptorIndex:
        """Index ``(product id, RootSIFT n x 128)`` pairs, training a quantizer (with
        ``nlist`` lists, default about sqrt(n)) past ``flat_max`` descriptors.

        The descriptors are held as float16 until they are added, a chunk at a time: at
        100k products (18M descriptors) that is 4.6 GB where one float32 array, and the
        parts it was joined from, took 18 GB."""
        pids, parts, counts = [], [], {}
        for pid, desc in items:
            # A product without keypoints (a blank image) is still recorded, so the id
            # set matches the database's.
            counts[int(pid)] = len(desc)
            if len(desc):
                pids.append(int(pid))
                parts.append(np.asarray(desc, dtype=np.float16))
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        n = int(sizes.sum())
        manifest = DescriptorManifest(feature_version, "flat", 0, 0, "")
        with all_build_threads():
            if n <= flat_max:
                index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatL2(DESCRIPTOR_DIM))
            else:
                nlist = nlist or _nlist(n)
                quantizer = faiss.IndexFlatL2(DESCRIPTOR_DIM)
                # Not the faster 4-bit fast-scan PQ (votes 29 instead of 49 ms at 1.8M
                # descriptors): in faiss 1.15 its lists lose vectors added after a removal
                # (3.5% of re-added vectors no longer find themselves; SMVS R@1 of re-added
                # products fell to 0.92), and this index takes single-product writes.
                ivf = faiss.IndexIVFPQ(quantizer, DESCRIPTOR_DIM, nlist, PQ_BYTES, 8)
                # 40 descriptors a list, 10 k-means rounds: training 2.6 s instead of 18.6
                # at 481k descriptors (100k samples, 25 rounds); the photographed product
                # is the first candidate for 98.5% of SMVS photos instead of 99%, and in
                # the first three for 99.75% instead of all.
                ivf.cp.niter = 10
                # The same for the product quantizer's 16 k-means (25 rounds by default):
                # training 2.0 -> 1.3 s at 442k descriptors.
                ivf.pq.cp.niter = 10
                rng = np.random.default_rng(0)
                picked = np.sort(rng.choice(n, size=min(n, max(40 * nlist, 20_000)), replace=False))
                ivf.train(_rows(parts, sizes, picked))
                ivf.nprobe = NPROBE
                index = ivf
                manifest.kind, manifest.nlist, manifest.trained_on = "ivfpq", nlist, n
            start = 0
            while start < len(parts):  # about ADD_CHUNK descriptors a call
                stop = start + 1 + int(np.searchsorted(np.cumsum(sizes[start:]), ADD_CHUNK))
                chunk = slice(start, min(stop, len(parts)))
                index.add_with_ids(
                    np.concatenate(parts[chunk]).astype(np.float32),
                    np.repeat(np.array(pids[chunk], dtype=np.int64), sizes[chunk]),
                )
                start = chunk.stop
        manifest.built_at = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(index, manifest, counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, product_id: int) -> bool:
        return product_id in self._counts

    def product_ids(self) -> list[int]:
        """The products the index holds (with or without descriptors)."""
        with self._lock:
            return list(self._counts)

    @property
    def outgrown(self) -> bool:
        """True when the catalog has grown so far past what the index was built for that
        a rebuild pays: a flat index over ``FLAT_MAX`` descriptors, or an IVF-PQ index
        holding 4x what its quantizer was trained on."""
        m = self.manifest
        if m.kind == "flat":
            return m.descriptors > 2 * FLAT_MAX
        return m.descriptors > 4 * m.trained_on

    def add(self, items: Iterable[tuple[int, np.ndarray]]) -> None:
        """Add (or replace) products' descriptors: ``(product id, RootSIFT)`` pairs. One
        call per batch: each call scans every list once to drop replaced products."""
        items = [(int(pid), desc) for pid, desc in items]
        if not items:
            return
        with self._lock:
            self._drop([pid for pid, _ in items])
            kept = [(pid, d) for pid, d in items if len(d)]
            if kept:
                ids = np.concatenate([np.full(len(d), pid, dtype=np.int64) for pid, d in kept])
                x = np.concatenate([np.ascontiguousarray(d, dtype=np.float32) for _, d in kept])
                self.index.add_with_ids(x, ids)
            for pid, d in items:
                self._counts[pid] = len(d)
            self._refresh()

    def remove(self, product_ids: np.ndarray) -> None:
        """Remove products' descriptors (unknown ids are ignored)."""
        with self._lock:
            if self._drop([int(i) for i in product_ids]):
                self._refresh()

    def _drop(self, product_ids: list[int]) -> bool:
        """Remove the known ones of these products, without refreshing the manifest (a
        checksum over every id); True if there were any."""
        present = [pid for pid in product_ids if pid in self._counts]
        if present:
            self.index.remove_ids(faiss.IDSelectorBatch(np.array(present, dtype=np.int64)))
            for pid in present:
                del self._counts[pid]
        return bool(present)

    def votes(self, rootsift: np.ndarray, top: int) -> list[Vote]:
        """The ``top`` products with the most (normalised) votes from a photo's
        descriptors, best first."""
        if len(rootsift) == 0 or self.index.ntotal == 0:
            return []
        with self._lock:  # FAISS indexes may not be searched while they are changed
            k = min(NEIGHBOURS, int(self.index.ntotal))
            dist, nn = self._search(np.ascontiguousarray(rootsift, dtype=np.float32), k)
        first = nn[:, 0]
        # The same descriptor stored under several listings (one image under several
        # SKUs) is met at the very same distance: that is one match, not an ambiguous
        # one. Each listing gets its vote, and the ratio test looks beyond them (without
        # this, copies cancelled each other's votes: no candidate, no exact match).
        same = (nn >= 0) & (dist <= dist[:, :1] * (1 + SAME_DISTANCE))
        listed = np.where(same, nn, -2)  # the products holding it; other neighbours of
        # theirs (a repeated pattern on one product) are no rivals either
        other = (nn >= 0) & ~(nn[:, :, None] == listed[:, None, :]).any(axis=2)
        has_other = other.any(axis=1)
        ref = np.where(has_other, dist[np.arange(len(nn)), other.argmax(axis=1)], np.inf)
        # With no other product among the neighbours, the match is distinctive: it counts.
        ok = (first >= 0) & (dist[:, 0] < VOTE_RATIO**2 * ref)
        rows, cols = np.nonzero(same & ok[:, None])
        # One vote a match and product (a product may hold the descriptor twice).
        pairs = np.unique(np.stack([rows, nn[rows, cols]], axis=1), axis=0)
        voted, count = np.unique(pairs[:, 1], return_counts=True)
        if len(voted) == 0:
            return []
        with self._lock:
            sizes = np.array([self._counts.get(int(p), MIN_COUNT) for p in voted], np.float64)
        score = count / np.sqrt(np.maximum(sizes, MIN_COUNT))
        best = np.argsort(-score, kind="stable")[:top]
        return [Vote(int(voted[i]), float(score[i]), int(count[i])) for i in best]

    def _search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``index.search`` in parts on the search threads (FAISS searches are safe to run
        concurrently; the caller holds the lock against writes)."""
        parts = min(SEARCH_THREADS, len(x) // SEARCH_PART_MIN)
        if parts <= 1:
            return _search_part(self.index, x, k)
        found = list(
            _search_pool().map(
                lambda part: _search_part(self.index, part, k), np.array_split(x, parts)
            )
        )
        return np.concatenate([d for d, _ in found]), np.concatenate([i for _, i in found])

    def _refresh(self) -> None:
        self.manifest.products = len(self._counts)
        self.manifest.descriptors = int(self.index.ntotal)
        self.manifest.ids_sha256 = ids_checksum(np.fromiter(self._counts, np.int64))

    def memory_bytes(self) -> int:
        """Bytes the index holds in RAM (codes and ids; the flat index holds floats)."""
        n = int(self.index.ntotal)
        per = (PQ_BYTES + 8) if self.manifest.kind == "ivfpq" else (4 * DESCRIPTOR_DIM + 8)
        return n * per

    # ---- persistence -------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Index, counts, then the manifest with both checksums, each written atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            data = faiss.serialize_index(self.index).tobytes()
            counts = np.array(sorted(self._counts.items()), dtype=np.int64).reshape(-1, 2)
            self.manifest.index_sha256 = hashlib.sha256(data).hexdigest()
            counts_bytes = counts.tobytes()
            self.manifest.counts_sha256 = hashlib.sha256(counts_bytes).hexdigest()
            manifest = json.dumps(asdict(self.manifest), indent=2).encode()
        atomic_write(folder / INDEX_FILE, data)
        atomic_write(folder / COUNTS_FILE, counts_bytes)
        atomic_write(folder / MANIFEST_FILE, manifest)

    @classmethod
    def load(cls, folder: Path) -> DescriptorIndex:
        """Load a saved index; ValueError if it is incomplete or corrupt."""
        try:
            manifest = DescriptorManifest(**json.loads((folder / MANIFEST_FILE).read_text()))
            data = (folder / INDEX_FILE).read_bytes()
            counts_bytes = (folder / COUNTS_FILE).read_bytes()
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"no usable descriptor index in {folder}: {exc}") from exc
        if (
            hashlib.sha256(data).hexdigest() != manifest.index_sha256
            or hashlib.sha256(counts_bytes).hexdigest() != manifest.counts_sha256
        ):
            raise ValueError(f"descriptor index in {folder} does not match its manifest")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if manifest.kind == "ivfpq":
            faiss.extract_index_ivf(index).nprobe = NPROBE
        pairs = np.frombuffer(counts_bytes, dtype=np.int64).reshape(-1, 2)
        return cls(index, manifest, {int(p): int(c) for p, c in pairs})


@functools.cache
def _search_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="descriptor-search")


def _search_part(index: faiss.Index, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    one_query_thread()
    dist, nn = index.search(x, k)
    return dist, nn


def _rows(parts: list[np.ndarray], sizes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The descriptors at sorted positions ``rows`` of the parts joined end to end, as
    float32 (without joining them)."""
    ends = np.cumsum(sizes)
    part = np.searchsorted(ends, rows, side="right")
    offset = rows - (ends - sizes)[part]
    return np.stack(
        [parts[p][o] for p, o in zip(part.tolist(), offset.tolist(), strict=True)]
    ).astype(np.float32)


def _nlist(n: int) -> int:
    """About 2 sqrt(n) lists (a power of two, 256..16384): each photo descriptor then
    scans about 2 sqrt(n) codes in NPROBE lists, and compares itself with every list's
    centroid. At 481k descriptors: 1,024 lists, 30 ms for a 1,000-descriptor photo."""
    return int(min(16384, max(256, 2 ** round(math.log2(2 * math.sqrt(n))))))
