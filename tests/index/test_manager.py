from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.index.manager import IndexManager
from lookalike.index.vector_index import FaissBackend
from lookalike.store import CatalogStore, ProductData


def _fill(store: CatalogStore, n: int, start: int = 0) -> list[int]:
    rng = np.random.default_rng(start)
    items = [
        (
            ProductData(f"s{i}", f"/i/{i}.jpg", f"{i:064d}"),
            rng.normal(size=8).astype(np.float32),
        )
        for i in range(start, start + n)
    ]
    return store.upsert(items, "m1")


def test_load_rebuilds_when_database_changed_behind_its_back(
    database_url: str, tmp_path: Path
) -> None:
    store = CatalogStore(database_url)
    _fill(store, 30)
    manager = IndexManager(store, tmp_path, "m1", 8)
    index, report = manager.load()
    assert report.first_build and len(index) == 30
    index, report = manager.load()
    assert not report.rebuilt  # saved index matches the database
    _fill(store, 5, start=30)  # e.g. a process killed before saving its index
    index, report = manager.load()
    assert report.rebuilt and "35" in (report.reason or "")
    assert len(index) == 35
    assert manager.check(index)["consistent"]
    store.close()


def test_apply_switches_to_ivf_when_catalog_outgrows_exact_search(tmp_path: Path) -> None:
    store = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    manager = IndexManager(store, tmp_path / "ix", "m1", 8, FaissBackend(exact_max=100))
    index, _ = manager.load()
    ids = _fill(store, 400)
    stored = [store.vector(i, "m1") for i in ids]
    vecs = np.stack([v for v in stored if v is not None])
    assert len(vecs) == len(ids)
    index = manager.apply(index, np.array(ids), vecs, np.empty(0, np.int64))
    assert index.manifest.kind == "ivf" and len(index) == 400
    report = manager.check(index)
    assert report["consistent"] and report["recall_at_10"] >= 0.9
    store.close()
