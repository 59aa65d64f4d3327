"""CatalogStore on SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lookalike.store import CatalogStore, ProductData


def _p(
    sku: str,
    sha: str = "a" * 64,
    *,
    title: str | None = None,
    category: str | None = None,
    price: float | None = None,
    attributes: dict[str, Any] | None = None,
) -> ProductData:
    return ProductData(
        sku=sku,
        image_path=f"/img/{sku}.jpg",
        image_sha256=sha,
        title=title,
        category=category,
        price=price,
        attributes=attributes or {},
    )


def _v(seed: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


def test_insert_read_back(store: CatalogStore) -> None:
    ids = store.upsert(
        [
            (
                _p(
                    "s1",
                    title="Red shoe",
                    category="Shoes",
                    price=19.5,
                    attributes={"color": "Red"},
                ),
                _v(1),
            ),
            (_p("s2", "b" * 64, category="Bags"), _v(2)),
        ],
        "m1",
    )
    assert len(set(ids)) == 2
    got = store.get("s1")
    assert got is not None and got.title == "Red shoe" and got.price == 19.5
    assert got.attributes == {"color": "Red"}
    vec = store.vector(ids[0], "m1")
    assert vec is not None and np.allclose(vec, _v(1))
    assert store.vector(ids[0], "other-model") is None
    assert set(store.embedding_ids("m1").tolist()) == set(ids)


def test_update_keeps_id_and_new_image_drops_old_model_vectors(store: CatalogStore) -> None:
    (pid,) = store.upsert([(_p("s1"), _v(1))], "m1")
    store.upsert([(_p("s1"), _v(3))], "m2")
    assert store.vector(pid, "m1") is not None  # same image: both versions kept
    (pid2,) = store.upsert([(_p("s1", "c" * 64, title="new"), _v(4))], "m2")
    assert pid2 == pid
    assert store.vector(pid, "m1") is None  # stale: describes the old image
    vector = store.vector(pid, "m2")
    assert vector is not None and np.allclose(vector, _v(4))
    assert store.embedded(["s1"], "m2")["s1"].image_sha256 == "c" * 64


def test_metadata_only_update_keeps_vector(store: CatalogStore) -> None:
    (pid,) = store.upsert([(_p("s1", title="old"), _v(1))], "m1")
    store.upsert([(_p("s1", title="new"), None)], "m1")
    got = store.get("s1")
    assert got is not None and got.title == "new"
    assert store.vector(pid, "m1") is not None


def test_delete_cascades_and_reports_missing(store: CatalogStore) -> None:
    ids = store.upsert([(_p("s1"), _v(1)), (_p("s2"), _v(2))], "m1")
    assert store.delete(["s1", "nope"]) == {"s1": ids[0]}
    assert store.get("s1") is None
    assert store.embedding_ids("m1").tolist() == [ids[1]]


def test_filters(store: CatalogStore) -> None:
    ids = store.upsert(
        [
            (_p("a", category="Shoes", price=10), _v(1)),
            (_p("b", category="Shoes", price=50), _v(2)),
            (_p("c", category="Bags", price=30), _v(3)),
        ],
        "m1",
    )
    assert set(store.filter_ids(category="Shoes").tolist()) == {ids[0], ids[1]}
    assert set(store.filter_ids(min_price=20).tolist()) == {ids[1], ids[2]}
    assert set(store.filter_ids(category="Shoes", max_price=20).tolist()) == {ids[0]}


def test_generation_counts_writes_and_active_model(store: CatalogStore) -> None:
    g0 = store.generation()
    store.upsert([(_p("s1"), _v(1))], "m1")
    store.set_active_model_version("m1")
    assert store.generation() == g0 + 2
    assert store.active_model_version() == "m1"


def test_iter_vectors_in_chunks(store: CatalogStore) -> None:
    ids = store.upsert([(_p(f"s{i}", f"{i:064d}"), _v(i)) for i in range(25)], "m1")
    chunks = list(store.iter_vectors("m1", chunk=10))
    assert [len(c[0]) for c in chunks] == [10, 10, 5]
    assert np.concatenate([c[0] for c in chunks]).tolist() == sorted(ids)
    assert chunks[0][1].shape == (10, 8)


def test_shared_images_are_the_byte_identical_sets(store: CatalogStore) -> None:
    assert store.shared_images() == []
    ids = store.upsert(
        [
            (_p("a1", "a" * 64), _v(1)),
            (_p("b1", "b" * 64), _v(2)),
            (_p("a2", "a" * 64), _v(3)),
            (_p("c1", "c" * 64), _v(4)),
            (_p("a3", "a" * 64), None),
            (_p("c2", "c" * 64), _v(5)),
        ],
        "m1",
    )
    shared = sorted(g.tolist() for g in store.shared_images())
    assert shared == [[ids[0], ids[2], ids[4]], [ids[3], ids[5]]]
    store.delete(["c2"])
    assert [g.tolist() for g in store.shared_images()] == [[ids[0], ids[2], ids[4]]]


def test_stats(store: CatalogStore) -> None:
    store.upsert([(_p("a", category="Shoes"), _v(1)), (_p("b", category="Shoes"), _v(2))], "m1")
    stats = store.stats()
    assert stats["products"] == 2
    assert stats["categories"] == {"Shoes": 2}
    assert stats["embeddings"] == {"m1": 2}


def test_cached_rows_follow_writes(store: CatalogStore, database_url: str) -> None:
    ids = store.upsert([(_p("s1", title="old"), _v(1)), (_p("s2", "b" * 64), _v(2))], "m1")
    assert store.by_ids(ids)[ids[0]].title == "old"  # now cached
    store.upsert([(_p("s1", title="new"), None)], "m1")
    assert store.by_ids(ids)[ids[0]].title == "new"
    store.delete(["s2"])
    assert ids[1] not in store.by_ids(ids)
    # Another process writes: this store learns of it from the change counter, then
    # forgets its rows (Engine.refresh_if_stale does that).
    other = CatalogStore(database_url)
    other.upsert([(_p("s1", title="elsewhere"), None)], "m1")
    other.close()
    assert store.by_ids([ids[0]])[ids[0]].title == "new"
    store.forget_cached()
    assert store.by_ids([ids[0]])[ids[0]].title == "elsewhere"


def test_cached_vectors_follow_writes(store: CatalogStore, database_url: str) -> None:
    ids = store.upsert([(_p("s1"), _v(1)), (_p("s2", "b" * 64), _v(2))], "m1")
    first = store.vectors(ids, "m1")  # now cached
    np.testing.assert_array_equal(first[ids[0]], _v(1))
    assert not first[ids[0]].flags.writeable  # shared: nobody may change it in place
    assert store.vectors([ids[0]], "m2") == {}  # another model version: its own entries
    store.upsert([(_p("s1", "c" * 64), _v(3))], "m1")  # a new image, a new vector
    np.testing.assert_array_equal(store.vectors(ids, "m1")[ids[0]], _v(3))
    store.delete(["s2"])
    assert ids[1] not in store.vectors(ids, "m1")
    assert store.delete_embeddings("m1") == 1
    assert store.vectors(ids, "m1") == {}
    store.upsert([(_p("s1", "d" * 64), _v(4))], "m1")
    np.testing.assert_array_equal(store.vectors([ids[0]], "m1")[ids[0]], _v(4))  # cached
    # Another process writes: this store learns of it from the change counter, then
    # forgets what it cached (Engine.refresh_if_stale does that).
    other = CatalogStore(database_url)
    other.upsert([(_p("s1", "e" * 64), _v(5))], "m1")
    other.close()
    np.testing.assert_array_equal(store.vectors([ids[0]], "m1")[ids[0]], _v(4))
    store.forget_cached()
    np.testing.assert_array_equal(store.vectors([ids[0]], "m1")[ids[0]], _v(5))


def test_local_features_live_and_die_with_the_product_image(store: CatalogStore) -> None:
    from lookalike.store.catalog import FeatureBlob

    blob = FeatureBlob("f1", 3, b"\x01\x02\x03")
    ids = store.upsert([(_p("s1"), _v(1)), (_p("s2", "b" * 64), _v(2))], "m1", [blob, None])
    assert store.local_feature_ids("f1").tolist() == [ids[0]]
    assert store.local_features(ids, "f1") == {ids[0]: b"\x01\x02\x03"}
    assert store.local_feature_skus(["s1", "s2"], "f1") == {"s1"}
    assert list(store.iter_local_features("f1")) == [(ids[0], b"\x01\x02\x03")]
    assert store.stats()["local_features"]["f1"] == {"products": 1, "keypoints": 3, "bytes": 3}
    # New features replace the old ones; metadata-only writes keep them.
    store.upsert([(_p("s1"), _v(1))], "m1", [FeatureBlob("f1", 1, b"\x09")])
    store.upsert([(_p("s1", title="renamed"), None)], "m1")
    assert store.local_features([ids[0]], "f1") == {ids[0]: b"\x09"}
    # A new image without features drops the old image's.
    store.upsert([(_p("s1", "c" * 64), _v(3))], "m1")
    assert store.local_feature_ids("f1").size == 0
    store.upsert([(_p("s2", "b" * 64), None)], "m1", [blob])
    store.delete(["s2"])
    assert store.local_feature_ids("f1").size == 0 and list(store.iter_local_features("f1")) == []
