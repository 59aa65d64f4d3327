"""Every index backend as the product runs it — FAISS flat, FAISS IVF (today's default past
20,000 products), FAISS ``ivfpq``, Annoy, Milvus Lite — in one run, at each size: build
time, RAM and disk a product, p50/p99 of one query at a time (k = 10) unfiltered and with a
category holding 1 % of the products, and recall@10 against exact search (beside the
recall@10 the build's own tuning measured: the manifest's ``recall_at_10``).

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.backends [--sizes 100000,1000000]
        [--backends flat,ivf,ivfpq,annoy,milvus] [--queries 200] [--embeddings dev.npy]

Vectors: the dev catalog's real embeddings plus synthetic ones made from them, kept as
float16 (``catalog`` of ``benchmarks/compressed_index.py``); queries are fresh synthetic
points, not in the index. Every 100th product is in the category "narrow", the
others in "other" (chosen by position, so unrelated to what the vectors show). Exact
answers: brute force over every vector, and over the narrow products for the filtered
case.

Each backend is built through lookalike's own index layer (``create_backend`` with the
default settings; ``flat``, ``ivf`` and ``ivfpq`` are the FAISS kinds), in a child
process that builds and saves it, then measured in a second, fresh child that loads it,
so that one backend's memory is gone before the next starts (1M float32 vectors are
6 GB):

- Build: the backend's ``build`` + ``save`` (FAISS: training, adding, ``nprobe`` tuning;
  Annoy: the forest and ``search_k`` tuning; Milvus Lite: inserts, the flush, and the
  HNSW and INVERTED indexes its background thread builds on the sealed segments; the
  insert rate is printed).
- RAM a product: what the loading child's anonymous resident memory (``RssAnon``) grows
  by when it loads the saved index and answers 20 queries, divided by the products.
  Memory-mapped file pages are not anonymous and not counted: Annoy's forest and
  ``ivfpq``'s re-rank rows live in the page cache (see disk). Milvus Lite runs inside the
  loading process, so its segments and graphs are counted (its code and a server on an
  empty database are started before the count).
- Disk a product: the files the backend saved.
- Filtered search as the searcher applies it: FAISS and Annoy get the ids the category
  lets through (given here as the database returns them, sorted; the database read is
  not timed), Milvus gets the filter itself (``search_filtered``: a ``category == ...``
  expression inside Milvus).
- Latency: one query at a time, after 10 warm-up queries (FAISS on one thread, as the
  engine searches).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from benchmarks.common import machine, percentile
from benchmarks.compressed_index import catalog, real_embeddings, recall, rss_anon, say
from benchmarks.search import synthetic
from lookalike.config import Settings
from lookalike.index import create_backend
from lookalike.index.base import FilteringIndex, IndexBackend, ProductIndex, top_k
from lookalike.index.milvus_backend import MilvusBackend
from lookalike.search.searcher import Filters
from lookalike.store.catalog import ProductFields

K = 10
MODEL = "bench"
BACKENDS = ["flat", "ivf", "ivfpq", "annoy", "milvus"]
NARROW = "narrow"  # the category of every 100th product
_SCAN = 16_384  # rows scored a step by the exact search


def settings(backend: str, home: Path) -> Settings:
    """The product's default settings for ``backend`` (a FAISS kind, annoy or milvus)."""
    if backend in ("annoy", "milvus"):
        return Settings(home=home, index_backend=backend, _env_file=None)
    kind = "ivfpq" if backend == "ivfpq" else "ivf"
    return Settings(home=home, index_backend="faiss", faiss_kind=kind, _env_file=None)


def narrow_ids(n: int) -> np.ndarray:
    return np.arange(0, n, 100, dtype=np.int64)


def exact(x: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The true top ``K`` ids among ``rows`` of ``x`` for each query."""
    chunks = ((x[rows[s : s + _SCAN]], rows[s : s + _SCAN]) for s in range(0, len(rows), _SCAN))
    return top_k(queries, K, chunks)[1]


# ---- the children -----------------------------------------------------------------------


def build_child(backend: str, data: Path, home: Path) -> dict[str, Any]:
    """Build ``backend`` over the catalog in ``data`` and save it under ``home``."""
    x = np.load(data / "x.npy", mmap_mode="r")
    n = len(x)
    ids = np.arange(n, dtype=np.int64)
    config = settings(backend, home)
    index_backend: IndexBackend = create_backend(config)
    fields = None
    if index_backend.keeps_fields:
        categories: list[str | None] = ["other"] * n
        for i in narrow_ids(n).tolist():
            categories[i] = NARROW
        fields = ProductFields(ids, categories, [None] * n)
    kind = backend if backend in ("flat", "ivf", "ivfpq") else None
    start = time.perf_counter()
    index = index_backend.build(ids, x, MODEL, x.shape[1], kind, fields)
    index.save(config.index_dir)
    written = time.perf_counter() - start
    if isinstance(index_backend, MilvusBackend):
        wait_for_milvus_lite(index_backend.uri, index_backend.collection(MODEL))
        print(f"  inserted and flushed in {written:.0f} s ({n / written:,.0f} rows/s)", flush=True)
    seconds = time.perf_counter() - start
    manifest = index.manifest
    return {
        "build_s": seconds,
        "nlist": manifest.nlist,
        "nprobe": manifest.nprobe,
        "search_k": getattr(manifest, "search_k", 0),  # Annoy
        "rerank_depth": getattr(manifest, "rerank_depth", 0),  # ivfpq
        "tuned_recall": manifest.recall_at_10,  # what the build's tuning measured
    }


def wait_for_milvus_lite(uri: str, collection: str) -> None:
    """Wait until Milvus Lite has indexed the sealed segments. It builds their HNSW and
    INVERTED indexes on a background thread after a flush, and its DescribeIndex reports
    them finished regardless, so this waits on that thread itself (Milvus Lite's
    internals: a benchmark's need, not the product's)."""
    from milvus_lite import server_manager_instance

    _, db, _ = server_manager_instance._servers[os.path.abspath(uri)]
    db.get_collection(collection)._wait_for_bg()


def measure_child(backend: str, data: Path, home: Path) -> dict[str, Any]:
    """Load the saved index in this fresh process: RAM, latency and recall."""
    queries = np.load(data / "queries.npy")
    truth = np.load(data / "truth.npz")
    n = int(truth["n"])
    config = settings(backend, home)
    index_backend = create_backend(config)
    dim = queries.shape[1]
    if isinstance(index_backend, MilvusBackend):
        # Milvus Lite's code and a server of its own, on an empty database, before the
        # count: that memory is not a product's. (The catalog's server loads the
        # collection when it starts, so it is started inside the count.)
        MilvusClient(uri=str(home / "empty.db")).list_collections()
    gc.collect()
    before = rss_anon()
    start = time.perf_counter()
    index = index_backend.load(config.index_dir, MODEL, dim)
    load_s = time.perf_counter() - start
    for q in np.random.default_rng(0).normal(size=(20, dim)).astype(np.float32):
        index.search(q[None], K)
    gc.collect()
    ram = rss_anon() - before
    print(f"  loaded in {load_s:.1f} s, {ram / n:,.0f} B/product anonymous RSS", flush=True)
    allowed = narrow_ids(n)  # sorted, as the database returns them
    out: dict[str, Any] = {"ram": ram / n, "load_s": load_s}
    for case, filtered in (("all", False), ("narrow", True)):
        times, found = latency(index, queries, allowed if filtered else None)
        out[case] = {
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "recall": recall(found, truth[case]),
        }
        print(
            f"  {case}: p50 {out[case]['p50']:.2f} ms, recall {out[case]['recall']:.3f}", flush=True
        )
    return out


def latency(
    index: ProductIndex, queries: np.ndarray, allowed: np.ndarray | None
) -> tuple[list[float], np.ndarray]:
    """Milliseconds of each single query and the found ids; with ``allowed``, filtered
    as the searcher filters for this backend."""
    none = np.empty(0, dtype=np.int64)

    def search(q: np.ndarray) -> np.ndarray:
        if allowed is None:
            _, ids = index.search(q[None], K)
        elif isinstance(index, FilteringIndex):
            _, ids = index.search_filtered(q[None], K, Filters(NARROW), none)
        else:
            _, ids = index.search(q[None], K, allowed)
        return ids

    for q in queries[:10]:
        search(q)
    times: list[float] = []
    found = []
    for q in queries:
        start = time.perf_counter()
        found.append(search(q)[0])
        times.append((time.perf_counter() - start) * 1000)
    return times, np.array(found)


# ---- the parent -------------------------------------------------------------------------


def child(role: str, backend: str, data: Path, home: Path) -> dict[str, Any]:
    """Run ``role`` (build or measure) for ``backend`` in a fresh process."""
    out = data / f"{backend}-{role}.json"
    command = ["-m", "benchmarks.backends", "--child", role, backend, str(data), str(home)]
    subprocess.run([sys.executable, *command, str(out)], check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def disk_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


Row = dict[str, str]


def run(real: np.ndarray, n: int, queries: int, backends: list[str], work: Path) -> list[Row]:
    """Every backend at ``n`` products; the table's rows."""
    data = work / f"n{n}"
    data.mkdir()
    say(f"{n:,} vectors: generating")
    x = catalog(real, n)
    np.save(data / "x.npy", x)
    q = synthetic(real, queries, seed=99)  # fresh points, not in the index
    np.save(data / "queries.npy", q)
    say(f"{n:,}: exact top {K}, all and narrow")
    every = np.arange(n, dtype=np.int64)
    np.savez(data / "truth.npz", n=n, all=exact(x, every, q), narrow=exact(x, narrow_ids(n), q))
    del x
    rows = []
    for backend in backends:
        home = data / backend
        say(f"{n:,}: {backend}: building")
        built = child("build", backend, data, home)
        say(f"{n:,}: {backend}: built in {built['build_s']:.0f} s; measuring")
        measured = child("measure", backend, data, home)
        label = backend
        if built["nprobe"]:
            label += f" (nlist {built['nlist']}, nprobe {built['nprobe']}"
            label += f", depth {built['rerank_depth']})" if backend == "ivfpq" else ")"
        if built["search_k"]:
            label += f" (search_k {built['search_k']})"
        tuned = built["tuned_recall"]
        rows.append(
            {
                "n": f"{n:,}",
                "backend": label,
                "build s": f"{built['build_s']:.0f}",
                "RAM B/product": f"{measured['ram']:,.0f}",
                "disk B/product": f"{disk_bytes(home) / n:,.0f}",
                "p50 / p99 ms": f"{measured['all']['p50']:.2f} / {measured['all']['p99']:.2f}",
                "recall@10": f"{measured['all']['recall']:.3f}",
                "tuned recall@10": "-" if tuned is None else f"{tuned:.3f}",
                "1 % filter p50 / p99 ms": (
                    f"{measured['narrow']['p50']:.2f} / {measured['narrow']['p99']:.2f}"
                ),
                "1 % filter recall@10": f"{measured['narrow']['recall']:.3f}",
            }
        )
        print("  " + "  ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
        shutil.rmtree(home)
    shutil.rmtree(data)
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r.values()) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embeddings", type=Path, help="the dev embeddings' .npy cache")
    parser.add_argument("--work", type=Path, help="folder for the catalog and the indexes")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, backend, data, home, out = args.child
        work = build_child if role == "build" else measure_child
        Path(out).write_text(json.dumps(work(backend, Path(data), Path(home))))
        return
    backends = [b for b in args.backends.split(",") if b]
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    print(f"machine: {machine()}", flush=True)
    print("the dev catalog's embeddings", flush=True)
    real = real_embeddings(args.embeddings)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=args.work) as name:
        for n in (int(s) for s in args.sizes.split(",") if s):
            rows += run(real, n, args.queries, backends, Path(name))
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
