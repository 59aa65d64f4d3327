"""Filtered search on Milvus Lite: the filter pushed down as an expression over the
collection's category and price (today) against the id list the database lets through
(``id in [...]``, before), in one run, on the same collection and database.

    python -m benchmarks.milvus_filters [--size 100000] [--dim 128] [--queries 20]

Catalog: synthetic unit vectors around 1,000 centres (not the dev embeddings: the
question is the filter's cost, which does not depend on what the vectors mean), in a
SQLite database and a Milvus Lite file. Categories: "broad" (half the products), "narrow"
(1 %), and a price range holding about 30 %. Per filter and path: p50/p99 of one search
(k = 10, one query), the old path's time counting its database read of the ids, and
whether both return the same products.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, percentile
from lookalike.index import IndexManager
from lookalike.index.milvus_backend import MilvusBackend, MilvusProductIndex
from lookalike.search.searcher import Filters
from lookalike.store import CatalogStore, ProductData

K = 10
_BATCH = 10_000


def catalog(store: CatalogStore, n: int, dim: int) -> np.ndarray:
    """``n`` products with vectors, categories and prices; returns 200 query vectors."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    for start in range(0, n, _BATCH):
        x = centres[rng.integers(0, 1000, min(_BATCH, n - start))]
        x = x + 0.5 * rng.normal(size=x.shape).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        items = [
            (
                ProductData(
                    f"p{i}",
                    f"/i/{i}.jpg",
                    f"{i:064x}",
                    category="narrow" if i % 100 == 0 else ("broad" if i % 2 else "other"),
                    price=float(i % 1000),
                ),
                v,
            )
            for i, v in zip(range(start, start + len(x)), x, strict=True)
        ]
        store.upsert(items, "bench")
    q = centres[rng.integers(0, 1000, 200)] + 0.5 * rng.normal(size=(200, dim)).astype(np.float32)
    queries: np.ndarray = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    return queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = CatalogStore(f"sqlite:///{Path(tmp) / 'c.db'}")
        started = time.perf_counter()
        queries = catalog(store, args.size, args.dim)[: args.queries]
        print(f"database: {args.size:,} products in {time.perf_counter() - started:.0f} s")
        manager = IndexManager(
            store, Path(tmp) / "index", "bench", args.dim, MilvusBackend(str(Path(tmp) / "m.db"))
        )
        started = time.perf_counter()
        index = manager.rebuild()
        assert isinstance(index, MilvusProductIndex)
        print(f"Milvus Lite collection built in {time.perf_counter() - started:.0f} s")
        print(f"{machine()}; k={K}, {len(queries)} queries, one at a time\n")
        print("| filter | passing | id list p50 / p99 ms | expression p50 / p99 ms | same |")
        print("|---|---|---|---|---|")
        none = np.empty(0, dtype=np.int64)
        for name, filters in (
            ("category, 50 %", Filters("broad")),
            ("category, 1 %", Filters("narrow")),
            ("price range, 30 %", Filters(min_price=100, max_price=399)),
        ):
            old, new, same = [], [], True
            passing = 0
            for q in queries:
                t = time.perf_counter()
                allowed = store.filter_ids(filters.category, filters.min_price, filters.max_price)
                _, before = index.search(q[None], K, allowed)
                old.append(time.perf_counter() - t)
                t = time.perf_counter()
                _, after = index.search_filtered(q[None], K, filters, none)
                new.append(time.perf_counter() - t)
                passing = len(allowed)
                same &= set(before[0].tolist()) == set(after[0].tolist())
            print(
                f"| {name} | {passing:,} | {1e3 * percentile(old, 50):.0f} / "
                f"{1e3 * percentile(old, 99):.0f} | {1e3 * percentile(new, 50):.0f} / "
                f"{1e3 * percentile(new, 99):.0f} | {same} |"
            )
        store.close()


if __name__ == "__main__":
    main()
