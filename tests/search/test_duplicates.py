"""Duplicate groups: union-find, the candidate k-NN, the picture comparison (on public
sample pictures), the finder on a small store, and the engine on real dev photos with
synthetic edits."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data as samples

from benchmarks.duplicates import EDITS, edits
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.index.vector_index import VectorIndex
from lookalike.ingest.readers import CatalogRecord
from lookalike.search.duplicates import (
    MAX_DIFFERING,
    DuplicateFinder,
    Picture,
    UnionFind,
    candidate_pairs,
    picture_difference,
    same_picture,
)
from lookalike.store.catalog import CatalogStore, ProductData

VERSION = "test-model"


def test_union_find_groups_transitively_and_only_sets_of_two_or_more() -> None:
    sets = UnionFind()
    assert sets.union(1, 2)
    assert sets.union(3, 2)
    assert not sets.union(1, 3)  # one set already
    assert sets.union(7, 8)
    sets.find(9)  # a single: no group
    assert sorted(sets.groups()) == [[1, 2, 3], [7, 8]]
    assert sets.find(1) == sets.find(3) != sets.find(7)


def _unit(v: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)
    return unit


def test_candidate_pairs_each_pair_once_most_alike_first() -> None:
    rng = np.random.default_rng(0)
    base = _unit(rng.standard_normal((6, 32)))
    near = _unit(base[:2] + 0.05 * rng.standard_normal((2, 32)))  # copies of 0 and 1
    vectors = np.concatenate([base, near])
    ids = np.arange(10, 18, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, VERSION)
    pairs = candidate_pairs(index, [(ids, vectors)], 0.9)
    assert [(a, b) for _, a, b in pairs] == sorted(
        [(10, 16), (11, 17)], key=lambda p: -float(vectors[p[0] - 10] @ vectors[p[1] - 10])
    )
    assert all(s >= 0.9 for s, _, _ in pairs)
    assert [s for s, _, _ in pairs] == sorted((s for s, _, _ in pairs), reverse=True)
    assert candidate_pairs(index, [(ids, vectors)], 0.999) == []


def test_candidate_pairs_look_past_the_first_neighbours_when_all_reach_the_threshold() -> None:
    rng = np.random.default_rng(1)
    one = _unit(rng.standard_normal(32))
    vectors = _unit(one + 0.01 * rng.standard_normal((40, 32)))  # 40 near-copies
    ids = np.arange(1, 41, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, VERSION)
    pairs = candidate_pairs(index, [(ids, vectors)], 0.9, neighbours=3)
    assert len(pairs) == 40 * 39 // 2  # every pair, though 3 neighbours were asked first


def _picture(name: str = "chelsea") -> np.ndarray:
    pixels: np.ndarray = getattr(samples, name)()
    return pixels if pixels.ndim == 3 else np.stack([pixels] * 3, axis=-1)


def _jpeg(pixels: np.ndarray, quality: int = 50) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"))


def test_edited_copies_are_the_same_picture_and_other_pictures_are_not() -> None:
    cat = _picture("chelsea")
    h, w = cat.shape[:2]
    original = Picture.of(cat)
    copies = {
        "itself": cat,
        "re-encoded": _jpeg(cat, 40),
        "half size": np.asarray(Image.fromarray(cat).resize((w // 2, h // 2))),
        "cropped 10%": cat[h // 20 : h - h // 20, w // 10 :],
        "mirrored": np.ascontiguousarray(cat[:, ::-1]),
        "colour shift": np.clip(cat.astype(np.float32) * [1.05, 1.0, 0.95], 0, 255).astype(
            np.uint8
        ),
    }
    for name, pixels in copies.items():
        difference = picture_difference(original, Picture.of(pixels))
        assert difference <= MAX_DIFFERING, (name, difference)
    assert picture_difference(original, original) == 0.0
    for other in ("astronaut", "coffee", "rocket"):
        assert not same_picture(original, Picture.of(_picture(other))), other
    # Another crop of the same scene shows another picture, not an edit of this one.
    assert not same_picture(Picture.of(cat[:, : w // 2]), Picture.of(cat[:, w // 2 :]))


def test_blank_and_extreme_pictures_do_not_break_the_comparison() -> None:
    white = np.full((300, 200, 3), 255, np.uint8)
    assert same_picture(Picture.of(white), Picture.of(white[:150]))
    strip = np.asarray(ImageOps.fit(Image.fromarray(_picture()), (1000, 12)))
    assert 0.0 <= picture_difference(Picture.of(strip), Picture.of(_picture())) <= 1.0
    tiny = np.zeros((3, 3, 3), np.uint8)
    assert 0.0 <= picture_difference(Picture.of(tiny), Picture.of(white)) <= 1.0


# ---- the finder on a small store (no model: vectors given) --------------------------


class Catalog:
    """A store with products whose vectors and pictures the test chooses."""

    def __init__(self, folder: Path) -> None:
        self.store = CatalogStore(f"sqlite:///{folder / 'test.db'}")
        self.pictures: dict[str, np.ndarray | None] = {}
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, sku: str, pixels: np.ndarray | None, vector: np.ndarray, sha: str = "") -> None:
        digest = sha or hashlib.sha256(sku.encode()).hexdigest()
        product = ProductData(sku=sku, image_path=f"/nowhere/{sku}.jpg", image_sha256=digest)
        self.store.upsert([(product, vector.astype(np.float32))], VERSION)
        self.pictures[sku] = pixels
        self.vectors[sku] = vector

    def find(self, threshold: float = 0.88) -> list[list[str]]:
        ids, vectors = self.store.embedding_ids(VERSION), None
        chunks = list(self.store.iter_vectors(VERSION))
        if chunks:
            ids, vectors = (np.concatenate(c) for c in zip(*chunks, strict=True))
        if vectors is None:
            vectors = np.empty((0, 8), np.float32)
        index = VectorIndex.build(ids, vectors, VERSION, dim=8)
        finder = DuplicateFinder(
            self.store, index, VERSION, lambda p: self.pictures[p.sku], workers=2
        )
        self.last = finder.find(threshold)
        return [[p.sku for p in g.products] for g in self.last.groups]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path)
    yield c
    c.store.close()


def _direction(seed: int) -> np.ndarray:
    return _unit(np.random.default_rng(seed).standard_normal(8))


def test_an_empty_catalog_and_a_single_product_have_no_duplicates(catalog: Catalog) -> None:
    assert catalog.find() == []
    assert catalog.last.products == 0
    catalog.add("only", _picture(), _direction(0))
    assert catalog.find() == []
    assert catalog.last.products == 1


def test_alike_vectors_are_grouped_only_when_their_pictures_are_the_same(
    catalog: Catalog,
) -> None:
    v = _direction(0)
    catalog.add("cat", _picture("chelsea"), v)
    catalog.add("cat-mirrored", np.ascontiguousarray(_picture("chelsea")[:, ::-1]), v)
    catalog.add("coffee-same-vector", _picture("coffee"), v)  # alike vector, other picture
    catalog.add("astronaut", _picture("astronaut"), _direction(1))
    assert catalog.find() == [["cat", "cat-mirrored"]]
    group = catalog.last.groups[0]
    assert not group.identical and group.similarity == pytest.approx(1.0, abs=1e-4)
    assert catalog.last.compared >= 2 and catalog.last.candidates == 3


def test_byte_identical_images_are_a_group_whatever_their_vectors(catalog: Catalog) -> None:
    catalog.add("a", _picture(), _direction(0), sha="f" * 64)
    catalog.add("b", _picture(), _direction(1), sha="f" * 64)  # vectors far apart
    catalog.add("c", _picture("rocket"), _direction(2))
    assert catalog.find() == [["a", "b"]]
    assert catalog.last.groups[0].identical and catalog.last.groups[0].similarity == 1.0


def test_a_catalog_of_copies_is_one_group(catalog: Catalog) -> None:
    cat = _picture()
    for i in range(30):
        jitter = _unit(_direction(0) + 0.01 * _direction(100 + i))
        catalog.add(f"copy-{i:02d}", _jpeg(cat, 30 + i), jitter)
    groups = catalog.find()
    assert groups == [[f"copy-{i:02d}" for i in range(30)]]
    # Pairs already joined are not compared: 29 links, not 435 pairs.
    assert catalog.last.candidates == 30 * 29 // 2 and catalog.last.compared == 29


def test_an_unreadable_photo_is_reported_and_left_out(catalog: Catalog) -> None:
    catalog.add("cat", _picture(), _direction(0))
    catalog.add("cat-copy", _jpeg(_picture()), _direction(0))
    catalog.add("gone", None, _direction(0))
    assert catalog.find() == [["cat", "cat-copy"]]
    assert catalog.last.unreadable == ("gone",)


def test_the_threshold_has_bounds(catalog: Catalog) -> None:
    for bad in (0.5, 1.01, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            catalog.find(bad)


# ---- the engine on real photos -------------------------------------------------------


@pytest.fixture(scope="module")
def dev_engine(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> Iterator[tuple[Engine, list[str]]]:
    """Dev photos, four of them with their five edited copies, a byte-identical pair and
    two photos of different jeans on the same model (0.96 alike, not the same picture)."""
    folder = tmp_path_factory.mktemp("duplicates")
    extra = ("9449", "9450", "10487", "11284")
    rows = [r for r in dataset_rows[:40] if r["id"] not in extra]
    sources = rows[0:40:10]
    records = [CatalogRecord(r["id"], dataset / r["file"], r["file"]) for r in rows]
    for r in sources:
        for kind, data in edits((dataset / r["file"]).read_bytes(), int(r["id"])).items():
            path = folder / f"{r['id']}-{kind}.jpg"
            path.write_bytes(data)
            records.append(CatalogRecord(f"{r['id']}-{kind}", path, str(path)))
    for sku in extra:
        image = dataset / "images" / f"{sku}.jpg"
        records.append(CatalogRecord(sku, image, str(image)))
    settings = Settings(
        home=folder / "home", model_cache=model_cache, local_features=False, _env_file=None
    )
    engine = Engine(settings)
    engine.ingest(records)
    yield engine, [r["id"] for r in sources]
    engine.close()


@pytest.mark.dataset
def test_edited_copies_of_dev_photos_are_grouped_with_their_original(
    dev_engine: tuple[Engine, list[str]],
) -> None:
    engine, sources = dev_engine
    found = engine.duplicates()
    groups = {frozenset(p.sku for p in g.products) for g in found.groups}
    for source in sources:
        assert frozenset([source, *(f"{source}-{k}" for k in EDITS)]) in groups
    identical = [g for g in found.groups if g.identical]
    assert [[p.sku for p in g.products] for g in identical] == [["9449", "9450"]]
    # Alike by the global vector, but not the same picture: not a group.
    jeans = [engine.product(s) for s in ("10487", "11284")]
    version = engine.model_config.version
    a, b = (engine.stored_vector(p.id, version) for p in jeans if p and p.id)
    assert a is not None and b is not None and float(a @ b) >= 0.88
    assert not any({"10487", "11284"} <= {p.sku for p in g.products} for g in found.groups)
    assert len(found.groups) == len(sources) + 1
    assert found.products == engine.product_count()


@pytest.mark.dataset
def test_a_run_is_kept_until_the_catalog_changes_and_verdicts_survive_a_deletion(
    dev_engine: tuple[Engine, list[str]],
) -> None:
    engine, sources = dev_engine
    first = engine.duplicates()
    assert engine.duplicates() is first  # no second run for the same catalog
    engine.delete([f"{sources[0]}-mirror"])
    after = engine.duplicates()
    # A new run, but the verdicts on the pairs it shares with the first are known.
    assert after is not first and after.compared < first.compared
    group = next(g for g in after.groups if g.products[0].sku == sources[0])
    assert f"{sources[0]}-mirror" not in {p.sku for p in group.products}
    assert len(group.products) == len(EDITS)
