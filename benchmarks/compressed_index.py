"""The compressed FAISS kind (``ivfpq``) against today's IVF-flat and exact flat, in one
run: RAM and disk bytes a product, build time, recall@10 against exact, p50/p99 latency.

    python -m benchmarks.compressed_index [--sizes 100000,1000000] [--queries 200]
        [--code-dims 12] [--depths 1,5,10,20,40] [--embeddings dev.npy]

Vectors: the dev catalog's real embeddings plus synthetic ones made from them (the
``synthetic`` of ``benchmarks/search.py``, generated 50,000 at a time and kept as float16
so that 1M of them take 3 GB, not 6). Queries are fresh synthetic points, not in the index;
the exact top 10 comes from the flat index in the same run.

- RAM a product: what a fresh process's anonymous resident memory (``RssAnon``, which
  leaves out memory-mapped file pages: the re-rank rows) grows by when it loads the saved
  index and answers 20 queries, divided by the products. Flat and IVF past 200,000
  products: their FAISS file's size plus the 8-byte id array (a child loading 6 GB would
  double the RAM this run holds). The growth of this process at each build is printed too
  (IVF lists grown by appends hold spare capacity until a save and load).
- Disk a product: the saved files.
- Latency: one query at a time on one thread (as the engine searches), after 10 warm-up
  queries; the re-rank file is in the page cache (just written).
- ``ivfpq`` settings: code size (``--code-dims``: dimensions a byte codes; 12 = 128 bytes
  at 1,536-d) and re-rank depth (``--depths``, besides the tuned one: candidates
  re-ranked = k x depth; 1 = the codes' own top k, re-ordered). nprobe stays as tuned.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.common import DATASET, dev_rows, machine, percentile
from benchmarks.search import synthetic
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.index import compressed, vector_index
from lookalike.index.vector_index import FaissKind, VectorIndex
from lookalike.ingest.readers import CatalogRecord

K = 10
_CHUNK = 50_000


def real_embeddings(cache: Path | None) -> np.ndarray:
    """The dev catalog's embeddings (embedded in a temporary home, or read from ``cache``
    when it exists, and written there when it does not)."""
    if cache is not None and cache.exists():
        cached: np.ndarray = np.load(cache)
        return cached
    rows = dev_rows()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", local_features=False, _env_file=None)
        engine = Engine(settings)
        try:
            engine.ingest(
                [
                    CatalogRecord(r["id"], DATASET / r["file"], r["file"], category=r["category"])
                    for r in rows
                ]
            )
            real = engine.index_manager.vectors()[1]
        finally:
            engine.close()
    if cache is not None:
        np.save(cache, real)
    return real


def catalog(real: np.ndarray, n: int) -> np.ndarray:
    """``n`` float16 vectors: synthetic ones made 50,000 at a time."""
    out = np.empty((n, real.shape[1]), dtype=np.float16)
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        out[start : start + m] = synthetic(real, m, seed=n + start)
    return out


_START = time.perf_counter()


def say(text: str) -> None:
    """A progress line, with the seconds since the start."""
    print(f"[{time.perf_counter() - _START:6.0f} s] {text}", flush=True)


def rss_anon() -> int:
    """This process's anonymous resident bytes (heap and anonymous maps, not file pages)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def loaded_ram(folder: Path, dim: int) -> tuple[int, float]:
    """Anonymous RAM a fresh process gains by loading the index saved in ``folder`` and
    answering 20 queries, and the load's seconds (measured in a child process: in this
    one, the allocator reuses what earlier builds freed)."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.compressed_index", "--measure-load", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    ram, seconds = out.stdout.split()[-2:]
    del dim
    return int(ram), float(seconds)


def measure_load(folder: Path) -> None:
    """The child's side of :func:`loaded_ram`: prints the RAM gained and the seconds."""
    gc.collect()
    before = rss_anon()
    start = time.perf_counter()
    index = VectorIndex.load(folder)
    seconds = time.perf_counter() - start
    q = np.random.default_rng(0).normal(size=(20, index.manifest.dim)).astype(np.float32)
    for one in q:
        index.search(one[None], K)
    gc.collect()
    print(rss_anon() - before, f"{seconds:.2f}")


def latency(index: VectorIndex, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Milliseconds for each single query, and the found ids."""
    for q in queries[:10]:
        index.search(q[None], K)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = index.search(q[None], K)
        times.append((time.perf_counter() - start) * 1000)
        found.append(ids[0])
    return times, np.array(found)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


Row = dict[str, str]


def row(
    n: int, label: str, ram: float, disk: float, build: float, rec: float, times: list[float]
) -> Row:
    out = {
        "n": f"{n:,}",
        "index": label,
        "RAM B/product": f"{ram:,.0f}",
        "disk B/product": f"{disk:,.0f}",
        "build s": f"{build:.0f}",
        "recall@10": f"{rec:.3f}",
        "p50 ms": f"{percentile(times, 50):.2f}",
        "p99 ms": f"{percentile(times, 99):.2f}",
    }
    print("  " + "  ".join(f"{k} {v}" for k, v in out.items()), flush=True)
    return out


def build(kind: FaissKind, ids: np.ndarray, x: np.ndarray) -> tuple[VectorIndex, float]:
    """The index and its build time; prints the anonymous RAM the build added here."""
    gc.collect()
    before = rss_anon()
    start = time.perf_counter()
    index = VectorIndex.build(ids, x, "bench", kind=kind)
    seconds = time.perf_counter() - start
    say(
        f"built in {seconds:.0f} s; this process grew {(rss_anon() - before) / len(ids):,.0f}"
        " B/product (anonymous RSS)"
    )
    return index, seconds


def ram_and_disk(index: VectorIndex, n: int, tmp: Path) -> tuple[float, float]:
    """RAM and disk bytes a product of ``index``: a fresh process loading it (for flat and
    IVF past 200,000 products, which a child would have to read whole into RAM next to
    this process's vectors, the FAISS file's size plus the 8-byte id array instead)."""
    folder = tmp / index.manifest.kind
    if index.manifest.kind != "ivfpq" and n > 200_000:
        folder.mkdir()
        faiss.write_index(index.index, str(folder / vector_index.INDEX_FILE))
        disk = (folder / vector_index.INDEX_FILE).stat().st_size
        shutil.rmtree(folder)
        return disk / n + 8, disk / n
    index.save(folder)  # ivfpq: writes the rows file and maps it; the tail leaves RAM
    disk = sum(f.stat().st_size for f in folder.iterdir())
    ram, seconds = loaded_ram(folder, index.manifest.dim)
    say(f"saved {disk / n:,.0f} B/product; a fresh process loads it in {seconds:.1f} s")
    shutil.rmtree(folder)
    return ram / n, disk / n


def run(
    real: np.ndarray, n: int, queries: int, code_dims: list[int], depths: list[int]
) -> list[Row]:
    say(f"{n:,} vectors: generating")
    x = catalog(real, n)
    ids = np.arange(n, dtype=np.int64)
    q = synthetic(real, queries, seed=99)  # fresh points, not in the index
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        say(f"{n:,}: exact flat")
        flat, seconds = build("flat", ids, x)
        times, exact = latency(flat, q)
        ram, disk = ram_and_disk(flat, n, tmp)
        rows.append(row(n, "exact flat", ram, disk, seconds, 1.0, times))
        del flat

        say(f"{n:,}: IVF-flat (today's default past 20,000 products)")
        ivf, seconds = build("ivf", ids, x)
        times, found = latency(ivf, q)
        ram, disk = ram_and_disk(ivf, n, tmp)
        m = ivf.manifest
        label = f"IVF{m.nlist}-flat, nprobe {m.nprobe}"
        rows.append(row(n, label, ram, disk, seconds, recall(found, exact), times))
        del ivf

        for dims in code_dims:
            compressed.DIMS_PER_CODE_BYTE = dims
            say(f"{n:,}: ivfpq, {compressed.pq_bytes(x.shape[1])}-byte codes")
            index, seconds = build("ivfpq", ids, x)
            ram, disk = ram_and_disk(index, n, tmp)
            m = index.manifest
            assert isinstance(m, compressed.CompressedManifest)
            tuned = m.rerank_depth
            say(f"tuned: nprobe {m.nprobe}, re-rank depth {tuned}")
            for depth in sorted({*depths, tuned}):
                m.rerank_depth = depth
                times, found = latency(index, q)
                label = f"IVF{m.nlist}-PQ{m.pq_bytes}, nprobe {m.nprobe}, re-rank {depth * K}"
                label += " (tuned)" if depth == tuned else ""
                rows.append(row(n, label, ram, disk, seconds, recall(found, exact), times))
            del index
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--code-dims", default=str(compressed.DIMS_PER_CODE_BYTE))
    parser.add_argument("--depths", default="1,5,10,20,40")
    parser.add_argument("--embeddings", type=Path, help="the dev embeddings' .npy cache")
    parser.add_argument("--measure-load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_load:
        measure_load(args.measure_load)
        return
    print(f"machine: {machine()}", flush=True)
    print("the dev catalog's embeddings", flush=True)
    real = real_embeddings(args.embeddings)
    rows: list[Row] = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        rows += run(
            real,
            n,
            args.queries,
            [int(d) for d in args.code_dims.split(",")],
            [int(d) for d in args.depths.split(",")],
        )
    print("\n| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows:
        print("| " + " | ".join(r.values()) + " |")


if __name__ == "__main__":
    main()
