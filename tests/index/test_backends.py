"""The same tests against every product-index backend (FAISS, Annoy, Milvus Lite): real
engines, real database, synthetic vectors shaped like embeddings."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.index import IndexBackend, IndexManager, ProductIndex, annoy_backend, create_backend
from lookalike.index.annoy_backend import AnnoyBackend, AnnoyProductIndex
from lookalike.index.base import IndexBackendError, NoIndexError
from lookalike.ingest.readers import read_catalog
from lookalike.search import Filters
from lookalike.search.searcher import Searcher
from lookalike.store import CatalogStore, ProductData
from tests.conftest import write_catalog

BACKENDS = ["faiss", "annoy", "milvus"]
DIM = 32


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 50 centres: structured like real embeddings, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, DIM))
    x = centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, DIM))
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _backend(name: str, home: Path, **extra: object) -> IndexBackend:
    return create_backend(
        Settings(home=home, index_backend=name, _env_file=None, **extra)  # type: ignore[arg-type]
    )


@pytest.fixture(params=[*BACKENDS, "faiss-ivfpq"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> IndexBackend:
    if request.param == "faiss-ivfpq":  # the compressed kind, even for a few hundred products
        return _backend("faiss", tmp_path / "home", faiss_kind="ivfpq", exact_search_max=0)
    return _backend(request.param, tmp_path / "home")


@pytest.fixture
def built(backend: IndexBackend) -> tuple[ProductIndex, np.ndarray, np.ndarray]:
    x = _clustered(2000)
    ids = np.arange(2000, dtype=np.int64) * 10 + 3  # ids are product ids, not positions
    return backend.build(ids, x, "m1", DIM), ids, x


def test_factory_picks_the_backend_the_settings_name(backend: IndexBackend) -> None:
    assert backend.name in BACKENDS
    with pytest.raises(ValueError, match="index_backend"):
        Settings(index_backend="qdrant", _env_file=None)


def test_nearest_is_self_and_scores_sorted(
    built: tuple[ProductIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, x = built
    assert len(index) == 2000 and int(ids[5]) in index
    scores, found = index.search(x[:20], 5)
    assert (found[:, 0] == ids[:20]).all()
    assert (np.diff(scores, axis=1) <= 1e-5).all()
    assert index.measure_recall(x, ids) >= 0.9


def test_filter_returns_k_allowed_when_they_exist(
    built: tuple[ProductIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, x = built
    for allowed in (ids[1500:1512], ids[::100]):  # 12 products, and 1% spread over all
        _, found = index.search(x[:2], 10, allowed)
        assert set(found.ravel().tolist()) <= set(allowed.tolist())
        assert ((found >= 0).sum(axis=1) == 10).all()
    _, found = index.search(x[:1], 10, ids[:3])  # fewer allowed than k: all of them
    assert sorted(found[0][found[0] >= 0].tolist()) == sorted(ids[:3].tolist())


def test_delete_then_search_and_replace(
    built: tuple[ProductIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, x = built
    assert index.remove(ids[:3]) == 3
    assert index.remove(ids[:3]) == 0
    assert len(index) == 1997 and int(ids[0]) not in index
    _, found = index.search(x[:3], 5)
    assert not set(ids[:3].tolist()) & set(found.ravel().tolist())
    _, found = index.search(x[:1], 5, ids[:6])  # a filter naming deleted products too
    assert sorted(found[0][found[0] >= 0].tolist()) == sorted(ids[3:6].tolist())
    index.add(np.array([999_999]), x[:1])
    _, found = index.search(x[:1], 1)
    assert found[0, 0] == 999_999
    index.add(np.array([999_999]), x[1:2])  # re-adding replaces, never duplicates
    index.add(ids[10:11], x[20:21])  # an existing product with a new vector
    assert len(index) == 1998
    _, found = index.search(x[20:21], 2)
    assert set(found[0].tolist()) == {int(ids[10]), int(ids[20])}
    _, found = index.search(x[10:11], 3)
    assert int(ids[10]) not in found[0]  # its old vector is gone


def test_exhaustive_search_serves_a_query_from_another_geometry(backend: IndexBackend) -> None:
    """A query that weighs one small part of the vectors alone (as "colour only" does)
    is far from the directions the index's lists, trees or graph were built on; searched
    exhaustively, it finds the exact top 10."""
    x = _clustered(3000, seed=5)
    ids = np.arange(3000, dtype=np.int64)
    index = backend.build(ids, x, "m1", DIM, getattr(backend, "approximate", None))
    rng = np.random.default_rng(6)
    queries = np.zeros((20, DIM), np.float32)
    queries[:, -6:] = rng.normal(size=(20, 6))  # only the last 6 of 32 dimensions count
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    _, found = index.search(queries, 10, exhaustive=True)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    # Milvus's graph has no exact mode: a 16x wider search.
    assert recall >= (0.9 if backend.name == "milvus" else 1.0), recall


def test_save_then_load_gives_the_same_answers(
    built: tuple[ProductIndex, np.ndarray, np.ndarray], backend: IndexBackend, tmp_path: Path
) -> None:
    index, ids, x = built
    index.remove(ids[:2])
    index.add(np.array([7]), x[:1])
    index.save(tmp_path / "ix")
    loaded = backend.load(tmp_path / "ix", "m1", DIM)
    assert loaded.manifest.count == index.manifest.count == len(loaded)
    assert loaded.manifest.ids_sha256 == index.manifest.ids_sha256
    assert (loaded.search(x[:5], 4)[1] == index.search(x[:5], 4)[1]).all()


def test_empty_index_searches_to_nothing(backend: IndexBackend, tmp_path: Path) -> None:
    index = backend.build(np.empty(0, np.int64), np.empty((0, DIM), np.float32), "m1", DIM)
    _, found = index.search(np.ones((1, DIM), np.float32), 5)
    assert (found < 0).all()
    index.add(np.array([4]), _clustered(1))
    found = index.search(_clustered(1), 3)[1][0]
    assert found[found >= 0].tolist() == [4]


# ---- with the database: consistency and search --------------------------------------


def _catalog(store: CatalogStore, n: int) -> np.ndarray:
    """``n`` products (every 10th in category B, price = number) with their vectors."""
    x = _clustered(n, seed=1)
    items = [
        (
            ProductData(
                f"s{i}", f"/i/{i}.jpg", f"{i:064d}", category="A" if i % 10 else "B", price=i
            ),
            x[i],
        )
        for i in range(n)
    ]
    store.upsert(items, "m1")
    return x


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    s = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    yield s
    s.close()


def test_load_rebuilds_when_the_database_changed_behind_its_back(
    backend: IndexBackend, store: CatalogStore, tmp_path: Path
) -> None:
    _catalog(store, 300)
    manager = IndexManager(store, tmp_path / "ix", "m1", DIM, backend)
    index, report = manager.load()
    assert report.first_build and len(index) == 300
    index, report = manager.load()
    assert not report.rebuilt  # saved (or stored) index matches the database
    store.delete(["s0", "s1"])  # e.g. a process killed before updating its index
    index, report = manager.load()
    assert report.rebuilt and "298" in (report.reason or "")
    check = manager.check(index)
    assert check["consistent"] and check["backend"] == backend.name
    assert check["recall_at_10"] >= 0.9


def test_searcher_filters_and_deletes_on_every_backend(
    backend: IndexBackend, store: CatalogStore, tmp_path: Path
) -> None:
    x = _catalog(store, 500)
    manager = IndexManager(store, tmp_path / "ix", "m1", DIM, backend)
    index, _ = manager.load()
    searcher = Searcher(store, index)
    # Category B is 10% of the catalog, and the query sits in category A.
    hits = searcher.search(x[1], 12, Filters(category="B"))
    assert len(hits) == 12 and {h.product.category for h in hits} == {"B"}
    hits = searcher.search(x[1], 12, Filters(min_price=100, max_price=104.5))
    assert sorted(h.product.sku for h in hits) == [f"s{i}" for i in range(100, 105)]
    first = searcher.search(x[7], 3)[0].product
    assert first.sku == "s7"
    removed = store.delete(["s7"])
    index = manager.apply(
        index, np.empty(0, np.int64), np.empty((0, DIM)), np.array(list(removed.values()))
    )
    hits = Searcher(store, index).search(x[7], 3)
    assert len(hits) == 3 and "s7" not in {h.product.sku for h in hits}
    assert manager.check(index)["consistent"]
    assert not manager.load()[1].rebuilt


# ---- Annoy: the delta and its fold ----------------------------------------------------


def test_annoy_folds_writes_into_a_new_forest_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real build, held open until the test has written during it.
    building, writes_done = threading.Event(), threading.Event()
    real_build = annoy_backend._build_forest

    def build_then_wait(*args: Any, **kwargs: Any) -> Any:
        building.set()
        forest = real_build(*args, **kwargs)
        writes_done.wait(10)
        return forest

    backend = AnnoyBackend(trees=8, delta_max=50)
    x = _clustered(600)
    ids = np.arange(600, dtype=np.int64)
    index = backend.build(ids[:400], x[:400], "m1", DIM)
    monkeypatch.setattr(annoy_backend, "_build_forest", build_then_wait)
    index.remove(ids[:10])
    index.add(ids[400:440], x[400:440])  # 50 pending: not yet past delta_max
    assert index.pending == 50 and index.manifest.base_count == 400
    index.add(ids[440:441], x[440:441])  # past it: the fold starts
    assert building.wait(10)  # the fold has taken its snapshot
    index.add(ids[441:460], x[441:460])  # written while it runs: kept pending
    index.remove(ids[10:12])
    index.remove(ids[441:442])
    writes_done.set()
    while index.manifest.base_count == 400:
        time.sleep(0.01)
    assert index.manifest.base_count == 400 - 10 + 41
    assert index.pending == 18 + 2  # 18 added, 2 deleted from the new forest
    assert len(index) == 400 - 12 + 60 - 1
    _, found = index.search(x[:20], 1)
    assert set(found[:, 0].tolist()).isdisjoint(range(12))
    _, found = index.search(x[442:460], 1)
    assert (found[:, 0] == ids[442:460]).all()
    assert 441 not in index.search(x[441:442], 3)[1][0]
    index.save(tmp_path)
    assert backend.load(tmp_path, "m1", DIM).manifest.ids_sha256 == index.manifest.ids_sha256


def test_annoy_load_folds_what_a_finished_process_left_pending(tmp_path: Path) -> None:
    x = _clustered(300)
    ids = np.arange(300, dtype=np.int64)
    index = AnnoyBackend(trees=8, delta_max=1000).build(ids[:200], x[:200], "m1", DIM)
    index.add(ids[200:], x[200:])
    index.save(tmp_path)
    loaded = AnnoyBackend(trees=8, delta_max=50).load(tmp_path, "m1", DIM)
    assert isinstance(loaded, AnnoyProductIndex)
    assert loaded.pending == 0 and loaded.manifest.base_count == 300


def test_annoy_detects_a_corrupt_forest(tmp_path: Path) -> None:
    backend = AnnoyBackend(trees=4)
    backend.build(np.arange(100), _clustered(100), "m1", DIM).save(tmp_path)
    trees = tmp_path / "annoy" / "trees.ann"
    data = bytearray(trees.read_bytes())
    data[-10] ^= 0xFF
    trees.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its manifest"):
        backend.load(tmp_path, "m1", DIM)
    with pytest.raises(NoIndexError):
        backend.load(tmp_path / "elsewhere", "m1", DIM)


@pytest.mark.parametrize(("name", "library"), [("annoy", "annoy"), ("milvus", "pymilvus")])
def test_a_backend_without_its_extra_names_the_setting_and_the_extra(
    name: str, library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if `pip install 'lookalike[annoy]'` (or [milvus]) had not been run.
    monkeypatch.setitem(sys.modules, library, None)
    monkeypatch.delitem(sys.modules, f"lookalike.index.{name}_backend", raising=False)
    expected = rf"LOOKALIKE_INDEX_BACKEND={name} needs {library}, .*'lookalike\[{name}\]'"
    with pytest.raises(IndexBackendError, match=expected):
        _backend(name, tmp_path)


# ---- Milvus: errors and isolation -----------------------------------------------------


def test_milvus_unreachable_uri_names_the_setting(tmp_path: Path) -> None:
    backend = _backend("milvus", tmp_path, milvus_uri="http://127.0.0.1:9")
    with pytest.raises(IndexBackendError, match=r"LOOKALIKE_MILVUS_URI=http://127\.0\.0\.1:9"):
        backend.load(tmp_path, "m1", DIM)


def test_milvus_keeps_model_versions_in_separate_collections(tmp_path: Path) -> None:
    backend = _backend("milvus", tmp_path)
    backend.build(np.arange(10), _clustered(10), "m1", DIM)
    with pytest.raises(NoIndexError):
        backend.load(tmp_path, "m2", DIM)
    with pytest.raises(ValueError, match="32-d"):
        backend.load(tmp_path, "m1", 64)


# ---- the whole engine, with the real model ---------------------------------------------


@pytest.mark.dataset
@pytest.mark.parametrize("name", BACKENDS)
def test_engine_search_similar_delete_check_rebuild(
    name: str, settings: Settings, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    rows = dataset_rows[:24]
    catalog = write_catalog(settings.home.parent / "catalog.csv", dataset, rows)
    chosen = settings.model_copy(update={"index_backend": name, "local_features": False})
    engine = Engine(chosen)
    try:
        engine.ingest(read_catalog(catalog).records)
        query = dataset / rows[3]["file"]
        hits = engine.search_files([query], k=5)[0].hits
        assert hits[0].product.sku == rows[3]["id"] and len(hits) == 5
        cheap = engine.search_files([query], k=4, filters=Filters(max_price=14))[0].hits
        assert len(cheap) == 4 and all((h.product.price or 99) <= 14 for h in cheap)
        assert rows[3]["id"] not in {h.product.sku for h in engine.similar(rows[3]["id"], k=5)}
        engine.delete([rows[3]["id"]])
        hits = engine.search_files([query], k=5)[0].hits
        assert rows[3]["id"] not in {h.product.sku for h in hits} and len(hits) == 5
        report = engine.check_index()
        assert report["consistent"] and report["backend"] == name
        assert len(engine.rebuild_index()) == 23
    finally:
        engine.close()
    reopened = Engine(chosen)
    try:
        assert len(reopened.index) == 23 and reopened.last_sync is not None
        assert not reopened.last_sync.rebuilt
    finally:
        reopened.close()
