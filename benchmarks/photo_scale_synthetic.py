"""Phone photo search at 100k-1M products: a real catalog and real photos, with synthetic
distractors in the descriptor index.

    python -m benchmarks.photo_scale_synthetic [--home DIR] [--sizes 3046,100000,300000,1000000]
        [--queries 100] [--bank 5892] [--noise 0.15] [--quantizer flat|hnsw]
        [--plot docs/img/photo-scale-synthetic.png] [--out reports/photo-scale-synthetic.json]
        [--max-others 0.25] [--retries 2] [--wait 300]

SIFT and the CNN on a million catalog images (about 4 core-hours) and the descriptor
index build's coarse assignment of 188M descriptors (about 2 hours) do not fit a session
on a 2-core machine, so only the descriptor index is grown, with made-up products:

- **Real**: the 100 SMVS covers and the 2,946 fashion dev products, ingested as any
  catalog is (database, product index, stored local features) into ``--home`` (default
  /tmp/lookalike-photo-scale-synthetic, kept: a second run reuses it); the SMVS phone photos
  (``--queries``, evenly over the four phones), searched one at a time through
  ``Engine.search_files`` with both paths alternating (benchmarks/photo_search.py:
  ``measure``). A size equal to the real catalog (3,046) measures it as ingested.
- **Synthetic**: products that exist only in the descriptor index (ids no product has).
  A bank of ``--bank`` real augmented copies of the fashion products (made as
  benchmarks/photo_scale.py makes its distractors, and described by SIFT as ingest
  describes a catalog image: real descriptors, about 185 a copy) is made at start; each
  synthetic product is one of them, its descriptors moved by a little noise (``--noise``,
  0.15: a median RootSIFT distance of 0.13; without it replicas of one copy tie exactly,
  and the index treats exact ties as one image listed under several SKUs), PQ-encoded in
  the nearest of the bank descriptor's list and its neighbours (no full coarse
  assignment: hours at 188M) and added with ``add_sa_codes``. When one is a candidate,
  its bank copy's features stand in for its stored ones (:class:`StandInStore`), so it
  is verified at a real verification's cost, and as a copy of a fashion photo would be.
- The quantizer is trained as the product trains one at that size (``_nlist`` lists, 40
  samples a list, 10 k-means rounds), on a sample of the index's content; sizes with the
  same number of lists share one index, grown in place. ``--quantizer hnsw``: an HNSW
  coarse quantizer over 4x the lists (65,536 at 1M), the path docs/benchmarks.md names.

Each size prints one JSON line as soon as it is measured: both paths' p50/p99 (wall and
this process's CPU time), R@1, the votes stage alone, where the photographed product
ranks among the candidates, how many wrong and synthetic candidates are verified, the
index's RAM, and how busy the rest of the machine was (each timing waits up to ``--wait``
seconds for the rest of the machine to keep at most ``--max-others`` cores busy, and is
repeated, up to ``--retries`` times, while it did not).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from PIL import Image

from benchmarks.common import REPO, machine, percentile, rss_mib
from benchmarks.photo_scale import catalog_and_queries, plot
from benchmarks.photo_search import augment, measure
from benchmarks.smvs import CATEGORY
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.evaluation.queries import PhotoQuery
from lookalike.images.loader import read_image_bytes
from lookalike.index.vector_index import all_build_threads
from lookalike.ingest.readers import CatalogRecord
from lookalike.matching.descriptor_index import (
    NPROBE,
    DescriptorIndex,
    DescriptorManifest,
    _nlist,
)
from lookalike.matching.features import (
    DESCRIPTOR_DIM,
    FEATURE_VERSION,
    LocalFeatures,
    catalog_features,
)
from lookalike.matching.verify import Query, verify
from lookalike.store.catalog import CatalogStore

SYNTHETIC_BASE = 1 << 40  # ids of synthetic products: no database row has one
CHUNK_PRODUCTS = 4096  # synthetic products added a step (~0.8M descriptors)
# From this many lists on, k-means assigns its sample through an HNSW graph of the
# centroids instead of comparing it with every one: 655k samples x 16,384 lists took
# 2.5 minutes a round on 2 busy cores (25 for the 10 rounds); the lists come out alike.
HNSW_KMEANS = 8192
NEIGHBOUR_LISTS = 4  # lists a moved descriptor may land in: its bank descriptor's and the
# nearest ones to that list


# ---- the real catalog and the bank of real augmented copies ------------------------------


@dataclass
class Descriptors:
    """RootSIFT descriptors of several pictures, as rows of one array: picture ``i`` has
    rows ``start[i] : start[i] + count[i]``, of product ``owners[row]``."""

    rootsift: np.ndarray
    start: np.ndarray
    count: np.ndarray
    owners: np.ndarray

    @classmethod
    def of(cls, parts: list[np.ndarray], owners: list[int]) -> Descriptors:
        count = np.array([len(p) for p in parts], dtype=np.int64)
        return cls(
            np.concatenate(parts).astype(np.float32),
            np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64),
            count,
            np.repeat(np.array(owners, dtype=np.int64), count),
        )


def real_descriptors(store: CatalogStore) -> tuple[Descriptors, dict[int, int]]:
    """Every real product's stored descriptors, and each product's count."""
    parts, owners, counts = [], [], {}
    for pid, data in store.iter_local_features(FEATURE_VERSION):
        desc = LocalFeatures.from_bytes(data).rootsift()
        counts[pid] = len(desc)
        if len(desc):
            parts.append(desc)
            owners.append(pid)
    return Descriptors.of(parts, owners), counts


@dataclass
class Bank:
    """Real augmented copies of catalog photos: their descriptors and stored features."""

    descriptors: Descriptors
    features: list[bytes]


def make_bank(records: list[CatalogRecord], n: int, seed: int) -> Bank:
    """``n`` augmented copies of ``records``' images (each in turn, in a shuffled order),
    described as ingest describes a catalog image."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    parts, features, start = [], [], time.perf_counter()
    for i in range(n):
        record = records[order[i % len(records)]]
        with Image.open(record.image) as image:
            copy, _ = augment(image.convert("RGB"), rng)
        f = catalog_features(copy)
        if len(f):
            parts.append(f.rootsift())
            features.append(f.to_bytes())
        if (i + 1) % 1000 == 0 or i + 1 == n:
            print(f"  bank: {i + 1:,} / {n:,} copies described "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    return Bank(Descriptors.of(parts, list(range(len(parts)))), features)


@dataclass
class Noise:
    """Moves RootSIFT descriptors by about ``distance``: a random direction, clipped to
    non-negative and brought back to unit length (RootSIFT stays on the positive unit
    sphere)."""

    distance: float

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(x.shape, dtype=np.float32)
        moved = x + z * np.float32(self.distance / math.sqrt(x.shape[1]))
        np.maximum(moved, 0, out=moved)
        moved /= np.linalg.norm(moved, axis=1, keepdims=True) + 1e-7
        return np.asarray(moved, dtype=np.float32)


# ---- the index ---------------------------------------------------------------------------


def trained_index(
    nlist: int, kind: str, sample: np.ndarray
) -> tuple[faiss.IndexIVFPQ, np.ndarray, np.ndarray]:
    """An empty IVF-PQ index trained as DescriptorIndex.build trains one (10 k-means
    rounds for the lists and for the product quantizer); its centroids and each list's
    nearest lists (itself first)."""
    if kind == "hnsw":
        quantizer: faiss.Index = faiss.IndexHNSWFlat(DESCRIPTOR_DIM, 32)
    else:
        quantizer = faiss.IndexFlatL2(DESCRIPTOR_DIM)
    # The 8-bit kind ("ivfpq", 16 bytes a code) the product built when this benchmark
    # was run; it builds 4-bit fast-scan codes now (descriptor_index.py), whose codes
    # this benchmark's ``add_sa_codes`` path does not write.
    ivf = faiss.IndexIVFPQ(quantizer, DESCRIPTOR_DIM, nlist, 16, 8)
    ivf.cp.niter = 10
    ivf.pq.cp.niter = 10
    ivf.cp.verbose = True  # one line a k-means round: the long part shows progress
    clustering = faiss.IndexHNSWFlat(DESCRIPTOR_DIM, 32)
    if nlist >= HNSW_KMEANS:  # k-means rounds assign the sample through an HNSW graph
        ivf.clustering_index = clustering
    ivf.train(sample)
    ivf.nprobe = NPROBE
    centroids = quantizer.reconstruct_n(0, nlist)
    _, neighbours = quantizer.search(centroids, NEIGHBOUR_LISTS)
    return ivf, centroids, neighbours


def encode(
    ivf: faiss.IndexIVFPQ,
    centroids: np.ndarray,
    x: np.ndarray,
    lists: np.ndarray,
    part: int = 1 << 17,
) -> np.ndarray:
    """``x`` as the index stores it (``sa_encode``'s format: the list number, then the PQ
    code of the residual), each in the nearest of the lists ``lists[i]`` (n x L)."""
    width = _list_bytes(ivf.nlist)
    out = np.empty((len(x), width + ivf.code_size), dtype=np.uint8)
    norms = (centroids**2).sum(1)
    for a in range(0, len(x), part):
        xs, ls = x[a : a + part], lists[a : a + part]
        if ls.shape[1] > 1:
            near = norms[ls] - 2 * np.einsum("nd,nld->nl", xs, centroids[ls])
            best = ls[np.arange(len(ls)), near.argmin(axis=1)]
        else:
            best = ls[:, 0]
        shifts = 8 * np.arange(width)
        out[a : a + part, :width] = (best[:, None] >> shifts[None] & 0xFF).astype(np.uint8)
        out[a : a + part, width:] = ivf.pq.compute_codes(xs - centroids[best])
    return out


def _list_bytes(nlist: int) -> int:
    """Bytes of a list number in ``sa_encode``'s format (faiss's ``coarse_code_size``)."""
    return max(1, math.ceil((nlist - 1).bit_length() / 8))


@dataclass
class Synthetic:
    """The synthetic products added so far: the bank copy each one is (product
    ``SYNTHETIC_BASE + i`` is the i-th)."""

    copies: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(c) for c in self.copies)

    def all(self) -> np.ndarray:
        return np.concatenate(self.copies) if self.copies else np.empty(0, np.int64)


@dataclass
class Built:
    """One trained index and what growing it needs: its centroids, each list's nearest
    lists, the list of each bank descriptor, and the synthetic products it holds."""

    nlist: int
    ivf: faiss.IndexIVFPQ
    centroids: np.ndarray
    neighbours: np.ndarray
    bank_lists: np.ndarray
    made: Synthetic
    train_s: float


def build(
    nlist: int,
    kind: str,
    real: Descriptors,
    bank: Bank,
    noise: Noise,
    total: int,
    seed: int,
) -> Built:
    """A trained index holding the real descriptors (PQ-encoded in their nearest list)."""
    t = time.perf_counter()
    ivf, centroids, neighbours = trained_index(
        nlist, kind, training_sample(real, bank, noise, nlist, total, seed)
    )
    train_s = time.perf_counter() - t
    _, lists = ivf.quantizer.search(real.rootsift, 1)
    ivf.add_sa_codes(encode(ivf, centroids, real.rootsift, lists), real.owners)
    _, bank_lists = ivf.quantizer.search(bank.descriptors.rootsift, 1)
    return Built(nlist, ivf, centroids, neighbours, bank_lists[:, 0], Synthetic(), train_s)


def training_sample(
    real: Descriptors, bank: Bank, noise: Noise, nlist: int, total: int, seed: int
) -> np.ndarray:
    """What DescriptorIndex.build trains on (``max(40 nlist, 20000)`` descriptors drawn from
    the whole index), drawn from the real descriptors and the synthetic ones in their
    proportions (synthetic ones: bank descriptors, moved)."""
    rng = np.random.default_rng([seed, nlist])
    size = min(total, max(40 * nlist, 20_000))
    n_real = min(len(real.rootsift), round(size * len(real.rootsift) / total))
    rows = rng.integers(len(bank.descriptors.rootsift), size=size - n_real)
    return np.concatenate(
        [real.rootsift[rng.choice(len(real.rootsift), size=n_real, replace=False)],
         noise(bank.descriptors.rootsift[rows], rng)]
    )  # fmt: skip


def grow(built: Built, bank: Bank, noise: Noise, target: int, seed: int) -> None:
    """Add synthetic products until the index holds ``target`` of them."""
    made, ivf, desc = built.made, built.ivf, bank.descriptors
    rng = np.random.default_rng([seed, len(made)])
    start, adding = time.perf_counter(), target - len(made)
    while len(made) < target:
        n = min(CHUNK_PRODUCTS, target - len(made))
        copies = rng.integers(len(desc.count), size=n)
        rows = np.concatenate(
            [
                np.arange(a, a + c)
                for a, c in zip(desc.start[copies], desc.count[copies], strict=True)
            ]
        )
        x = noise(desc.rootsift[rows], rng)
        codes = encode(ivf, built.centroids, x, built.neighbours[built.bank_lists[rows]])
        first = SYNTHETIC_BASE + len(made)
        ivf.add_sa_codes(codes, np.repeat(np.arange(first, first + n), desc.count[copies]))
        made.copies.append(copies)
        done = adding - (target - len(made))
        if done % (25 * CHUNK_PRODUCTS) < CHUNK_PRODUCTS or len(made) == target:
            spent = time.perf_counter() - start
            print(
                f"  synthetic products {len(made):,} / {target:,} "
                f"({ivf.ntotal / 1e6:.1f}M descriptors, {spent:.0f} s, "
                f"{spent / done * (target - len(made)):.0f} s to go)",
                flush=True,
            )


def placement(built: Built, bank: Bank, noise: Noise, n: int = 20_000) -> dict[str, float]:
    """On a sample of moved bank descriptors: how often one lands in the list a full
    coarse assignment would give it, and how often its code is its bank descriptor's
    (an exact tie with another replica of that copy)."""
    rng = np.random.default_rng(7)
    desc = bank.descriptors.rootsift
    rows = rng.choice(len(desc), size=min(n, len(desc)), replace=False)
    lists = built.neighbours[built.bank_lists[rows]]
    moved = encode(built.ivf, built.centroids, noise(desc[rows], rng), lists)
    still = encode(built.ivf, built.centroids, desc[rows], built.bank_lists[rows, None])
    width = _list_bytes(built.nlist)
    ours = (moved[:, :width].astype(np.int64) << (8 * np.arange(width))).sum(1)
    _, true = built.ivf.quantizer.search(noise(desc[rows], np.random.default_rng(7)), 1)
    return {
        "in_assigned_list": round(float(np.mean(ours == true[:, 0])), 3),
        "same_code_as_bank": round(float(np.mean((moved == still).all(axis=1))), 4),
    }


# ---- search with synthetic products -----------------------------------------------------


class StandInStore(CatalogStore):
    """The catalog's store, answering for a synthetic product's stored local features with
    its bank copy's (and counting how many it answered for)."""

    def __init__(self, url: str, bank: Bank) -> None:
        super().__init__(url)
        self.bank = bank
        self.copies = np.empty(0, np.int64)
        self.served = 0

    def local_features(self, ids: Sequence[int], feature_version: str) -> dict[int, bytes]:
        real = [int(i) for i in ids if i < SYNTHETIC_BASE]
        out = super().local_features(real, feature_version) if real else {}
        for i in ids:
            if i >= SYNTHETIC_BASE:
                out[int(i)] = self.bank.features[int(self.copies[i - SYNTHETIC_BASE])]
                self.served += 1
        return out


def candidate_stats(engine: Engine, queries: list[PhotoQuery]) -> dict[str, Any]:
    """The votes stage alone, timed, for each photo (as search/photo.py calls it: the
    strongest ``vote_keypoints``), and what it proposes for verification (``min_votes``,
    the first ``local_candidates``): is the photographed product first, is it there, how
    many wrong products and how many synthetic ones are verified, and how many synthetic
    ones pass (their bank copy's features standing in)."""
    index = engine.local_index
    assert index is not None
    p = engine.verify_params
    ids = {sku: pr.id for sku, pr in engine.store.get_many([q.sku for q in queries]).items()}
    top = 4 * (p.local_candidates + p.global_candidates)  # as search/photo.py asks
    wall, cpu, first, among, wrong, synthetic = [], [], [], [], [], []
    passed = exact = 0
    for n, q in enumerate(queries):
        data = read_image_bytes(q.image, engine.limits.max_bytes)
        features = engine.query_features(engine.load_query(data, str(q.image)))
        assert features is not None
        query = Query.of(features)
        if n == 0:  # warm-up
            index.votes(query.rootsift[: p.vote_keypoints], top)
        t, c = time.perf_counter(), time.process_time()
        found = index.votes(query.rootsift[: p.vote_keypoints], top)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        voted = [v.product_id for v in found if v.votes >= p.min_votes][: p.local_candidates]
        right = ids.get(q.sku)
        first.append(bool(voted) and voted[0] == right)
        among.append(right in voted)
        wrong.append(sum(1 for pid in voted if pid != right))
        made = [pid for pid in voted if pid >= SYNTHETIC_BASE]
        synthetic.append(len(made))
        for data_ in engine.store.local_features(made, FEATURE_VERSION).values():
            check = verify(query, LocalFeatures.from_bytes(data_), p.min_inliers)
            passed += check.inliers >= p.min_inliers
            exact += check.is_exact(p.min_inliers, p.min_coverage)
    return {
        "votes_p50_ms": round(percentile(wall, 50), 1),
        "votes_p99_ms": round(percentile(wall, 99), 1),
        "votes_cpu_p50_ms": round(percentile(cpu, 50), 1),
        "votes_cpu_p99_ms": round(percentile(cpu, 99), 1),
        "right_first_candidate": round(float(np.mean(first)), 3),
        "right_among_verified": round(float(np.mean(among)), 3),
        "wrong_verified_per_photo": round(float(np.mean(wrong)), 2),
        "synthetic_verified_per_photo": round(float(np.mean(synthetic)), 2),
        "synthetic_over_min_inliers": int(passed),
        "synthetic_exact_geometry": int(exact),
    }


@contextmanager
def others_load() -> Iterator[dict[str, float]]:
    """How many cores the rest of the machine kept busy while the block ran (/proc/stat's
    busy time less this process's own), and the load average after it."""
    out: dict[str, float] = {}

    def busy() -> float:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")

    def own() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t, b, o = time.perf_counter(), busy(), own()
    yield out
    wall = time.perf_counter() - t
    out["others_cores"] = round(max(0.0, (busy() - b) - (own() - o)) / wall, 2)
    out["own_cores"] = round((own() - o) / wall, 2)
    out["loadavg_1m"] = round(os.getloadavg()[0], 2)


def quiet(max_others: float, wait_s: float, probe_s: float = 10.0) -> None:
    """Wait (``wait_s`` at most) until the rest of the machine keeps at most
    ``max_others`` cores busy over ``probe_s``."""
    deadline = time.perf_counter() + wait_s
    while True:
        with others_load() as load:
            time.sleep(probe_s)
        if load["others_cores"] <= max_others or time.perf_counter() > deadline:
            return
        print(f"  waiting for a quieter machine: others keep {load['others_cores']} cores busy",
              flush=True)  # fmt: skip


def timed(
    engine: Engine,
    global_only: Engine,
    queries: list[PhotoQuery],
    max_others: float,
    retries: int,
    wait_s: float,
) -> dict[str, Any]:
    """``measure`` and :func:`candidate_stats`, each attempt after :func:`quiet`, repeated
    while other work took more than ``max_others`` cores; the quietest attempt, with
    every attempt's load."""
    attempts: list[dict[str, Any]] = []
    store = engine.store
    for attempt in range(retries + 1):
        quiet(max_others, wait_s)
        with others_load() as load:
            served = store.served if isinstance(store, StandInStore) else 0
            result: dict[str, Any] = dict(measure(engine, global_only, queries))
            if isinstance(store, StandInStore):  # the warm-up and each photo's search
                result["synthetic_verified_per_search"] = round(
                    (store.served - served) / (len(queries) + 1), 2
                )
            result["votes"] = candidate_stats(engine, queries)
        result["load"] = load
        attempts.append(result)
        print(f"  timing attempt {attempt + 1}: {json.dumps(result)}", flush=True)
        if load["others_cores"] <= max_others:
            break
    best = min(attempts, key=lambda a: a["load"]["others_cores"])
    best["attempts_load"] = [a["load"] for a in attempts]
    return best


def _total(real: Descriptors, synthetic: int, per_copy: float) -> int:
    """Descriptors in the index with ``synthetic`` products."""
    return int(len(real.rootsift) + max(0, synthetic) * per_copy)


# ---- the run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="folder of the real catalog (built or reused)")
    parser.add_argument("--sizes", default="3046,100000,300000,1000000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--bank", type=int, default=5892, help="real augmented copies made")
    parser.add_argument("--noise", type=float, default=0.15, help="median distance moved")
    parser.add_argument("--quantizer", choices=("flat", "hnsw"), default="flat")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "photo-scale-synthetic.json")
    parser.add_argument("--max-others", type=float, default=0.25)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--wait", type=float, default=300, help="s to wait for quiet, a try")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    home = args.home or Path("/tmp/lookalike-photo-scale-synthetic")
    settings = Settings(home=home, _env_file=None)
    base, queries = catalog_and_queries(args.queries)
    print(f"machine: {machine()}", flush=True)
    engine = Engine(settings)
    start = time.perf_counter()
    summary = engine.ingest(base)
    print(f"real catalog: {engine.product_count()} products ({summary.embedded} embedded, "
          f"{time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    real_index = engine.local_index
    assert real_index is not None
    real, counts = real_descriptors(engine.store)
    bank = make_bank([r for r in base if r.category != CATEGORY], args.bank, args.seed)
    noise = Noise(args.noise)
    per_copy = float(np.mean(bank.descriptors.count))
    print(
        f"real: {len(real.rootsift):,} descriptors of {len(counts):,} products; bank: "
        f"{len(bank.features):,} copies, {per_copy:.1f} descriptors a copy",
        flush=True,
    )
    engine.store = store = StandInStore(settings.resolved_database_url, bank)
    hnsw = args.quantizer == "hnsw"
    global_only = Engine(settings.model_copy(update={"local_features": False}))
    # Every size is built first, then timed (each index kept: a size sharing its lists
    # with the next one is a copy), so that the timing can wait for a quiet machine.
    built: Built | None = None
    nlists = [
        min(65536, _nlist(_total(real, size - len(counts), per_copy)) * (4 if hnsw else 1))
        for size in sizes
    ]
    ready: list[tuple[dict[str, Any], DescriptorIndex, np.ndarray]] = []
    for n, size in enumerate(sizes):
        synthetic = max(0, size - len(counts))
        step: dict[str, Any] = {"products": len(counts) + synthetic, "synthetic": synthetic}
        t = time.perf_counter()
        if synthetic == 0:
            ready.append(({**step, "quantizer": "as ingested"}, real_index, np.empty(0, np.int64)))
            continue
        total, nlist = _total(real, synthetic, per_copy), nlists[n]
        if built is None or built.nlist != nlist or len(built.made) > synthetic:
            print(f"size {size:,}: training {nlist:,} lists ({args.quantizer} quantizer)",
                  flush=True)  # fmt: skip
            with all_build_threads():
                built = build(nlist, args.quantizer, real, bank, noise, total, args.seed)
            step["train_s"] = round(built.train_s, 1)
        with all_build_threads():
            grow(built, bank, noise, synthetic, args.seed)
            step["placement"] = placement(built, bank, noise)
        copies = built.made.all()
        all_counts = dict(counts)
        all_counts.update(zip(range(SYNTHETIC_BASE, SYNTHETIC_BASE + len(copies)),
                              bank.descriptors.count[copies].tolist(), strict=True))  # fmt: skip
        manifest = DescriptorManifest(FEATURE_VERSION, "ivfpq", 0, 0, "", trained_on=total,
                                      nlist=nlist)  # fmt: skip
        shared = n + 1 < len(sizes) and nlists[n + 1] == nlist
        ivf = faiss.clone_index(built.ivf) if shared else built.ivf
        faiss.extract_index_ivf(ivf).nprobe = NPROBE
        index = DescriptorIndex(ivf, manifest, all_counts)
        step.update(quantizer=args.quantizer, noise=args.noise)
        step["build_s"] = round(time.perf_counter() - t, 1)
        ready.append((step, index, copies))
        print(f"size {size:,} built: {json.dumps(step)}", flush=True)
    steps: list[dict[str, Any]] = []
    for step, index, copies in ready:
        engine._local = index  # the descriptor index swapped in (the engine has no setter)
        store.copies = copies
        step.update(
            descriptors=int(index.index.ntotal),
            nlist=index.manifest.nlist,
            descriptors_per_product=round(index.index.ntotal / step["products"], 1),
            index_ram_gb=round(index.memory_bytes() / 1e9, 2),
            ram_kb_per_product=round(index.memory_bytes() / step["products"] / 1024, 2),
            process_rss_gb=round(rss_mib(os.getpid()) / 1024, 2),
        )
        print(f"{step['products']:,} products: timing {len(queries)} photos", flush=True)
        step.update(timed(engine, global_only, queries, args.max_others, args.retries, args.wait))
        step["machine"] = machine()
        steps.append(step)
        print(json.dumps(step), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(steps, indent=2))
        if args.plot:
            plot(steps, args.plot)
    engine._local = real_index
    engine.close()
    global_only.close()


if __name__ == "__main__":
    main()
