"""Milvus applies the search filters itself (category and price kept in the collection,
a boolean expression, no id list): the database's meaning exactly, never fewer than k,
metadata edits at once, and `index check` / `rebuild` for a copy that went stale. Real
Milvus Lite, real databases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.index import IndexManager, ProductIndex, create_backend
from lookalike.index.base import FilteringIndex
from lookalike.index.milvus_backend import MilvusBackend, MilvusProductIndex, filter_expression
from lookalike.ingest.readers import read_catalog
from lookalike.search import Filters
from lookalike.search.searcher import Searcher
from lookalike.store import CatalogStore, ProductData, ProductFields
from tests.conftest import write_catalog

DIM = 16
# Categories that differ only in case, hold quotes, backslashes, a tab or other scripts,
# and products without one: each must match as the database matches it.
CATEGORIES = ["Shoes", "shoes", "SHOES", 'Say "hi"', "back\\slash", "tab\there", "Bücher ✓", None]


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM))
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _price(i: int) -> float | None:
    """Every 7th product has no price; the others 0.1 steps, so bounds fall on prices."""
    return None if i % 7 == 0 else round(0.1 * (i % 50), 1)


def _catalog(store: CatalogStore, n: int) -> np.ndarray:
    x = _vectors(n)
    items = [
        (
            ProductData(
                f"p{i}",
                f"/i/{i}.jpg",
                f"{i:064d}",
                category=CATEGORIES[i % len(CATEGORIES)],
                price=_price(i),
            ),
            x[i],
        )
        for i in range(n)
    ]
    store.upsert(items, "m1")
    return x


def _manager(store: CatalogStore, home: Path, backend: str) -> IndexManager:
    settings = Settings(home=home, index_backend=backend, _env_file=None)
    return IndexManager(store, home / "index", "m1", DIM, create_backend(settings))


class _NoIdLists:
    """The Milvus index, with the id-list path closed: a search that reached it fails."""

    def __init__(self, index: MilvusProductIndex) -> None:
        self._index = index

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, product_id: int) -> bool:
        return product_id in self._index

    def search(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("an id list was sent to Milvus")


FILTERS = [
    Filters(category="Shoes"),
    Filters(category="shoes"),
    Filters(category='Say "hi"'),
    Filters(category="back\\slash"),
    Filters(category="tab\there"),
    Filters(category="Bücher ✓"),
    Filters(category="Nothing"),
    Filters(category="Sho\x00es"),  # text no product can hold: nothing
    Filters(min_price=2.0),
    Filters(max_price=0.3),
    Filters(min_price=1.2, max_price=1.2),  # inclusive at both ends
    Filters(min_price=0.0),  # every product with a price, none without
    Filters(min_price=3.0, max_price=1.0),  # an empty range
    Filters(min_price=float("-inf"), max_price=float("inf")),
    Filters(category="SHOES", min_price=0.5, max_price=4.0),
]


def test_expression_mirrors_the_filters() -> None:
    assert filter_expression(None) == ""
    assert filter_expression(Filters()) == ""
    assert (
        filter_expression(Filters("Shoes", 1.5, 20), [9, 3, 9])
        == 'category == "Shoes" and price >= 1.5 and price <= 20.0 and id not in [3,9]'
    )
    assert filter_expression(Filters('a"b\\c\nd')) == 'category == "a\\"b\\\\c\\nd"'
    assert filter_expression(Filters(min_price=float("inf"))) == "price >= 1.7976931348623157e+308"
    assert filter_expression(Filters("a\x00b")) is None  # no product can hold it
    assert filter_expression(Filters(max_price=float("nan"))) is None
    assert filter_expression(None, [4]) == "id not in [4]"


def test_milvus_filters_pass_what_the_database_passes(store: CatalogStore, tmp_path: Path) -> None:
    """Every filter lets through exactly the products the database's filter does (SQLite
    and PostgreSQL): case, quotes, products without a price or a category, inclusive
    bounds; and no id list goes to Milvus."""
    n = 400
    x = _catalog(store, n)
    index, _ = _manager(store, tmp_path, "milvus").load()
    assert isinstance(index, MilvusProductIndex) and isinstance(index, FilteringIndex)
    searcher = Searcher(store, _NoIdLists(index))
    for filters in FILTERS:
        want = {int(i) for i in store.filter_ids(filters.category, *_bounds(filters))}
        hits = searcher.search(x[1], n, filters)
        assert {h.product.id for h in hits} == want, filters


def _bounds(filters: Filters) -> tuple[float | None, float | None]:
    return filters.min_price, filters.max_price


def test_milvus_answers_as_faiss_does(tmp_path: Path) -> None:
    """Filtered top-k, with exclusions, equal to FAISS's exact search on the same data."""
    store = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        x = _catalog(store, 600)
        milvus, _ = _manager(store, tmp_path / "m", "milvus").load()
        faiss, _ = _manager(store, tmp_path / "f", "faiss").load()
        ids = {p.sku: p.id or 0 for p in store.all_products()}
        exclude = frozenset({ids["p3"], ids["p11"]})
        for q in (x[3], x[100], x[250]):
            for filters in (Filters("Shoes"), Filters(min_price=1.0, max_price=2.5), None):
                got = _skus(Searcher(store, milvus), q, filters, exclude)
                assert got == _skus(Searcher(store, faiss), q, filters, exclude)
                assert len(got) == 10 and not {"p3", "p11"} & set(got)
    finally:
        store.close()


def _skus(
    searcher: Searcher, q: np.ndarray, filters: Filters | None, exclude: frozenset[int]
) -> list[str]:
    return [h.product.sku for h in searcher.search(q, 10, filters, exclude)]


def test_milvus_filters_never_under_fill_k(tmp_path: Path) -> None:
    """A category of 1, 3 or 25 products among 5,000, a narrow price range, exclusions:
    min(k, passing) results every time, all of them passing."""
    n = 5000
    x = _vectors(n, seed=3)
    ids = np.arange(n, dtype=np.int64) + 100
    rare = {0: "one", **{i: "three" for i in (10, 2000, 4999)}}
    rare |= {i: "twenty-five" for i in range(500, 5000, 180)}
    fields = ProductFields(
        ids, [rare.get(i, "common") for i in range(n)], [float(i) for i in range(n)]
    )
    index = MilvusBackend(str(tmp_path / "m.db")).build(ids, x, "m1", DIM, fields=fields)
    for category, passing in (("one", 1), ("three", 3), ("twenty-five", 25)):
        for k in (1, 10, 30):
            _, found = index.search_filtered(x[:4], k, Filters(category), np.empty(0, np.int64))
            rows = [row[row >= 0] for row in found]
            assert all(len(row) == min(k, passing) for row in rows), (category, k)
            members = {int(ids[i]) for i, c in rare.items() if c == category}
            assert all(set(row.tolist()) <= members for row in rows)
    _, found = index.search_filtered(
        x[:4], 10, Filters(min_price=40.0, max_price=51.0), np.array([141, 142])
    )
    assert all(sorted(row.tolist()) == [140, *range(143, 152)] for row in found)


# ---- metadata edits, check, rebuild ---------------------------------------------------


def _engine(tmp_path: Path) -> Engine:
    return Engine(
        Settings(
            home=tmp_path / "home",
            index_backend="milvus",
            local_features=False,
            _env_file=None,
        )
    )


def test_a_metadata_edit_reaches_a_filtered_milvus_search_at_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    try:
        dim = engine.model_config.dim
        x = np.random.default_rng(0).normal(size=(30, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        for i in range(30):
            product = ProductData(f"s{i}", f"/i/{i}.jpg", f"{i:064d}", category="A", price=5.0)
            engine.upsert_product(product, x[i])
        edited = engine.product("s7")
        assert edited is not None
        engine.upsert_product(replace(edited, category="B", price=99.0), None)  # no new image

        def found(filters: Filters) -> list[str]:
            return [
                h.product.sku for h in Searcher(engine.store, engine.index).search(x[0], 5, filters)
            ]

        assert found(Filters("B")) == ["s7"]
        assert found(Filters(min_price=50)) == ["s7"]
        assert "s7" not in found(Filters("A", max_price=10))
        assert engine.check_index()["consistent"]
    finally:
        engine.close()


def test_check_reports_fields_changed_behind_its_back_and_rebuild_fixes_them(
    tmp_path: Path,
) -> None:
    store = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        x = _catalog(store, 200)
        manager = _manager(store, tmp_path, "milvus")
        index, _ = manager.load()
        assert manager.check(index)["consistent"]
        p5, p6 = store.get("p5"), store.get("p6")
        assert p5 is not None and p6 is not None
        # Written to the database alone (a process killed before it updated the index).
        store.upsert([(replace(p5, price=123.0), None), (replace(p6, category="New"), None)], "m1")
        report = manager.check(index)
        assert not report["consistent"]
        assert report["problem"] == (
            "index and database disagree on the category or price of 2 products "
            f"(ids {p5.id}, {p6.id})"
        )
        assert not _found(store, index, x[6], Filters("New"))
        index = manager.rebuild()
        assert manager.check(index)["consistent"]
        assert _found(store, index, x[6], Filters("New")) == ["p6"]
        assert _found(store, index, x[6], Filters(min_price=100)) == ["p5"]
    finally:
        store.close()


def _found(store: CatalogStore, index: ProductIndex, q: np.ndarray, filters: Filters) -> list[str]:
    return [h.product.sku for h in Searcher(store, index).search(q, 5, filters)]


def test_a_collection_without_the_fields_is_rebuilt_at_load(tmp_path: Path) -> None:
    """A collection made before category and price were kept (id and vector only) is not
    used with filters it cannot apply: the load rebuilds it from the database."""
    store = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        x = _catalog(store, 100)
        manager = _manager(store, tmp_path, "milvus")
        assert isinstance(manager.backend, MilvusBackend)
        client: MilvusClient = manager.backend.client
        name = manager.backend.collection("m1")
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        params = client.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="IP")
        client.create_collection(name, schema=schema, index_params=params)
        ids = [p.id for p in store.all_products()]
        client.upsert(name, [{"id": i, "vector": v} for i, v in zip(ids, x, strict=True)])
        index, report = manager.load()
        assert report.rebuilt and "category, id, price, vector" in (report.reason or "")
        assert manager.check(index)["consistent"]
        assert _found(store, index, x[1], Filters("shoes"))[0] == "p1"
    finally:
        store.close()


@pytest.mark.dataset
def test_ingest_writes_the_fields_and_a_metadata_only_change(
    settings: Settings, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    rows = dataset_rows[:8]
    catalog = write_catalog(settings.home.parent / "catalog.csv", dataset, rows)
    engine = Engine(
        settings.model_copy(update={"index_backend": "milvus", "local_features": False})
    )
    try:
        engine.ingest(read_catalog(catalog).records)
        query = dataset / rows[2]["file"]
        cheap = engine.search_files([query], k=3, filters=Filters(max_price=11))[0].hits
        assert {h.product.sku for h in cheap} == {rows[0]["id"], rows[1]["id"]}
        # The same catalog, one product in another category and price: no re-embedding.
        changed = [*rows[:2], {**rows[2], "category": "Renamed"}, *rows[3:]]
        write_catalog(catalog, dataset, changed, first_price=1)
        summary = engine.ingest(read_catalog(catalog).records)
        assert summary.updated == 8 and summary.embedded == 0
        hits = engine.search_files([query], k=3, filters=Filters("Renamed"))[0].hits
        assert [h.product.sku for h in hits] == [rows[2]["id"]]
        cheap = engine.search_files([query], k=10, filters=Filters(max_price=2))[0].hits
        assert {h.product.sku for h in cheap} == {rows[0]["id"], rows[1]["id"]}
        assert engine.check_index()["consistent"]
    finally:
        engine.close()


@pytest.mark.dataset
def test_a_filtered_photo_search_reads_no_id_list(
    settings: Settings,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Milvus the photo search's local-feature votes are filtered by asking the
    database about the voted products alone, not by reading every id the filter lets
    through (the global search pushes the filter down)."""
    rows = dataset_rows[:8]
    catalog = write_catalog(settings.home.parent / "catalog.csv", dataset, rows)
    engine = Engine(settings.model_copy(update={"index_backend": "milvus"}))
    try:
        engine.ingest(read_catalog(catalog).records)
        reads: list[Sequence[int] | None] = []
        filter_ids = engine.store.filter_ids

        def recorded(*args: Any) -> np.ndarray:
            reads.append(args[3] if len(args) > 3 else None)
            return filter_ids(*args)

        monkeypatch.setattr(engine.store, "filter_ids", recorded)
        query = dataset / rows[2]["file"]
        (result,) = engine.search_files([query], k=3, filters=Filters(min_price=12))
        assert result.hits[0].product.sku == rows[2]["id"]
        assert result.hits[0].match == "exact"
        (result,) = engine.search_files([query], k=3, filters=Filters(max_price=11.5))
        assert {h.product.sku for h in result.hits} == {rows[0]["id"], rows[1]["id"]}
        assert reads and all(among is not None and len(among) <= 48 for among in reads)
    finally:
        engine.close()
