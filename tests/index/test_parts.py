"""Weighted searches of an approximate index through the part scans (index/parts.py):
the top 10 that scoring every product gives, on real FAISS IVF / IVF-PQ and Annoy over a
real database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from lookalike.config import Settings
from lookalike.embeddings.aspects import AspectLayout
from lookalike.engine import Engine
from lookalike.index import IndexBackend, create_backend
from lookalike.index.base import IndexManifest, ProductIndex
from lookalike.index.manager import IndexManager
from lookalike.index.parts import PartScannedIndex
from lookalike.index.vector_index import FaissBackend
from lookalike.search.aspects import AspectWeights, weighted_query
from lookalike.store import CatalogStore, ProductData

LAYOUT = AspectLayout.of({"shape": 0.9, "colour": 0.1}, {"shape": 48, "colour": 16})
N = 2000
WEIGHTS = {
    "colour only": AspectWeights(0, 1, 0),
    "shape 0.5 + colour 0.5": AspectWeights(0.5, 0.5, 0),
    "shape 0.3 + colour 0.7": AspectWeights(0.3, 0.7, 0),
}


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return out


def _vectors(n: int, seed: int) -> np.ndarray:
    """Stored-blend vectors in clusters of shape and colour, a quarter of the products in
    another cluster's colour: products alike in colour then lie in other IVF lists than
    those alike in shape (a red shoe among the bags)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 30, n)
    shapes = rng.normal(size=(30, 48))[cluster] + 0.4 * rng.normal(size=(n, 48))
    dyed = np.where(rng.random(n) < 0.25, rng.integers(0, 30, n), cluster)
    colours = np.abs(rng.normal(size=(30, 16)))[dyed] + 0.3 * np.abs(rng.normal(size=(n, 16)))
    return np.hstack([np.sqrt(0.9) * _unit(shapes), np.sqrt(0.1) * _unit(colours)])


def _catalog(tmp_path: Path, vectors: np.ndarray) -> tuple[CatalogStore, np.ndarray]:
    """A real SQLite catalog of these vectors (model version m1): the store and the ids."""
    store = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    items = [(ProductData(f"s{i}", f"/i/{i}.jpg", f"{i:064d}"), v) for i, v in enumerate(vectors)]
    return store, np.array(store.upsert(items, "m1"), dtype=np.int64)


class _Stored:
    """The catalog's vectors (index/parts.VectorSource), as the manager gives them."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    def iter_vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.store.iter_vectors("m1")

    def vectors(self, wanted: list[int]) -> dict[int, np.ndarray]:
        return self.store.vectors(wanted, "m1")


def _backend(name: str, home: Path) -> IndexBackend:
    kinds: dict[str, dict[str, Any]] = {
        "faiss-ivf": {"exact_search_max": 100},
        "faiss-ivfpq": {"exact_search_max": 0, "faiss_kind": "ivfpq"},
        "annoy": {"index_backend": "annoy"},
    }
    return create_backend(Settings(home=home, _env_file=None, **kinds[name]))


@pytest.fixture(params=["faiss-ivf", "faiss-ivfpq", "annoy"])
def catalog(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[CatalogStore, IndexManager, np.ndarray, np.ndarray]:
    vectors = _vectors(N + 20, 0)[:N]
    store, ids = _catalog(tmp_path, vectors)
    backend = _backend(request.param, tmp_path / "home")
    manager = IndexManager(store, tmp_path / "ix", "m1", 64, backend, LAYOUT)
    return store, manager, ids, vectors


def _exact(ids: np.ndarray, vectors: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    return set(ids[np.argsort(-(vectors @ q), kind="stable")[:k]].tolist())


def _queries(weights: AspectWeights, n: int = 20) -> np.ndarray:
    """Reweighted vectors of products drawn as the catalog's were, but not in it."""
    fresh = _vectors(N + 20, 0)[N : N + n]
    return np.stack([_unit(weighted_query(v, LAYOUT, weights)) for v in fresh])


class _FullScans:
    """The product index, counting its full scans, or refusing them (``refuse``: the part
    rows must answer)."""

    def __init__(self, inner: ProductIndex, refuse: bool = False) -> None:
        self.inner, self.refuse, self.count = inner, refuse, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)

    def search(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None = None, exhaustive: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        assert not (exhaustive and self.refuse), "a weighted search fell back to the full scan"
        self.count += exhaustive
        return self.inner.search(q, k, allowed, exhaustive)


def _ready(index: ProductIndex, q: np.ndarray) -> PartScannedIndex:
    """``index`` once its part rows are built (the first weighted search starts it and is
    scanned whole), refusing full scans from then on."""
    assert isinstance(index, PartScannedIndex) and index.manifest.kind != "flat"
    index.search(q[None], 10, exhaustive=True)
    deadline = time.monotonic() + 30
    while not index.parts_ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.parts_ready
    index.inner = _FullScans(index.inner, refuse=True)
    return index


def _recall(
    index: ProductIndex,
    ids: np.ndarray,
    vectors: np.ndarray,
    queries: np.ndarray,
    exhaustive: bool,
    allowed: np.ndarray | None = None,
) -> float:
    pool = ids if allowed is None else allowed
    rows = np.isin(ids, pool)
    found = 0
    for q in queries:
        _, got = index.search(q[None], 10, allowed, exhaustive)
        found += len(_exact(ids[rows], vectors[rows], q, 10) & set(got[0].tolist()))
    return found / (10 * len(queries))


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_a_reweighted_query_finds_the_exact_top_10_without_a_full_scan(
    catalog: tuple[CatalogStore, IndexManager, np.ndarray, np.ndarray], name: str
) -> None:
    store, manager, ids, vectors = catalog
    queries = _queries(WEIGHTS[name])
    index = _ready(manager.load()[0], queries[0])
    # The lists were drawn for the stored blend: searched as built, colour misses.
    as_built = _recall(index, ids, vectors, queries, exhaustive=False)
    found = _recall(index, ids, vectors, queries, exhaustive=True)
    # Colour alone is proven exact; with shape in the query, the shape list is as good
    # as the index's recall (as for any query of an approximate index).
    if name == "colour only":
        assert as_built < 0.9 and found == 1.0
    else:
        assert found >= max(0.95, as_built)
    # The scores are the inner products, best first, as from a full scan (but for the
    # colour parts' half precision).
    scores, got = index.search(queries[:1], 10, exhaustive=True)
    stored = {int(i): v for i, v in zip(ids, vectors, strict=True)}
    assert np.allclose(scores[0], [stored[int(i)] @ queries[0] for i in got[0]], atol=1e-4)
    assert np.all(np.diff(scores[0]) <= 1e-6)
    # Filters (allowed ids) hold too, and a filter smaller than k is filled, never more.
    allowed = ids[::7]
    assert _recall(index, ids, vectors, queries, exhaustive=True, allowed=allowed) >= 0.95
    few = ids[:4]
    _, got = index.search(queries[:1], 10, few, exhaustive=True)
    assert set(got[0][got[0] >= 0].tolist()) == set(few.tolist())
    store.close()


@pytest.mark.parametrize("kind", ["faiss-ivf", "faiss-ivfpq"])
def test_a_faiss_index_re_scores_from_its_own_vectors_not_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The exact totals of a mixed search come from the vectors the index holds: no
    database read on the query's path, and the store's cache of popular vectors left
    alone."""
    vectors = _vectors(N + 20, 0)[:N]
    store, ids = _catalog(tmp_path, vectors)
    manager = IndexManager(store, tmp_path / "ix", "m1", 64, _backend(kind, tmp_path / "h"), LAYOUT)
    mixed = _queries(WEIGHTS["shape 0.5 + colour 0.5"])
    index = _ready(manager.load()[0], mixed[0])

    def no_reads(*args: object) -> dict[int, np.ndarray]:
        raise AssertionError("a stored vector was read from the database")

    monkeypatch.setattr(store, "vectors", no_reads)
    assert _recall(index, ids, vectors, mixed, exhaustive=True) >= 0.95
    assert _recall(index, ids, vectors, _queries(WEIGHTS["colour only"]), exhaustive=True) == 1.0
    store.close()


def test_writes_reach_the_part_rows_once_they_are_built(
    catalog: tuple[CatalogStore, IndexManager, np.ndarray, np.ndarray],
) -> None:
    store, manager, ids, vectors = catalog
    q = _queries(WEIGHTS["colour only"], 1)[0]
    index: ProductIndex = _ready(manager.load()[0], q)
    # A new product in exactly the query's colour comes first; a deleted one never again.
    twin = vectors[0].copy()
    twin[48:] = q[48:] * np.sqrt(0.1) / np.linalg.norm(q[48:])
    (new,) = store.upsert([(ProductData("twin", "/i/t.jpg", "t" * 64), twin)], "m1")
    index = manager.apply(index, np.array([new]), twin[None], np.empty(0, np.int64))
    _, got = index.search(q[None], 10, exhaustive=True)
    assert int(got[0][0]) == new
    store.delete(["twin"])
    index = manager.apply(
        index, np.empty(0, np.int64), np.empty((0, 64), np.float32), np.array([new])
    )
    _, got = index.search(q[None], 10, exhaustive=True)
    assert new not in got[0].tolist()
    assert _exact(ids, vectors, q, 10) == set(got[0].tolist())
    store.close()


def test_weighted_searches_beside_a_writer_keep_the_part_rows_in_step(tmp_path: Path) -> None:
    """Two threads search by colour while a third adds, replaces and deletes products (as
    the engine does: the database, then the index); afterwards the answers are those of
    the database's vectors."""
    vectors = _vectors(N + 20, 0)[:N]
    store, ids = _catalog(tmp_path, vectors)
    manager = IndexManager(store, tmp_path / "ix", "m1", 64, FaissBackend(exact_max=100), LAYOUT)
    queries = _queries(WEIGHTS["colour only"], 10)
    index = _ready(manager.load()[0], queries[0])
    fresh = _vectors(200, 9)
    done = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(60):
                if i % 3 == 0:  # a new product
                    (pid,) = store.upsert(
                        [(ProductData(f"n{i}", "/n.jpg", f"n{i:063d}"), fresh[i])], "m1"
                    )
                    manager.apply(index, np.array([pid]), fresh[i][None], np.empty(0, np.int64))
                elif i % 3 == 1:  # another picture for an old one
                    sku, pid = f"s{i}", int(ids[i])
                    store.upsert([(ProductData(sku, "/i.jpg", f"r{i:063d}"), fresh[i])], "m1")
                    manager.apply(index, np.array([pid]), fresh[i][None], np.empty(0, np.int64))
                else:  # a deletion
                    store.delete([f"s{i}"])
                    none = np.empty((0, 64), np.float32)
                    manager.apply(index, np.empty(0, np.int64), none, np.array([ids[i]]))
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            done.set()

    def search() -> None:
        try:
            while not done.is_set():
                for q in queries:
                    index.search(q[None], 10, exhaustive=True)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write), *(threading.Thread(target=search) for _ in "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    now_ids, now_vectors = manager.vectors()
    for q in queries:
        _, got = index.search(q[None], 10, exhaustive=True)
        assert set(got[0].tolist()) == _exact(now_ids, now_vectors, q, 10)
    store.close()


def test_a_query_whose_large_parts_left_the_geometry_is_scanned_whole(tmp_path: Path) -> None:
    """With a texture part the rest of a texture-heavy query is far from the stored blend:
    its list would be no bound, so the full scan answers (exactly)."""
    layout = AspectLayout.of(
        {"shape": 0.6, "colour": 0.1, "texture": 0.3}, {"shape": 48, "colour": 16, "texture": 48}
    )
    rng = np.random.default_rng(3)
    parts = [_unit(np.abs(rng.normal(size=(600, d)))) for d in (48, 16, 48)]
    vectors = np.hstack([np.sqrt(s) * p for s, p in zip((0.6, 0.1, 0.3), parts, strict=True)])
    store, ids = _catalog(tmp_path, vectors)
    manager = IndexManager(store, tmp_path / "ix", "m1", 112, FaissBackend(exact_max=100), layout)
    index, _ = manager.load()
    assert isinstance(index, PartScannedIndex)
    queries = np.stack(
        [_unit(weighted_query(v, layout, AspectWeights(0, 0.2, 1))) for v in vectors[:10]]
    )
    scans = _FullScans(index.inner)
    index.inner = scans
    assert _recall(index, ids, vectors, queries, exhaustive=True) == 1.0
    assert scans.count == len(queries)  # every one of them scanned whole
    store.close()


class _BlindToColour:
    """A product index that answers queries without colour in them exactly and those with
    colour wrongly (its worst products), unless scanning whole: what it cannot find, only
    the part rows can."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids, self.vectors = ids, vectors
        self.manifest = IndexManifest("m1", "ivf", vectors.shape[1], len(ids), "")

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None = None, exhaustive: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.isin(self.ids, self.ids if allowed is None else allowed)
        ids, scores = self.ids[rows], self.vectors[rows] @ q[0]
        blind = q[0, 48:].any() and not exhaustive
        order = np.argsort(scores if blind else -scores, kind="stable")[:k]
        return scores[order][None], ids[order][None]


def _blind_to_colour(ids: np.ndarray, vectors: np.ndarray) -> ProductIndex:
    # A test double: only what the part rows ask of the index they wrap.
    return cast(ProductIndex, _BlindToColour(ids, vectors))


@pytest.mark.parametrize("name", ["shape 0.5 + colour 0.5", "shape 0.3 + colour 0.7"])
def test_mixed_weights_are_ranked_from_the_part_rows_and_the_shape_list(
    tmp_path: Path, name: str
) -> None:
    """With an index whose shape-only answers are exact, the threshold algorithm gives
    exactly the full scan's top 10, though the index itself ranks the query wrongly."""
    vectors = _vectors(N + 20, 0)[:N]
    store, ids = _catalog(tmp_path, vectors)

    index = PartScannedIndex(_blind_to_colour(ids, vectors), LAYOUT, _Stored(store))
    queries = _queries(WEIGHTS[name])
    _ready(index, queries[0])
    assert _recall(index, ids, vectors, queries, exhaustive=False) < 0.1
    for q in queries:
        scores, got = index.search(q[None], 10, exhaustive=True)
        truth = np.argsort(-(vectors @ q), kind="stable")[:10]
        assert got[0].tolist() == ids[truth].tolist()
        assert np.allclose(scores[0], (vectors @ q)[truth], atol=1e-4)
    allowed = ids[::3]
    assert _recall(index, ids, vectors, queries, exhaustive=True, allowed=allowed) == 1.0
    store.close()


def test_a_write_during_the_build_is_replayed_onto_the_part_rows(tmp_path: Path) -> None:
    """The rows are read from the database in the background; a product changed after
    its row was read reaches them all the same."""
    vectors = _vectors(N + 20, 0)[:N]
    store, ids = _catalog(tmp_path, vectors)
    manager = IndexManager(store, tmp_path / "ix", "m1", 64, FaissBackend(exact_max=100))
    read, carry_on = threading.Event(), threading.Event()

    class Gated(_Stored):
        """The database's vectors, every row read before the build waits for the test."""

        def iter_vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            chunks = list(super().iter_vectors())
            read.set()
            assert carry_on.wait(30)
            yield from chunks

    index = PartScannedIndex(manager.load()[0], LAYOUT, Gated(store))
    q = _queries(WEIGHTS["colour only"], 1)[0]
    index.search(q[None], 10, exhaustive=True)  # starts the build
    assert read.wait(30)
    # The first product takes exactly the query's colour while the build holds its old one.
    twin = vectors[0].copy()
    twin[48:] = q[48:] * np.sqrt(0.1) / np.linalg.norm(q[48:])
    store.upsert([(ProductData("s0", "/i/0.jpg", "t" * 64), twin)], "m1")
    index.add(ids[:1], twin[None])
    carry_on.set()
    _ready(index, q)
    _, got = index.search(q[None], 10, exhaustive=True)
    assert int(got[0][0]) == int(ids[0])
    store.close()


def test_a_product_second_in_both_lists_is_found_by_growing_them(tmp_path: Path) -> None:
    """100 products share the query's colour (any shape), 100 its shape (another colour):
    each fills one list's first 64. The product near in both comes first for an even
    weighting; the lists' bound says they are too short, so they grow until it is in."""
    rng = np.random.default_rng(5)
    shape, colour = _unit(rng.normal(size=48)), _unit(np.r_[np.ones(8), np.zeros(8)])
    other_colour = _unit(np.r_[np.zeros(8), np.ones(8)])  # nothing in common with it

    def product(s: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.concatenate([np.sqrt(0.9) * _unit(s), np.sqrt(0.1) * _unit(c)])

    def near(v: np.ndarray, cos: float) -> np.ndarray:
        away = rng.normal(size=len(v))
        away = _unit(away - (away @ v) * v)
        out: np.ndarray = cos * v + np.sqrt(1 - cos**2) * away
        return out

    vectors = np.stack(
        [product(rng.normal(size=48), colour) for _ in range(100)]
        + [product(shape, other_colour) for _ in range(100)]
        + [product(near(shape, 0.9), near(colour, 0.9))]
        + [product(rng.normal(size=48), np.abs(rng.normal(size=16))) for _ in range(300)]
    )
    store, ids = _catalog(tmp_path, vectors)

    index = PartScannedIndex(_blind_to_colour(ids, vectors), LAYOUT, _Stored(store))
    q = _unit(weighted_query(product(shape, colour), LAYOUT, AspectWeights(0.5, 0.5, 0)))
    _ready(index, q)
    _, got = index.search(q[None], 10, exhaustive=True)
    assert int(got[0][0]) == int(ids[200])
    store.close()


@pytest.mark.parametrize("part_scans", [True, False])
def test_the_engine_s_index_has_part_rows_unless_switched_off(
    tmp_path: Path, part_scans: bool
) -> None:
    engine = Engine(Settings(home=tmp_path / "home", part_scans=part_scans, _env_file=None))
    assert isinstance(engine.index, PartScannedIndex) is part_scans
    engine.close()
