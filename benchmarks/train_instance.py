"""Photo -> catalog retrieval on SMVS with the global descriptor alone: the pretrained
model against versions fine-tuned on the 100 catalog images (never on the photos).

    python -m benchmarks.train_instance catalog /tmp/smvs-catalog.csv
    LOOKALIKE_HOME=/tmp/smvs-train lookalike ingest /tmp/smvs-catalog.csv
    LOOKALIKE_HOME=/tmp/smvs-train lookalike train --objective instance
    python -m benchmarks.train_instance measure --home /tmp/smvs-train trim-gap-c0.1 ft-...

``measure`` embeds the 400 phone photos the way ``lookalike search`` does
(``Engine.load_query`` and the model's embedder) and ranks the catalog by exact dot
product, so the numbers are the global descriptor's own, whatever re-ranking search may
add on top. Each model's catalog vectors are computed afresh: nothing in the catalog
changes. Protocol: ``smvs-dvd-covers/SOURCE.md`` (R@1 and R@5, overall and per phone).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from benchmarks.common import machine
from benchmarks.smvs import SMVS, smvs_rows
from lookalike.config import Settings
from lookalike.embeddings.embedder import create_embedder
from lookalike.engine import Engine
from lookalike.evaluation.report import config_vectors, resolve_config
from lookalike.images.loader import read_image_bytes


def write_catalog(path: Path) -> None:
    """A catalog CSV of the 100 catalog images only (one category: every product is a
    DVD, so category training has nothing to learn and instance training must work)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image", "category"])
        for r in smvs_rows():
            if r["image_type"] == "catalog":
                w.writerow([r["product_id"], SMVS / r["file"], "dvd"])


def measure(
    engine: Engine, model: str, photos: list[dict[str, str]]
) -> dict[str, dict[str, float]]:
    """R@1 and R@5 of ``model`` (a config name or a fine-tuned version), overall and per
    phone."""
    config = resolve_config(engine, model)
    products = engine.store.all_products()
    catalog = config_vectors(engine, products, config)
    embedder = create_embedder(engine.settings, config)
    images = [
        engine.load_query(read_image_bytes(SMVS / r["file"], engine.limits.max_bytes), r["file"])
        for r in photos
    ]
    queries = np.concatenate(
        [embedder.embed_images(images[i : i + 32]) for i in range(0, len(images), 32)]
    )
    top5 = np.argsort(-(queries @ catalog.T), axis=1)[:, :5]
    skus = np.array([p.sku for p in products])
    wanted = np.array([r["product_id"] for r in photos])
    hit = skus[top5] == wanted[:, None]
    devices = np.array([r["device"] for r in photos])
    groups = {"all": np.ones(len(photos), bool)} | {
        d: devices == d for d in sorted(set(devices.tolist()))
    }
    return {
        name: {"r@1": float(hit[m, 0].mean()), "r@5": float(hit[m].any(axis=1).mean())}
        for name, m in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cat = sub.add_parser("catalog", help="write the catalog CSV (catalog images only)")
    cat.add_argument("path", type=Path)
    meas = sub.add_parser("measure", help="photo -> catalog R@1/R@5 per model")
    meas.add_argument("--home", type=Path, required=True, help="LOOKALIKE_HOME of the catalog")
    meas.add_argument("--json", type=Path, help="also write the numbers here")
    meas.add_argument("models", nargs="+", help="trim-gap-c0.1 (pretrained) and/or ft-...")
    args = parser.parse_args()
    if args.command == "catalog":
        write_catalog(args.path)
        return
    photos = [r for r in smvs_rows() if r["image_type"] == "photo"]
    engine = Engine(Settings(home=args.home))
    try:
        results = {m: measure(engine, m, photos) for m in args.models}
        products = len(engine.store.all_products())
    finally:
        engine.close()
    print(f"machine: {machine()}; {len(photos)} photos -> {products} catalog products")
    groups = list(next(iter(results.values())))
    print("| model | " + " | ".join(f"R@1 / R@5 {g}" for g in groups) + " |")
    print("|---|" + "---|" * len(groups))
    for model, res in results.items():
        cells = [f"{res[g]['r@1']:.3f} / {res[g]['r@5']:.3f}" for g in groups]
        print(f"| {model} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
