"""The SMVS phone-photo protocol (issue #9), end to end, in one run.

    python -m benchmarks.smvs [--home DIR] [--no-distractors] [--no-local] [--out DIR]
                              [--fashion-queries N] [--small-photos] [--shelf-photos]
                              [--curved-photos] [--occluded-photos]

1. A fresh catalog: the 100 SMVS catalog images (category "DVD cover") plus, unless
   ``--no-distractors``, the 2,946 fashion dev products as distractors.
2. Closed set: every one of the 400 phone photos searched (``lookalike evaluate
   --queries``): R@1/R@5 overall and per phone, exact-match precision/recall.
3. Open set, twice: half of the SMVS products (every other one) deleted, then the other
   half; every photo searched each time. Photos of deleted products must not claim an
   exact match (target: at most 2%), and their results should still be DVD covers.
4. Catalog -> catalog on the fashion products (``--fashion-queries N``, every k-th):
   each catalog photo is searched as a photo; exact matches under *other* SKUs are
   listed with whether their image is byte-identical or a near-identical photo. With
   ``--fashion-edits``, the same again for edited copies of those photos (resized,
   re-encoded, cropped, colour-shifted: benchmarks/duplicates.py; mirrored copies are
   left out, no homography maps them), per edit.
5. ``--small-photos``: the closed set again with every photo shrunk to 320 and to 200 px
   on its longer side (the product small or far away: verification mostly fails), ranked
   with the photo's local votes (the default) and by cosine alone (``vote_weight`` 0).
6. ``--shelf-photos``: the closed set again with every photo shrunk to a third of a
   1,280 px frame full of other products' (mirrored) photos, in the middle and near a
   corner, with and without the second look at the photo's centre and corners (``zoom``,
   ``zoom_corners``).
7. ``--curved-photos``: the closed set again with every photo wrapped round a can
   (:func:`on_a_can`: the print of a can or a bottle, whose catalog picture is flat),
   the photo's width spanning 90 and 140 degrees of it.
8. ``--occluded-photos``: the closed set again with part of the product hidden: a hand
   holding it (:func:`in_a_hand`: fingers over one edge of the photo's middle), and a
   quarter of it covered by a product not in the catalog (:func:`quarter_hidden`).

The reports (with failure grids of the photos: local only, never committed) go to
``reports/smvs/<step>/``. ``--no-local`` runs the same protocol with local features off
(the global descriptor alone, today's baseline).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from benchmarks.common import DATASET, REPO, label_rows, machine
from benchmarks.duplicates import edits
from lookalike.config import Settings
from lookalike.embeddings.quantize import synthetic_product
from lookalike.engine import Engine
from lookalike.evaluation.queries import PhotoQuery, evaluate_queries
from lookalike.ingest.readers import CatalogRecord, read_catalog
from lookalike.training.photo_views import held_in_a_hand

SMVS = DATASET.parent / "smvs-dvd-covers"
CATEGORY = "DVD cover"


def smvs_rows() -> list[dict[str, str]]:
    """The SMVS label rows (exits with a message when the data set is absent)."""
    return label_rows(SMVS)


def smvs_catalog(rows: list[dict[str, str]]) -> list[CatalogRecord]:
    return [
        CatalogRecord(r["product_id"], SMVS / r["file"], r["file"], None, CATEGORY)
        for r in rows
        if r["image_type"] == "catalog"
    ]


def smvs_queries(rows: list[dict[str, str]]) -> list[PhotoQuery]:
    return [
        PhotoQuery(SMVS / r["file"], r["product_id"], r["device"], CATEGORY)
        for r in rows
        if r["image_type"] == "photo"
    ]


def run(
    home: Path,
    out: Path,
    distractors: bool,
    local: bool,
    fashion_queries: int = 0,
    small_photos: bool = False,
    shelf_photos: bool = False,
    fashion_edits: bool = False,
    curved_photos: bool = False,
    occluded_photos: bool = False,
) -> dict[str, Any]:
    settings = Settings(home=home, local_features=local)
    rows = smvs_rows()
    engine = Engine(settings)
    results: dict[str, Any] = {"machine": machine(), "local_features": local}
    records = smvs_catalog(rows)
    if distractors:
        records += read_catalog(DATASET / "labels.csv").records
    start = time.perf_counter()
    summary = engine.ingest(records)
    results["ingest"] = {
        "products": summary.added + summary.updated + summary.unchanged,
        "seconds": round(time.perf_counter() - start, 1),
        "failed": len(summary.failed),
    }
    print(f"ingested {results['ingest']}", flush=True)
    queries = smvs_queries(rows)
    report = evaluate_queries(engine, queries, out / "closed")
    results["closed"] = _brief(report)
    print("closed set:", json.dumps(results["closed"]), flush=True)
    catalog = smvs_catalog(rows)
    halves = [catalog[0::2], catalog[1::2]]
    for n, removed in enumerate(halves):
        engine.delete([r.sku for r in removed])
        report = evaluate_queries(engine, queries, out / f"open-{n + 1}")
        results[f"open-{n + 1}"] = _brief(report)
        print(f"open set {n + 1}:", json.dumps(results[f"open-{n + 1}"]), flush=True)
        engine.ingest(removed)
    if distractors and fashion_queries:
        results["fashion"] = fashion_exact(engine, fashion_queries, out / "fashion")
        print("fashion catalog -> catalog:", json.dumps(results["fashion"]), flush=True)
        if fashion_edits:
            results["fashion_edits"] = fashion_edit_runs(engine, fashion_queries, out)
    if small_photos and local:
        results["small"] = small_photo_runs(engine, queries, out / "small")
    if shelf_photos and local and distractors:
        results["shelf"] = shelf_photo_runs(engine, queries, out / "shelf")
    if curved_photos:  # the photo's width spanning 90 and 140 degrees of the can
        cans = {f"{angle} degrees": round_a_can(angle) for angle in (90, 140)}
        results["curved"] = edited_photo_runs(
            engine, queries, out / "curved", cans, "curved photos"
        )
    if occluded_photos:  # a hand over the product; a quarter of it, each corner in turn
        hidden: dict[str, PhotoEdit] = {"in a hand": in_a_hand, "a quarter hidden": quarter_hidden}
        results["occluded"] = edited_photo_runs(
            engine, queries, out / "occluded", hidden, "occluded photos"
        )
    engine.close()
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    return results


def fashion_exact(
    engine: Engine, n: int, out: Path, copy: Callable[[str], Path] | None = None
) -> dict[str, Any]:
    """Fashion catalog photos as queries (or, with ``copy``, the file standing in for each
    SKU's photo): which exact matches name another SKU?"""
    records = read_catalog(DATASET / "labels.csv").records
    queries = [PhotoQuery(r.image, r.sku, "", r.category) for r in fashion_picks(records, n)]
    if copy is not None:
        queries = [dataclasses.replace(q, image=copy(q.sku)) for q in queries]
    report = evaluate_queries(engine, queries, out)
    products = engine.store.get_many([r.sku for r in records])
    others = []
    for q in report["queries"]:
        for sku in q["exact_skus"]:
            if sku != q["sku"]:
                same = products[sku].image_sha256 == products[q["sku"]].image_sha256
                others.append({"query": q["sku"], "exact": sku, "same_bytes": same})
    return {
        "queries": len(queries),
        "found_itself_exact": report["exact"]["recall"],
        "other_sku_exact": others,
    }


def fashion_picks(records: list[CatalogRecord], n: int) -> list[CatalogRecord]:
    """Every k-th of the fashion products, ``n`` of them."""
    return records[:: max(1, len(records) // n)][:n]


def fashion_edit_runs(engine: Engine, n: int, out: Path) -> dict[str, Any]:
    """:func:`fashion_exact` for each kind of edited copy (made once, in a temporary
    folder: derived from the data set's photos, never kept)."""
    results = {}
    kinds = ("resize", "jpeg", "crop", "colour")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        records = fashion_picks(read_catalog(DATASET / "labels.csv").records, n)
        for i, r in enumerate(records):
            for edit, data in edits(r.image.read_bytes(), i).items():
                if edit in kinds:
                    (folder / f"{r.sku}-{edit}.jpg").write_bytes(data)
        for edit in kinds:
            copy = functools.partial(_edited, folder, edit)
            results[edit] = fashion_exact(engine, n, out / f"fashion-{edit}", copy)
            print(f"fashion {edit} copies:", json.dumps(results[edit]), flush=True)
    return results


def _edited(folder: Path, edit: str, sku: str) -> Path:
    return folder / f"{sku}-{edit}.jpg"


def small_photo_runs(engine: Engine, queries: list[PhotoQuery], out: Path) -> dict[str, Any]:
    """The closed set with shrunk photos, with and without the local votes in the ranking."""
    results: dict[str, Any] = {}
    default = engine.settings
    with tempfile.TemporaryDirectory() as tmp:
        for side in (320, 200):
            shrunk = []
            for q in queries:
                path = Path(tmp) / f"{side}-{q.image.parent.name}-{q.image.name}"
                with Image.open(q.image) as original:
                    img = ImageOps.exif_transpose(original)
                    img.thumbnail((side, side))
                    img.convert("RGB").save(path, quality=90)
                shrunk.append(dataclasses.replace(q, image=path))
            for name, weight in (("votes", default.vote_weight), ("cosine", 0.0)):
                engine.settings = default.model_copy(update={"vote_weight": weight})
                report = evaluate_queries(engine, shrunk, out / f"{side}-{name}")
                results[f"{side}px {name}"] = {
                    key: report[key] for key in ("overall", "per_group", "exact")
                }
                print(f"{side} px, {name}:", json.dumps(results[f"{side}px {name}"]), flush=True)
    engine.settings = default
    return results


def shelf_photo(photo: Path, clutter: list[Path], out: Path, corner: int | None = None) -> Path:
    """A 1,280 x 960 "shelf": the phone photo shrunk to a third of the width near the
    middle (or near ``corner`` 0-3: top left, top right, bottom left, bottom right), among
    twelve mirrored photos of other products (mirrored, so that SIFT cannot match them to
    their catalog images: clutter, not other catalog products)."""
    canvas = Image.new("RGB", (1280, 960), "grey")
    for n, path in enumerate(clutter[:12]):
        with Image.open(path) as img:
            tile = ImageOps.fit(
                ImageOps.mirror(ImageOps.exif_transpose(img).convert("RGB")), (320, 320)
            )
        canvas.paste(tile, ((n % 4) * 320, (n // 4) * 320))
    with Image.open(photo) as img:
        product = ImageOps.exif_transpose(img).convert("RGB")
    width = 1280 // 3
    product = product.resize((width, round(product.height * width / product.width)))
    if corner is None:
        x, y = (1280 - width) // 2, max(0, (960 - product.height) // 2)
    else:
        x = (40, 1280 - width - 40)[corner % 2]
        y = (30, max(0, 960 - product.height - 30))[corner // 2]
    canvas.paste(product, (x, y))
    canvas.save(out, quality=90)
    return out


def shelf_photo_runs(engine: Engine, queries: list[PhotoQuery], out: Path) -> dict[str, Any]:
    """The closed set with every photo made a small product on a cluttered shelf
    (:func:`shelf_photo`, clutter from fashion photos), in the middle and off to a corner:
    with the second look (``zoom``: the centre, then the corners: ``zoom_corners``) and
    with the whole photo only."""
    results: dict[str, Any] = {}
    default = engine.settings
    fashion = [r.image for r in read_catalog(DATASET / "labels.csv").records]
    runs = (  # (placement, run, zoom, zoom_corners)
        ("middle", "whole photo only", False, False),
        ("middle", "second look", True, default.zoom_corners),
        ("corner", "whole photo only", False, False),
        ("corner", "centre look only", True, False),
        ("corner", "centre and corners", True, True),
    )
    with tempfile.TemporaryDirectory() as tmp:
        shelves = {
            placement: [
                dataclasses.replace(
                    q,
                    image=shelf_photo(
                        q.image,
                        fashion[12 * n :: 97],
                        Path(tmp) / f"{placement}-{n}.jpg",
                        None if placement == "middle" else n % 4,
                    ),
                )
                for n, q in enumerate(queries)
            ]
            for placement in ("middle", "corner")
        }
        for placement, name, zoom, corners in runs:
            engine.settings = default.model_copy(update={"zoom": zoom, "zoom_corners": corners})
            label = f"{placement}, {name}"
            report = evaluate_queries(
                engine, shelves[placement], out / label.replace(", ", "-").replace(" ", "-")
            )
            results[label] = {
                key: report[key] for key in ("overall", "per_group", "exact", "latency_ms")
            }
            print(f"shelf photos, {label}:", json.dumps(results[label]), flush=True)
    engine.settings = default
    return results


def on_a_can(photo: Image.Image, angle: float, distance: float = 3.0) -> Image.Image:
    """``photo`` printed round a can (vertical axis) and photographed from the front, from
    ``distance`` times the can's radius: its width spans ``angle`` degrees of the can,
    squeezed towards the sides and smaller there (farther from the camera), the print's
    straight lines bent. What a curved product does to a flat catalog picture's homography."""
    rgb = np.asarray(photo.convert("RGB"))
    h, w = rgb.shape[:2]
    half = np.radians(angle) / 2
    radius = w / 2 / half  # the photo's width is the arc length round the can
    camera = distance * radius

    def shrink(phi: np.ndarray) -> np.ndarray:  # perspective: the sides lie farther away
        return np.asarray((camera - radius) / (camera - radius * np.cos(phi)))

    phis = np.linspace(-half, half, 4096)
    seen_x = radius * np.sin(phis) * shrink(phis)  # where each point of the print shows
    out_w = int(np.ceil(2 * seen_x[-1]))
    phi = np.interp(np.arange(out_w) - out_w / 2 + 0.5, seen_x, phis)
    map_x = np.broadcast_to(w / 2 - 0.5 + radius * phi, (h, out_w))
    map_y = h / 2 - 0.5 + (np.arange(h)[:, None] - h / 2 + 0.5) / shrink(phi)[None, :]
    wrapped = cv2.remap(
        rgb,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(128, 128, 128),
    )
    return Image.fromarray(wrapped)


def round_a_can(angle: float) -> PhotoEdit:
    """Every photo wrapped round a can at ``angle`` (:func:`on_a_can`)."""
    return lambda photo, _n: on_a_can(photo, angle)


def in_a_hand(photo: Image.Image, seed: int) -> Image.Image:
    """``photo`` with a hand holding what lies in its middle (the middle 60% of each side,
    where the SMVS covers are): a palm beside one edge, fingers reaching over it
    (training/photo_views.held_in_a_hand, as in the training views)."""
    rgb = np.asarray(photo.convert("RGB"))
    h, w = rgb.shape[:2]
    middle = np.zeros((h, w), bool)
    middle[round(0.2 * h) : round(0.8 * h), round(0.2 * w) : round(0.8 * w)] = True
    held, _ = held_in_a_hand(rgb, middle, np.random.default_rng(seed))
    return Image.fromarray(held)


def quarter_hidden(photo: Image.Image, seed: int) -> Image.Image:
    """``photo`` with a quarter of its middle (the middle 60% of each side, where the SMVS
    covers are) hidden under a product that is not in the catalog (a synthetic print, as
    the int8 model is calibrated on): the quarter at corner ``seed % 4`` (top left, top
    right, bottom left, bottom right). Not a catalog photo: a mirrored one of a symmetric
    garment is that garment, which the search rightly finds."""
    out = photo.convert("RGB")
    w, h = out.size
    box = (round(0.3 * w), round(0.3 * h))
    x = (round(0.2 * w), round(0.5 * w))[seed % 2]
    y = (round(0.2 * h), round(0.5 * h))[seed % 4 // 2]
    out.paste(synthetic_product(seed, box), (x, y))
    return out


#: How the n-th query photo is changed: (photo, n) -> the changed photo.
PhotoEdit = Callable[[Image.Image, int], Image.Image]


def edited_photo_runs(
    engine: Engine, queries: list[PhotoQuery], out: Path, edits: dict[str, PhotoEdit], what: str
) -> dict[str, Any]:
    """The closed set again for each of ``edits`` (a label: how every photo is changed)."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, edit in edits.items():
            edited = []
            for n, q in enumerate(queries):
                path = Path(tmp) / f"{label.replace(' ', '-')}-{n}.jpg"
                with Image.open(q.image) as img:
                    edit(ImageOps.exif_transpose(img), n).save(path, quality=90)
                edited.append(dataclasses.replace(q, image=path))
            report = evaluate_queries(engine, edited, out / label.replace(" ", "-"))
            results[label] = {
                key: report[key] for key in ("overall", "per_group", "exact", "latency_ms")
            }
            print(f"{what}, {label}:", json.dumps(results[label]), flush=True)
    return results


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    return {
        key: report[key]
        for key in ("overall", "per_group", "exact", "open_set", "category", "latency_ms")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="catalog folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "smvs")
    parser.add_argument("--no-distractors", action="store_true")
    parser.add_argument("--no-local", action="store_true")
    parser.add_argument("--fashion-queries", type=int, default=0)
    parser.add_argument("--fashion-edits", action="store_true")
    parser.add_argument("--small-photos", action="store_true")
    parser.add_argument("--shelf-photos", action="store_true")
    parser.add_argument("--curved-photos", action="store_true")
    parser.add_argument("--occluded-photos", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        run(
            home,
            args.out,
            not args.no_distractors,
            not args.no_local,
            args.fashion_queries,
            args.small_photos,
            args.shelf_photos,
            args.fashion_edits,
            args.curved_photos,
            args.occluded_photos,
        )


if __name__ == "__main__":
    main()
