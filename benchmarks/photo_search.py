"""Phone photo -> results, one query at a time, at >= 10k products: the two-stage search
(local features + verification) against today's global-only path, in one run.

    python -m benchmarks.photo_search [--home DIR] [--distractors 7000] [--queries 200]

The catalog: the 100 SMVS covers, the 2,946 fashion dev products and ``--distractors``
augmented copies of dev photos (mirrored, cropped, turned, recoloured, re-encoded), so
about 10,000 products. The queries: SMVS phone photos (1,280 px JPEGs), evenly over the
four phones. Each is searched through ``Engine.search_files`` (decode, CNN, local
features, candidates, verification, product rows): once with local features off (the
global vector alone, the path before photo search) and once with them on, alternating
query by query so both see the same machine state. Reports p50/p99 latency, R@1, and
the local-feature index's memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from benchmarks.common import DATASET, dev_rows, machine, percentile
from benchmarks.smvs import smvs_catalog, smvs_queries, smvs_rows
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.evaluation.queries import PhotoQuery
from lookalike.ingest.readers import CatalogRecord, read_catalog


def augmented_copies(folder: Path, n: int, seed: int = 0) -> list[CatalogRecord]:
    """``n`` altered copies of dev photos, written as JPEGs under ``folder``. Copy ``i`` is
    drawn from a generator of its own, so a folder that already holds some copies (a
    catalog grown in steps) gets the same source photo, and category, for every copy."""
    rows = dev_rows()
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        row = rows[int(rng.integers(len(rows)))]
        path = folder / f"aug-{i}.jpg"
        if not path.exists():
            img, quality = augment(Image.open(DATASET / row["file"]).convert("RGB"), rng)
            img.save(path, "JPEG", quality=quality)
        records.append(CatalogRecord(f"aug-{i}", path, str(path), None, row["category"]))
    return records


def augment(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """An altered copy of a catalog photo: mirrored (half the time), cropped to 75-95%,
    turned by up to 12 degrees, recoloured; and the JPEG quality to save it at."""
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    w, h = img.size
    f = rng.uniform(0.75, 0.95)
    x, y = int(rng.uniform(0, w * (1 - f))), int(rng.uniform(0, h * (1 - f)))
    img = img.crop((x, y, x + int(w * f), y + int(h * f))).rotate(
        float(rng.uniform(-12, 12)), expand=True, fillcolor=(255, 255, 255)
    )
    img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.6, 1.4)))
    return img, int(rng.integers(70, 95))


def measure(
    engine: Engine, global_only: Engine, queries: list[PhotoQuery]
) -> dict[str, dict[str, float]]:
    """p50/p99 (wall time, and this process's CPU time: every thread's, so it shows what
    other work on the machine took), R@1, and the share of photos whose first result is
    the right product marked exact, of both paths over ``queries`` (alternating, after a
    warm-up)."""
    paths = {"global": global_only, "two_stage": engine}
    for e in paths.values():
        e.search_files([queries[0].image])
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    hits: dict[str, list[bool]] = {name: [] for name in paths}
    exact: dict[str, list[bool]] = {name: [] for name in paths}
    for q in queries:
        for name, e in paths.items():
            t, c = time.perf_counter(), time.process_time()
            (result,) = e.search_files([q.image], k=10)
            times[name].append((time.perf_counter() - t) * 1000)
            cpu[name].append((time.process_time() - c) * 1000)
            right = bool(result.hits) and result.hits[0].product.sku == q.sku
            hits[name].append(right)
            exact[name].append(right and result.hits[0].match == "exact")
    return {
        name: {
            "p50_ms": round(percentile(times[name], 50), 1),
            "p99_ms": round(percentile(times[name], 99), 1),
            "cpu_p50_ms": round(percentile(cpu[name], 50), 1),
            "cpu_p99_ms": round(percentile(cpu[name], 99), 1),
            "r1": round(float(np.mean(hits[name])), 3),
            "exact_r1": round(float(np.mean(exact[name])), 3),
        }
        for name in paths
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="catalog folder to build or reuse")
    parser.add_argument("--distractors", type=int, default=7000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        settings = Settings(home=home, _env_file=None)
        rows = smvs_rows()
        engine = Engine(settings)
        records = smvs_catalog(rows) + read_catalog(DATASET / "labels.csv").records
        records += augmented_copies(home / "augmented", args.distractors)
        start = time.perf_counter()
        summary = engine.ingest(records)
        print(f"catalog: {len(records)} products ({time.perf_counter() - start:.0f} s, "
              f"{summary.embedded} embedded)", flush=True)  # fmt: skip
        queries = smvs_queries(rows)[:: max(1, 400 // args.queries)][: args.queries]
        global_only = Engine(settings.model_copy(update={"local_features": False}))
        results = measure(engine, global_only, queries)
        index = engine.local_index
        assert index is not None
        products = engine.product_count()
        print(f"machine: {machine()}")
        print(f"queries: {len(queries)} SMVS phone photos, one at a time, k=10")
        for name, label in (("global", "global only (before)"), ("two_stage", "two-stage")):
            r = results[name]
            ms = f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
            print(f"{label:28s} {ms}  R@1 {r['r1']:.3f}")
        m = index.manifest
        print(
            f"descriptor index: {m.kind}, {m.descriptors} descriptors of {products} products, "
            f"{index.memory_bytes() / products / 1024:.1f} KB/product in RAM"
        )
        engine.close()
        global_only.close()


if __name__ == "__main__":
    main()
