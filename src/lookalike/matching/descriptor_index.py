"""Candidate products from local descriptors: an inverted file over compressed RootSIFT.

Every catalog descriptor is stored in a FAISS IVF-PQ index under its product's id (32-byte
PQ code + 8-byte id = 40 bytes a descriptor, 16 KB for a product's 400): 64 sub-quantizers
of 4 bits, scanned with SIMD look-ups (FAISS's "fast scan"). Each photo
descriptor votes for the product of its nearest catalog descriptor when that one is
clearly nearer than the nearest descriptor of any *other* product (Lowe's ratio test
across products); products are ranked by votes / sqrt(their descriptor count). The top
few are then verified geometrically (matching/verify.py).

Measured on SMVS (400 phone photos; 100 DVD covers + 2,946 fashion products, 481k
descriptors): the photographed product is the first candidate for 98.8% of photos and
among the first five for all of them, in about 10 core-ms a photo, where a flat search
over every descriptor takes 0.45 s at 100 products (4 of 1,024 lists probed).

Small catalogs (under ``FLAT_MAX`` descriptors) use an exact flat index instead: too few
descriptors to train a quantizer, and cheap to search anyway. Like the product index, it
is derived data: saved with a manifest, checked against the database at load, rebuilt
from the stored features when they disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np

from lookalike.index.vector_index import (
    all_build_threads,
    atomic_write,
    ids_checksum,
    one_query_thread,
)
from lookalike.matching.features import DESCRIPTOR_DIM

log = logging.getLogger(__name__)

FLAT_MAX = 50_000  # descriptors: below this, exact search (about 125 products)
PQ_BYTES = 32  # 64 sub-quantizers x 4 bits
# RAM a descriptor takes in each kind with its 8-byte id ("ivfpq": 16 x 8-bit codes, the
# kind built before the fast-scan one; indexes saved then still load and answer).
DESCRIPTOR_BYTES = {"flat": 4 * DESCRIPTOR_DIM + 8, "ivfpq": 16 + 8, "ivfpq4": PQ_BYTES + 8}
# The FAISS class each kind is saved as: anything else in a file is refused at load (and
# rebuilt), e.g. fast-scan codes under another kind's name, whose removals would corrupt.
_KIND_CLASSES = {
    "flat": faiss.IndexIDMap2,
    "ivfpq": faiss.IndexIVFPQ,
    "ivfpq4": faiss.IndexIVFPQFastScan,
}
# Manifests written since the fast-scan kind carry ``format`` 2: code from before it,
# which knows no such field, refuses them and rebuilds, rather than removing from a
# fast-scan index without the workaround (_remove_from_fast_scan).
MANIFEST_FORMAT = 2
NPROBE = 4
NEIGHBOURS = 5  # per photo descriptor: enough to find the nearest *other* product
VOTE_RATIO = 0.9  # looser than verification's 0.8: PQ distances are approximate
SAME_DISTANCE = 1e-5  # relative: neighbours this near the first hold the same descriptor
ADD_CHUNK = 1 << 20  # descriptors added per call when building (512 MB as float32)
# Descriptors kept between the build's two passes, rather than read again: 2M, about
# 11k products' worth (the dev set's 440k take 225 MB). As float32, as they come: numpy's
# float16 -> float32 conversion is slow on RootSIFT's many zeros (0.6 s for the dev set's
# descriptors; reading them again from the database and recomputing RootSIFT: 0.26 s).
HOLD_BYTES = 1 << 30
# The most descriptors the quantizers are trained on: 40 a list at the most lists
# (16,384), 335 MB.
TRAIN_MAX = 40 * 16384
MIN_COUNT = 50  # floor of the count normalisation: tiny feature sets would win on luck
# Two products a photo's matches are ambiguous between this often are asked whether they
# are listings of one picture (at most LISTING_CHECKS pairs a photo, most ambiguous first).
# A phone photo of an SMVS cover with a re-encoded copy under another SKU: 20-60 of the
# cover's matches were ambiguous between the two (its votes fell from ~100 to 10-18).
LISTING_AMBIGUITY = 6
LISTING_CHECKS = 4
# A photo's descriptors are searched in parts, one a core, at least this many a part:
# 47 -> 32 ms for 1,000 descriptors at 1.8M on two cores. Threads of our own, not FAISS's
# OpenMP ones, which keep spinning after a search and slow the model's next inference
# (index/vector_index.py). Candidates are verified one after another, each on one BLAS
# thread (lookalike/threads.py): a busy server's parallelism is its requests.
SEARCH_THREADS = os.cpu_count() or 1
SEARCH_PART_MIN = 256
# From this many lists on, a photo descriptor's NPROBE nearest lists are found in an HNSW
# graph over the lists' centroids instead of by comparing it with every centroid, whose
# cost grows with the lists (the catalog). 600 photo descriptors on one core (2026-11-29,
# a slow VM day): 31 / 157 / 500 ms against 2,048 / 8,192 / 16,384 centroids (10k / 100k
# / 1M products), the graph 16 / 54 / 79 ms (efSearch 32 / 64 / 64), finding 0.999 /
# 0.9997 / 0.9992 of the same lists (16,384: stand-in centroids). The votes of 100 SMVS
# photos at 10k: 125.8 -> 104.8 core-ms a photo with 2,048 lists, 162.7 -> 68.5 with
# 8,192, the same five best candidates for every photo. Built at load from the stored
# quantizer (0.1 / 0.9 / 2.3 s on one core); writes still assign with the exact one.
HNSW_MIN_LISTS = 2048
HNSW_NEIGHBOURS = 32  # the graph's M
INDEX_FILE = "descriptors.faiss"
COUNTS_FILE = "counts.npy"
MANIFEST_FILE = "manifest.json"


#: Whether two products (ids) are listings of one picture: the duplicates decision.
SameListing = Callable[[int, int], bool]


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
    kind: str  # a key of DESCRIPTOR_BYTES
    products: int
    descriptors: int
    ids_sha256: str
    trained_on: int = 0  # descriptors the quantizer was trained on (0 for flat)
    nlist: int = 0
    index_sha256: str = ""
    counts_sha256: str = ""
    built_at: str = ""
    format: int = 1  # MANIFEST_FORMAT when saved; 1: saved before the field existed


class DescriptorIndex:
    """Thread-safe: searches, adds and removals take one lock (as the product index's do)."""

    def __init__(
        self, index: faiss.Index, manifest: DescriptorManifest, counts: dict[int, int]
    ) -> None:
        self.index = index
        self.manifest = manifest
        self._counts = counts
        self._lock = threading.RLock()
        self._lists = _list_graph(index)
        self._refresh()

    @classmethod
    def build(
        cls,
        feature_version: str,
        items: Iterable[tuple[int, np.ndarray]],
        *,
        flat_max: int = FLAT_MAX,
        nlist: int | None = None,
        hold_bytes: int | None = None,
    ) -> DescriptorIndex:
        """Index ``(product id, RootSIFT n x 128)`` pairs, training a quantizer (with
        ``nlist`` lists, default about 2 sqrt(n)) past ``flat_max`` descriptors.

        Two passes, so that memory does not grow with the catalog: the first counts the
        descriptors and keeps a uniform sample for training, the second adds them a chunk
        at a time. Up to ``hold_bytes`` (default HOLD_BYTES) of them are kept
        from the first pass for the second; past that, ``items`` is iterated again, so it
        must be iterable twice (a list, or a reader of the database: the manager's). At
        100k products (18.8M descriptors) holding them all peaked at 8.5 GB; at 1M it
        would take 48. A product that changed between the passes is left out (the
        manager's check against the database then finds and adds it)."""
        counts: dict[int, int] = {}
        sample = _Sample(TRAIN_MAX)
        held: list[tuple[int, np.ndarray]] | None = []
        held_size, hold = 0, HOLD_BYTES if hold_bytes is None else hold_bytes
        for pid, desc in items:
            # A product without keypoints (a blank image) is still recorded, so the id
            # set matches the database's.
            counts[int(pid)] = len(desc)
            part = np.asarray(desc, dtype=np.float32)
            sample.offer(part)
            if held is not None:
                held.append((int(pid), part))
                held_size += part.nbytes
                if held_size > hold:
                    held = None
        n = sample.seen
        manifest = DescriptorManifest(feature_version, "flat", 0, 0, "")
        with all_build_threads():
            if n <= flat_max:
                index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatL2(DESCRIPTOR_DIM))
            else:
                nlist = nlist or _nlist(n)
                quantizer = faiss.IndexFlatL2(DESCRIPTOR_DIM)
                # 4-bit codes scanned with SIMD look-ups rather than 16 8-bit ones read a
                # byte at a time: on SMVS (3,046 products, 481k descriptors) the votes of a
                # phone photo took 21.4 -> 9.9 core-ms, and the photographed product got
                # more of them (the first candidate for 0.988 of the photos against 0.985;
                # of the photos shrunk to 200 px 0.897 against 0.882). 32 sub-quantizers
                # (the same 16 bytes) were faster still but lost votes: 0.877 at 200 px.
                # Removals go through _remove_from_fast_scan (a faiss bug, worked around).
                ivf = faiss.IndexIVFPQFastScan(quantizer, DESCRIPTOR_DIM, nlist, 2 * PQ_BYTES, 4)
                # 40 descriptors a list, 10 k-means rounds: training 2.6 s instead of 18.6
                # at 481k descriptors (100k samples, 25 rounds); the photographed product
                # is the first candidate for 98.5% of SMVS photos instead of 99%, and in
                # the first three for 99.75% instead of all (measured with 8-bit codes).
                ivf.cp.niter = 10
                # The same for the product quantizer's k-means (25 rounds by default):
                # training 2.0 -> 1.3 s at 442k descriptors (8-bit codes).
                ivf.pq.cp.niter = 10
                ivf.train(sample.pick(max(40 * nlist, 20_000)))
                ivf.nprobe = NPROBE
                index = ivf
                manifest.kind, manifest.nlist, manifest.trained_on = "ivfpq4", nlist, n
            seen = _add_in_chunks(index, held if held is not None else items, counts)
        if n and not seen:
            raise ValueError("the descriptors could not be read a second time")
        manifest.built_at = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(index, manifest, {pid: c for pid, c in counts.items() if pid in seen})

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
            selector = faiss.IDSelectorBatch(np.array(present, dtype=np.int64))
            if isinstance(self.index, faiss.IndexIVFFastScan):
                _remove_from_fast_scan(self.index, selector)
            else:
                self.index.remove_ids(selector)
            for pid in present:
                del self._counts[pid]
        return bool(present)

    def votes(
        self, rootsift: np.ndarray, top: int, same_listing: SameListing | None = None
    ) -> list[Vote]:
        """The ``top`` products with the most (normalised) votes from a photo's
        descriptors, best first. ``same_listing`` tells whether two products that many
        matches are ambiguous between are listings of one picture (re-encoded or resized
        under another SKU): then each listing gets those matches' votes."""
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
        if same_listing is not None:
            # A copy's descriptors are near, not equal: the same match, decided per pair.
            same |= _other_listings(dist, nn, same, same_listing)
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
            return _search_part(self.index, self._lists, x, k)
        found = list(
            _search_pool().map(
                lambda part: _search_part(self.index, self._lists, part, k),
                np.array_split(x, parts),
            )
        )
        return np.concatenate([d for d, _ in found]), np.concatenate([i for _, i in found])

    def _refresh(self) -> None:
        self.manifest.products = len(self._counts)
        self.manifest.descriptors = int(self.index.ntotal)
        self.manifest.ids_sha256 = ids_checksum(np.fromiter(self._counts, np.int64))

    def memory_bytes(self) -> int:
        """Bytes the index holds in RAM (codes and ids; the flat index holds floats), and
        the lists' graph (centroids and links) when it has one."""
        n = int(self.index.ntotal)
        per = DESCRIPTOR_BYTES[self.manifest.kind]
        graph = 0
        if self._lists is not None:
            # Level 0 holds 2M links of 4 bytes a node; the upper levels add a few percent.
            graph = self._lists.ntotal * (4 * DESCRIPTOR_DIM + 2 * HNSW_NEIGHBOURS * 4)
        return n * per + graph

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
            self.manifest.format = MANIFEST_FORMAT
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
        expected = _KIND_CLASSES.get(manifest.kind)
        if expected is None or type(index) is not expected:
            raise ValueError(
                f"descriptor index in {folder} holds a {type(index).__name__}, "
                f"not the {manifest.kind!r} kind its manifest names"
            )
        if manifest.kind != "flat":
            faiss.extract_index_ivf(index).nprobe = NPROBE
        if manifest.kind == "ivfpq":
            log.warning(
                "the descriptor index in %s holds 8-bit codes: `lookalike index rebuild` "
                "makes it the fast-scan kind (votes about twice as fast)",
                folder,
            )
        pairs = np.frombuffer(counts_bytes, dtype=np.int64).reshape(-1, 2)
        return cls(index, manifest, {int(p): int(c) for p, c in pairs})


def _other_listings(
    dist: np.ndarray, nn: np.ndarray, same: np.ndarray, same_listing: SameListing
) -> np.ndarray:
    """Which neighbours are other listings of the first neighbour's picture: products
    that many of the photo's matches are ambiguous between (a neighbour within the ratio
    test's reach of the first), confirmed by ``same_listing``."""
    first = nn[:, :1]
    rival = (nn >= 0) & ~same & (nn != first) & (dist[:, :1] >= VOTE_RATIO**2 * dist)
    rows, cols = np.nonzero(rival)
    found = np.zeros_like(same)
    if len(rows) == 0:
        return found
    a, b = first[rows, 0], nn[rows, cols]
    # Each photo descriptor counts once for a pair.
    seen = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b), rows], axis=1), axis=0)
    pairs, count = np.unique(seen[:, :2], axis=0, return_counts=True)
    asked = np.argsort(-count, kind="stable")[:LISTING_CHECKS]
    confirmed = [
        (int(x), int(y))
        for x, y in pairs[asked[count[asked] >= LISTING_AMBIGUITY]]
        if same_listing(int(x), int(y))
    ]
    if not confirmed:
        return found
    root: dict[int, int] = {}  # each listing's group, named by its smallest id

    def group(x: int) -> int:
        while root.get(x, x) != x:
            x = root[x]
        return x

    for x, y in confirmed:
        gx, gy = group(x), group(y)
        root[max(gx, gy)] = min(gx, gy)
    groups = np.array([group(int(x)) for x in nn.ravel()], dtype=np.int64).reshape(nn.shape)
    listings: np.ndarray = (nn >= 0) & (groups == groups[:, :1])
    return listings


@functools.cache
def _search_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="descriptor-search")


def _search_part(
    index: faiss.Index, lists: faiss.IndexHNSWFlat | None, x: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``, or, given the ``lists`` graph (:func:`_list_graph`), the IVF
    lists it finds searched as if the index's own quantizer had chosen them."""
    one_query_thread()
    if lists is None:
        dist, nn = index.search(x, k)
    else:
        centroid_dist, probed = lists.search(x, NPROBE)
        # The Python wrapper's signature (x, k, assign, centroid_dis); faiss's stubs
        # describe the C++ one.
        ivf: Any = index
        dist, nn = ivf.search_preassigned(x, k, probed, centroid_dist)
    return dist, nn


def _list_sizes(index: faiss.IndexIVF) -> np.ndarray:
    """How many entries each of the index's lists holds."""
    lists = index.invlists
    assert lists is not None
    return np.array([lists.list_size(i) for i in range(index.nlist)], dtype=np.int64)


def _remove_from_fast_scan(index: faiss.IndexIVFFastScan, selector: faiss.IDSelector) -> None:
    """``index.remove_ids``, then zero the codes left behind in the last block of each
    list it shortened.

    faiss (1.9 to 1.15 at least) packs a fast-scan list's codes 32 to a block; a removal
    moves the list's last entries into the freed places but leaves their old codes in
    the block's slots past the new end, and a later add ORs its codes into those slots.
    Codes added after a removal were then corrupt: 44% of 2,000 removed and re-added
    random vectors no longer found themselves. Setting a freed slot to code 0 (the
    packer sets a code, it does not OR it) fixes that.
    """
    before = _list_sizes(index)
    index.remove_ids(selector)
    after = _list_sizes(index)
    assert index.invlists is not None
    lists = faiss.downcast_InvertedLists(index.invlists)
    packer = index.get_CodePacker()
    zero = np.zeros(packer.code_size, dtype=np.uint8)
    for list_no in np.flatnonzero(after < before):
        end = int(after[list_no])
        block_end = -(-end // packer.nvec) * packer.nvec
        if block_end == end:
            continue  # the freed slots' blocks were released
        blocks = block_end // packer.nvec
        codes = faiss.rev_swig_ptr(lists.get_codes(int(list_no)), blocks * packer.block_size)
        codes = codes.reshape(blocks, packer.block_size)
        for slot in range(end, block_end):
            packer.pack_1(zero, slot, codes)


def _list_graph(index: faiss.Index) -> faiss.IndexHNSWFlat | None:
    """An HNSW graph over an IVF index's list centroids (HNSW_MIN_LISTS lists or more);
    None for a flat index or fewer lists, which compare a descriptor with every centroid."""
    if not isinstance(index, faiss.IndexIVF) or index.nlist < HNSW_MIN_LISTS:
        return None
    graph = faiss.IndexHNSWFlat(DESCRIPTOR_DIM, HNSW_NEIGHBOURS)
    graph.hnsw.efConstruction = 80
    graph.hnsw.efSearch = 32 if index.nlist <= 4096 else 64
    graph.add(index.quantizer.reconstruct_n(0, index.nlist))
    return graph


class _Sample:
    """A uniform sample of at most ``size`` descriptor rows of those offered (reservoir
    sampling); every row while there are no more than ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen = 0
        self._parts: list[np.ndarray] = []
        self._rows: np.ndarray | None = None  # once full
        self._rng = np.random.default_rng(0)

    def offer(self, rows: np.ndarray) -> None:
        if self._rows is None:
            free = self.size - self.seen
            self._parts.append(rows[:free])
            self.seen += min(free, len(rows))
            rows = rows[free:]
            if self.seen == self.size:
                self._rows, self._parts = np.concatenate(self._parts), []
        if len(rows) and self._rows is not None:
            # Row t of the stream replaces a random slot with probability size / (t + 1).
            slot = self._rng.integers(0, self.seen + 1 + np.arange(len(rows)))
            kept = slot < self.size
            self._rows[slot[kept]] = rows[kept]
            self.seen += len(rows)

    def pick(self, size: int) -> np.ndarray:
        """``size`` of the sampled rows (all when fewer), as float32, drawn as the build
        always drew them (the same rows as before the sample existed, up to its size)."""
        rows = self._rows if self._rows is not None else np.concatenate(self._parts)
        n = len(rows)
        picked = np.sort(np.random.default_rng(0).choice(n, size=min(n, size), replace=False))
        return np.asarray(rows[picked], dtype=np.float32)


def _add_in_chunks(
    index: faiss.Index, items: Iterable[tuple[int, np.ndarray]], counts: dict[int, int]
) -> set[int]:
    """Add the products counted in ``counts`` (with as many descriptors as counted),
    about ADD_CHUNK descriptors a call; the ids of those found."""
    seen: set[int] = set()
    ids: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    size = 0
    for pid, desc in items:
        if counts.get(int(pid)) != len(desc):
            continue  # added or changed since it was counted
        seen.add(int(pid))
        if len(desc):
            parts.append(np.asarray(desc, dtype=np.float32))
            ids.append(np.full(len(desc), pid, dtype=np.int64))
            size += len(desc)
        if size >= ADD_CHUNK:
            index.add_with_ids(np.concatenate(parts), np.concatenate(ids))
            parts, ids, size = [], [], 0
    if parts:
        index.add_with_ids(np.concatenate(parts), np.concatenate(ids))
    return seen


def _nlist(n: int) -> int:
    """About 2 sqrt(n) lists (a power of two, 256..16384): each photo descriptor then
    scans about 2 sqrt(n) codes in NPROBE lists, and compares itself with every list's
    centroid. At 481k descriptors: 1,024 lists, 30 ms for a 1,000-descriptor photo."""
    return int(min(16384, max(256, 2 ** round(math.log2(2 * math.sqrt(n))))))
