"""Calibrate duplicate detection: the dev catalog plus synthetic edits of some of its
photos, ingested into a temporary home, then precision and recall of the groups at
several thresholds, with and without the picture comparison.

    python -m benchmarks.duplicates [--sources 150] [--thresholds 0.85,0.88,0.9,0.92,0.94]
                                    [--home DIR] [--scale 100000]

Truth: the dev set's byte-identical images (``same_bytes_as`` in labels.csv) and, for
each of ``--sources`` photos drawn at random (seed 0), five edited copies: resized to
50-80%, JPEG re-encoded at quality 35-60, cropped by 10% of each side's length (split at
random between the two ends), mirrored, and a small colour shift (saturation x0.8-1.2 and
a per-channel gamma of 0.9-1.1; white stays white). A photo and its copies are one true
group; every other pair of products is a different photo. The copies are written to a
temporary folder (never into the repository) and deleted afterwards.

Reported per threshold: groups found; pairwise precision and recall over the products the
groups hold (a group of n is n(n-1)/2 pairs); the share of each kind of copy grouped with
its original; the wrongly grouped pairs of dev photos; candidate pairs, pictures compared
and the time. ``--home`` keeps the ingested catalog for the next run (ingest is
idempotent). ``--scale N`` also times the candidate search (the k-NN of every stored
vector) on N synthetic vectors near the dev embeddings in an IVF index.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from benchmarks.common import DATASET, dev_rows, machine
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import CatalogRecord
from lookalike.search.duplicates import (
    DEFAULT_THRESHOLD,
    Duplicates,
    UnionFind,
    candidate_pairs,
)

EDITS = ("resize", "jpeg", "crop", "mirror", "colour")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def edits(data: bytes, seed: int) -> dict[str, bytes]:
    """The five edited copies of a photo (JPEG bytes by kind), reproducible by ``seed``."""
    rng = random.Random(seed)
    with Image.open(io.BytesIO(data)) as opened:
        img = opened.convert("RGB")
    w, h = img.size
    out = {}
    scale = rng.uniform(0.5, 0.8)
    size = (round(w * scale), round(h * scale))
    out["resize"] = _jpeg(img.resize(size, Image.Resampling.LANCZOS), 90)
    out["jpeg"] = _jpeg(img, rng.randint(35, 60))
    dx, dy = round(w * 0.1), round(h * 0.1)
    left, top = rng.randint(0, dx), rng.randint(0, dy)
    out["crop"] = _jpeg(img.crop((left, top, left + w - dx, top + h - dy)), 90)
    out["mirror"] = _jpeg(ImageOps.mirror(img), 90)
    shifted = ImageEnhance.Color(img).enhance(rng.uniform(0.8, 1.2))
    channels = []
    for channel in shifted.split():
        gamma = rng.uniform(0.9, 1.1)
        channels.append(channel.point(lambda v, g=gamma: round(255 * (v / 255) ** g)))
    out["colour"] = _jpeg(Image.merge("RGB", channels), 90)
    return out


def build_catalog(
    rows: list[dict[str, str]], sources: int, folder: Path
) -> tuple[list[CatalogRecord], dict[str, str]]:
    """The dev catalog plus edited copies of ``sources`` photos (written to ``folder``);
    and each SKU's true group (the lowest id of its byte-identical set, or its source's)."""
    truth = {r["id"]: min(r["id"], r["same_bytes_as"] or r["id"]) for r in rows}
    records = [
        CatalogRecord(r["id"], DATASET / r["file"], r["file"], r["title"], r["category"])
        for r in rows
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for r in random.Random(0).sample(rows, sources):
        for kind, data in edits((DATASET / r["file"]).read_bytes(), int(r["id"])).items():
            path = folder / f"{r['id']}-{kind}.jpg"
            path.write_bytes(data)
            sku = f"edit-{r['id']}-{kind}"
            records.append(CatalogRecord(sku, path, str(path), r["title"], r["category"]))
            truth[sku] = truth[r["id"]]
    return records, truth


def score(groups: list[list[str]], truth: dict[str, str]) -> dict[str, object]:
    """Pairwise precision / recall of ``groups`` (lists of SKUs) against ``truth``, the
    share of each edit kind grouped with its source, and the wrong pairs of dev photos."""
    true_sets: dict[str, list[str]] = defaultdict(list)
    for sku, group in truth.items():
        true_sets[group].append(sku)
    relevant = sum(len(s) * (len(s) - 1) // 2 for s in true_sets.values())
    found = correct = 0
    wrong: list[tuple[str, str]] = []
    where: dict[str, int] = {}
    for n, members in enumerate(groups):
        for sku in members:
            where[sku] = n
        for a, b in combinations(members, 2):
            found += 1
            if truth[a] == truth[b]:
                correct += 1
            elif not a.startswith("edit-") and not b.startswith("edit-"):
                wrong.append((a, b))
    kinds: dict[str, list[bool]] = defaultdict(list)
    for sku in truth:
        if sku.startswith("edit-"):
            _, source, kind = sku.split("-")
            kinds[kind].append(sku in where and where[sku] == where.get(source))
    return {
        "groups": len(groups),
        "pairs": found,
        "precision": correct / found if found else 1.0,
        "recall": correct / relevant if relevant else 1.0,
        "copies_found": {k: float(np.mean(v)) for k, v in kinds.items()},
        "wrong_dev_pairs": wrong,
    }


def cosine_only(engine: Engine, threshold: float) -> list[list[str]]:
    """Groups from the global vectors alone (no picture comparison): the baseline."""
    version = engine.model_config.version
    pairs = candidate_pairs(engine.index, engine.store.iter_vectors(version), threshold)
    sets = UnionFind()
    for ids in engine.store.shared_images():
        for other in ids[1:].tolist():
            sets.union(int(ids[0]), other)
    for _, a, b in pairs:
        sets.union(a, b)
    products = engine.store.by_ids([i for g in sets.groups() for i in g])
    return [[products[i].sku for i in g] for g in sets.groups()]


def time_candidates(engine: Engine, n: int) -> None:
    """The candidate search alone at ``n`` products: synthetic vectors near the dev
    embeddings (benchmarks/search.py) in the IVF index a catalog that size gets."""
    from benchmarks.search import synthetic
    from lookalike.index.vector_index import VectorIndex, all_build_threads

    version = engine.model_config.version
    real = np.concatenate([v for _, v in engine.store.iter_vectors(version)])
    vectors = synthetic(real, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    start = time.perf_counter()
    index = VectorIndex.build(ids, vectors, version)
    built = time.perf_counter() - start
    chunks = ((ids[i : i + 4096], vectors[i : i + 4096]) for i in range(0, n, 4096))
    start = time.perf_counter()
    with all_build_threads():
        pairs = candidate_pairs(index, chunks, DEFAULT_THRESHOLD)
    took = time.perf_counter() - start
    m = index.manifest
    print(
        f"\ncandidate search at {n:,} products ({m.kind}, nlist {m.nlist}, nprobe {m.nprobe}; "
        f"built in {built:.0f} s): {took:.1f} s, {len(pairs):,} pairs at {DEFAULT_THRESHOLD}"
    )


def run(args: argparse.Namespace, home: Path) -> None:
    rows = dev_rows()
    settings = Settings(
        home=home, model_cache=args.model_cache, local_features=False, _env_file=None
    )
    engine = Engine(settings)
    records, truth = build_catalog(rows, args.sources, home / "edited-copies")
    start = time.perf_counter()
    summary = engine.ingest(records)
    print(
        f"{machine()}\ncatalog: {len(rows)} dev photos + {args.sources} x {len(EDITS)} edited "
        f"copies = {len(records)} products (ingested {summary.embedded} in "
        f"{time.perf_counter() - start:.0f} s)\n"
    )
    header = (
        "| threshold | check | groups | precision | recall | "
        + " | ".join(EDITS)
        + " | wrong dev pairs | candidates | compared | time |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    results = []
    for threshold in sorted(args.thresholds):
        for check in ("cosine only", "pictures"):
            start = time.perf_counter()
            report: Duplicates | None = None
            if check == "pictures":
                fresh = Engine(settings)  # no verdicts kept from the previous threshold
                report = fresh.duplicates(threshold)
                fresh.close()
                groups = [[p.sku for p in g.products] for g in report.groups]
            else:
                groups = cosine_only(engine, threshold)
            took = time.perf_counter() - start
            s = score(groups, truth)
            copies = s["copies_found"]
            assert isinstance(copies, dict)
            wrong = s["wrong_dev_pairs"]
            assert isinstance(wrong, list)
            candidates = f"{report.candidates:,}" if report else "-"
            compared = f"{report.compared:,}" if report else "-"
            mark = "**" if threshold == DEFAULT_THRESHOLD and report else ""
            print(
                f"| {mark}{threshold}{mark} | {check} | {s['groups']} | {s['precision']:.3f} | "
                f"{s['recall']:.3f} | "
                + " | ".join(f"{copies[k]:.3f}" for k in EDITS)
                + f" | {len(wrong)} | {candidates} | {compared} | {took:.1f} s |"
            )
            results.append({"threshold": threshold, "check": check, "seconds": took, **s})
    for r in results:
        if r["threshold"] == DEFAULT_THRESHOLD and r["check"] == "pictures":
            print(f"\nwrongly grouped dev photos at {DEFAULT_THRESHOLD}: {r['wrong_dev_pairs']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.scale:
        time_candidates(engine, args.scale)
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=150, help="photos to make copies of")
    parser.add_argument(
        "--thresholds",
        type=lambda s: [float(t) for t in s.split(",")],
        default=[0.85, DEFAULT_THRESHOLD, 0.9, 0.92, 0.94],
    )
    parser.add_argument("--home", type=Path, help="keep the catalog here (default: temporary)")
    parser.add_argument("--model-cache", type=Path, help="ONNX export folder to reuse")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--scale", type=int, default=0, help="time the candidate search at N")
    args = parser.parse_args()
    if args.home:
        run(args, args.home)
        return
    home = Path(tempfile.mkdtemp(prefix="lookalike-duplicates-"))
    try:
        run(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
