"""Listings of one photo as one search result: the grouping step on a small store (public
sample pictures, vectors chosen by the test), byte-identical images in the searcher, and
the engine on dev photos with mirrored, re-encoded and byte-identical copies under other
SKUs."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data as samples

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.evaluation.queries import PhotoQuery, evaluate_queries
from lookalike.index.vector_index import VectorIndex
from lookalike.ingest.readers import CatalogRecord
from lookalike.search.duplicates import Picture, PictureCache
from lookalike.search.grouping import ListingGrouper, candidates, grouped
from lookalike.search.searcher import Searcher, SearchHit
from lookalike.store.catalog import CatalogStore, ProductData

VERSION = "test-model"


def _unit(v: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)
    return unit


def _direction(seed: int) -> np.ndarray:
    return _unit(np.random.default_rng(seed).standard_normal(8))


def _sample(name: str) -> np.ndarray:
    pixels: np.ndarray = getattr(samples, name)()
    return pixels if pixels.ndim == 3 else np.stack([pixels] * 3, axis=-1)


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"))


class Catalog:
    """Products whose vectors and pictures the test chooses; counts the photos read."""

    def __init__(self, folder: Path) -> None:
        self.store = CatalogStore(f"sqlite:///{folder / 'test.db'}")
        self.pixels: dict[str, np.ndarray] = {}
        self.reads = 0
        self.verdicts: dict[tuple[str, str], bool] = {}

    def add(self, sku: str, pixels: np.ndarray, vector: np.ndarray, sha: str = "") -> None:
        digest = sha or hashlib.sha256(sku.encode()).hexdigest()
        product = ProductData(sku=sku, image_path=f"/nowhere/{sku}.jpg", image_sha256=digest)
        self.store.upsert([(product, vector.astype(np.float32))], VERSION)
        self.pixels[sku] = pixels

    def read(self, product: ProductData) -> np.ndarray | None:
        self.reads += 1
        return self.pixels.get(product.sku)

    def grouper(self) -> ListingGrouper:
        return ListingGrouper(self.store, VERSION, PictureCache(self.read, 64), self.verdicts)

    def hits(self, *skus: str) -> list[SearchHit]:
        """These products as ranked results (scores falling)."""
        found = self.store.get_many(list(skus))
        return [SearchHit(found[s], 1.0 - i / 100) for i, s in enumerate(skus)]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path)
    yield c
    c.store.close()


def _skus(hits: list[SearchHit]) -> list[tuple[str, list[str]]]:
    return [(h.product.sku, [p.sku for p in h.listings]) for h in hits]


@pytest.fixture
def copies(catalog: Catalog) -> Catalog:
    """A photo, a mirrored and a re-encoded copy under other SKUs; a product with an
    alike vector but another picture; three other products."""
    cat, v = _sample("chelsea"), _direction(0)
    catalog.add("cat", cat, v)
    catalog.add("cat-mirrored", np.ascontiguousarray(cat[:, ::-1]), _unit(v + 0.05 * _direction(9)))
    catalog.add("cat-jpeg", _jpeg(cat, 35), v)
    catalog.add("coffee", _sample("coffee"), v)  # as alike as a copy, but not the same photo
    for seed, name in enumerate(("astronaut", "rocket", "camera"), 1):
        catalog.add(name, _sample(name), _direction(seed))
    return catalog


def test_copies_under_other_skus_are_one_result_and_other_photos_are_not(
    copies: Catalog,
) -> None:
    hits = copies.hits("cat", "coffee", "cat-mirrored", "astronaut", "cat-jpeg", "rocket")
    out = copies.grouper().group(hits, 4)
    assert _skus(out) == [
        ("cat", ["cat-mirrored", "cat-jpeg"]),
        ("coffee", []),
        ("astronaut", []),
        ("rocket", []),
    ]
    assert out[0].score == hits[0].score  # the best-ranked listing is the result


def test_the_best_ranked_listing_is_the_result_whichever_it_is(copies: Catalog) -> None:
    out = copies.grouper().group(copies.hits("cat-jpeg", "cat", "cat-mirrored", "rocket"), 10)
    assert _skus(out) == [("cat-jpeg", ["cat", "cat-mirrored"]), ("rocket", [])]


def test_only_alike_vectors_are_compared_and_verdicts_are_kept(copies: Catalog) -> None:
    hits = copies.hits("cat", "astronaut", "rocket", "camera")  # vectors far apart
    assert _skus(copies.grouper().group(hits, 4)) == [(h.product.sku, []) for h in hits]
    assert copies.reads == 0 and copies.verdicts == {}
    ranked = copies.hits("cat", "coffee", "cat-mirrored", "cat-jpeg")
    first = copies.grouper().group(ranked, 4)
    reads, verdicts = copies.reads, dict(copies.verdicts)
    assert reads > 0 and len(verdicts) >= 2
    # A second search with the same results: the verdicts are known, no photo is read.
    again = ListingGrouper(copies.store, VERSION, _unreadable, copies.verdicts).group(ranked, 4)
    assert _skus(again) == _skus(first) == [("cat", ["cat-mirrored", "cat-jpeg"]), ("coffee", [])]
    assert copies.verdicts == verdicts


def _unreadable(product: ProductData) -> Picture | None:
    raise AssertionError(f"{product.sku}'s photo was read again")


def test_an_unreadable_photo_is_not_grouped(copies: Catalog) -> None:
    del copies.pixels["cat-jpeg"]
    out = copies.grouper().group(copies.hits("cat", "cat-jpeg", "cat-mirrored"), 3)
    assert _skus(out) == [("cat", ["cat-mirrored"]), ("cat-jpeg", [])]


def test_k_is_filled_from_further_down_the_ranking(catalog: Catalog) -> None:
    cat, v = _sample("chelsea"), _direction(0)
    catalog.add("cat", cat, v)
    for i in range(6):
        catalog.add(f"copy-{i}", _jpeg(cat, 40 + 5 * i), _unit(v + 0.01 * _direction(10 + i)))
    catalog.add("coffee", _sample("coffee"), _direction(1))
    catalog.add("rocket", _sample("rocket"), _direction(2))
    ranked = catalog.hits("cat", *(f"copy-{i}" for i in range(6)), "coffee", "rocket")
    asked: list[int] = []

    def search(n: int) -> list[SearchHit]:
        asked.append(n)
        return ranked[:n]

    out = grouped(search, 2, catalog.grouper())
    # The first candidates were all listings of one photo: twice as many were ranked.
    assert asked == [candidates(2), 2 * candidates(2)] and candidates(2) == 7
    assert _skus(out) == [("cat", [f"copy-{i}" for i in range(6)]), ("coffee", [])]
    # Fewer distinct photos than asked: all of them, and the search is not repeated.
    asked.clear()
    assert len(grouped(search, 5, catalog.grouper())) == 3 and asked == [candidates(5)]


def test_byte_identical_images_are_listings_of_the_best_ranked(catalog: Catalog) -> None:
    shared = "e" * 64
    catalog.add("a", _sample("chelsea"), _direction(0), sha=shared)
    catalog.add("b", _sample("chelsea"), _unit(_direction(0) + 0.2 * _direction(5)), sha=shared)
    catalog.add("c", _sample("rocket"), _unit(_direction(0) + 0.4 * _direction(6)))
    chunks = catalog.store.iter_vectors(VERSION)
    ids, vectors = (np.concatenate(c) for c in zip(*chunks, strict=True))
    index = VectorIndex.build(ids, vectors, VERSION, dim=8)
    hits = Searcher(catalog.store, index).search(_direction(0), 2)
    assert _skus(hits) == [("a", ["b"]), ("c", [])]
    # The query's own image excluded ("more like this"): its copies are not listings.
    hits = Searcher(catalog.store, index).search(
        _direction(0), 2, exclude_sha256=frozenset({shared})
    )
    assert _skus(hits) == [("c", [])]


# ---- the engine on real photos -------------------------------------------------------


@pytest.fixture(scope="module")
def dev_engine(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> Iterator[tuple[Engine, list[str], Path]]:
    """24 dev photos (local features on, as by default), and copies of the
    first under other SKUs: mirrored, re-encoded, and the very same file. Yields the
    engine, the SKUs and the mirrored copy's path."""
    folder = tmp_path_factory.mktemp("grouping")
    rows = dataset_rows[:24]
    records = [CatalogRecord(r["id"], dataset / r["file"], r["file"]) for r in rows]
    original = dataset / rows[0]["file"]
    with Image.open(original) as photo:
        rgb = photo.convert("RGB")
    ImageOps.mirror(rgb).save(folder / "mirrored.jpg", quality=90)
    rgb.save(folder / "jpeg.jpg", quality=40)
    for kind, path in (("mirror", folder / "mirrored.jpg"), ("jpeg", folder / "jpeg.jpg")):
        records.append(CatalogRecord(f"copy-{kind}", path, str(path)))
    records.append(CatalogRecord("copy-bytes", original, str(original)))
    settings = Settings(home=folder / "home", model_cache=model_cache, _env_file=None)
    engine = Engine(settings)
    engine.ingest(records)
    yield engine, [r["id"] for r in rows], folder / "mirrored.jpg"
    engine.close()


def _all_skus(hits: list[SearchHit]) -> list[str]:
    return [p.sku for h in hits for p in (h.product, *h.listings)]


@pytest.mark.dataset
def test_a_photo_search_shows_the_listings_of_one_photo_as_one_result(
    dev_engine: tuple[Engine, list[str], Path], dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    engine, skus, _ = dev_engine
    (result,) = engine.search_files([dataset / dataset_rows[0]["file"]], 8)
    first, rest = result.hits[0], result.hits[1:]
    # The photographed product is found exactly although its image is listed again
    # (copies used to cancel its local-feature votes: matching/descriptor_index.py); the
    # copies are its listings.
    assert first.match == "exact" and first.product.sku in (skus[0], "copy-bytes")
    assert {first.product.sku, *(p.sku for p in first.listings)} == {
        skus[0],
        "copy-mirror",
        "copy-jpeg",
        "copy-bytes",
    }
    # k distinct photos: the copies took no place of their own, and the others are
    # different photos of different products.
    assert len(result.hits) == 8
    assert not any(h.product.sku.startswith("copy-") for h in rest)
    assert all(h.product.sku in skus for h in rest)
    assert len(set(_all_skus(result.hits))) == len(_all_skus(result.hits))


@pytest.mark.dataset
def test_grouping_off_shows_near_duplicates_as_results_of_their_own(
    dev_engine: tuple[Engine, list[str], Path], dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    engine, skus, _ = dev_engine
    query = dataset / dataset_rows[0]["file"]
    (result,) = engine.search_files([query], 8, group=False)
    shown = [h.product.sku for h in result.hits]
    assert {"copy-mirror", "copy-jpeg"} <= set(shown) and len(shown) == 8
    # The very same file is one result either way.
    first = result.hits[0]
    assert {first.product.sku, *(p.sku for p in first.listings)} == {skus[0], "copy-bytes"}


@pytest.mark.dataset
def test_a_copy_as_the_query_finds_itself_with_the_other_listings(
    dev_engine: tuple[Engine, list[str], Path],
) -> None:
    engine, skus, mirrored = dev_engine
    (result,) = engine.search_files([mirrored], 5)
    first = result.hits[0]
    assert {first.product.sku, *(p.sku for p in first.listings)} == {
        "copy-mirror",
        skus[0],
        "copy-jpeg",
        "copy-bytes",
    }
    assert len(result.hits) == 5


@pytest.mark.dataset
def test_more_like_this_groups_the_products_own_copies(
    dev_engine: tuple[Engine, list[str], Path],
) -> None:
    engine, skus, _ = dev_engine
    hits = engine.similar(skus[0], 6)
    # The product and the very same file are the query; its edited copies one result.
    assert {hits[0].product.sku, *(p.sku for p in hits[0].listings)} == {
        "copy-mirror",
        "copy-jpeg",
    }
    assert len(hits) == 6 and skus[0] not in _all_skus(hits)
    assert "copy-bytes" not in _all_skus(hits)
    ungrouped = engine.similar(skus[0], 6, group=False)
    assert {"copy-mirror", "copy-jpeg"} <= {h.product.sku for h in ungrouped}


@pytest.mark.dataset
def test_evaluation_counts_a_listing_of_the_first_result_as_found(
    dev_engine: tuple[Engine, list[str], Path], tmp_path: Path
) -> None:
    """``lookalike evaluate``: a photo of a product whose copy leads the group (the
    mirrored copy searched, the original expected) is found first."""
    engine, skus, mirrored = dev_engine
    report = evaluate_queries(engine, [PhotoQuery(mirrored, skus[0])], tmp_path / "report")
    (outcome,) = report["queries"]
    assert outcome["top"] != skus[0]  # the copy leads ...
    assert outcome["rank"] == 1  # ... and the original, one of its listings, is found
