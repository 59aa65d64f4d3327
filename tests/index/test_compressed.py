"""The compressed FAISS kind (``ivfpq``): PQ codes in RAM, the exact vectors in a
memory-mapped file for the re-rank."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from lookalike.config import Settings
from lookalike.index import IndexManager, VectorIndex, compressed, create_backend
from lookalike.index.compressed import (
    RERANK_DEPTHS,
    RERANK_FILE,
    VECTORS_FILE,
    CompressedManifest,
    pq_bytes,
)
from lookalike.index.vector_index import FaissBackend, suggested_nlist
from lookalike.store import CatalogStore, ProductData

DIM = 96  # a multiple of the code's 12 dimensions a byte: 8 bytes of code a product
N = 4000


def _clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Unit vectors around 80 centres with a spread like real embeddings' neighbourhoods."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(80, dim))
    x = centres[rng.integers(0, 80, n)] + 0.6 * rng.normal(size=(n, dim))
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _exact(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]]


@pytest.fixture(scope="module")
def everything() -> np.ndarray:
    return _clustered(N + 100)  # the last 100: queries from the same catalog, not in it


@pytest.fixture(scope="module")
def data(everything: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(N, dtype=np.int64) * 7 + 1, everything[:N]


@pytest.fixture(scope="module")
def saved(data: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build (training codebooks takes seconds), saved; each test loads its own copy."""
    ids, x = data
    folder = tmp_path_factory.mktemp("built")
    VectorIndex.build(ids, x, "m1", kind="ivfpq").save(folder)
    return folder


@pytest.fixture
def index(saved: Path) -> VectorIndex:
    return VectorIndex.load(saved)


def test_whole_search_reaches_recall_against_exact(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray], everything: np.ndarray
) -> None:
    ids, x = data
    m = index.manifest
    assert m.kind == "ivfpq" and m.nlist == suggested_nlist(N)
    assert m.recall_at_10 is not None and m.recall_at_10 >= 0.95  # tuned to the target
    assert isinstance(m, CompressedManifest) and m.rerank_depth in RERANK_DEPTHS
    assert m.nprobe < m.nlist  # really approximate
    assert index.measure_recall(x, ids) >= 0.95
    # Fresh queries, not catalog vectors: top-10 against brute force.
    q = everything[N:]
    found = index.search(q, 10)[1]
    exact = _exact(x, ids, q, 10)
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    assert hits / exact.size >= 0.9


def test_scores_are_exact_inner_products_not_code_estimates(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, x = data
    scores, found = index.search(x[:20], 5)
    assert (found[:, 0] == ids[:20]).all()
    assert (np.diff(scores, axis=1) <= 0).all()
    by_id = dict(zip(ids.tolist(), range(N), strict=True))
    for row, srow, q in zip(found, scores, x[:20], strict=True):
        truth = x[[by_id[int(i)] for i in row]] @ q
        np.testing.assert_allclose(srow, truth, rtol=1e-5)


def test_without_the_rerank_the_codes_alone_lose_recall(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """The re-rank is what makes 8 bytes of code a product usable (it can fail: a
    re-rank depth of 1 keeps the codes' own order)."""
    ids, x = data
    assert isinstance(index.manifest, CompressedManifest)
    with_rerank = index.measure_recall(x, ids)
    index.manifest.rerank_depth = 1
    assert index.measure_recall(x, ids) < with_rerank - 0.1


def test_add_remove_replace_then_search(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, x = data
    assert index.remove(ids[:3]) == 3 and index.remove(ids[:3]) == 0
    assert len(index) == N - 3 and int(ids[0]) not in index and int(ids[3]) in index
    assert not set(ids[:3].tolist()) & set(index.search(x[:3], 5)[1].ravel().tolist())
    index.add(np.array([10**9]), x[:1])  # a new product, appended to the tail
    assert index.search(x[:1], 1)[1][0, 0] == 10**9
    index.add(np.array([10**9]), x[1:2])  # replaced, never duplicated
    index.add(ids[10:11], x[20:21])  # an existing product with a new vector
    assert len(index) == N - 2 and index.manifest.count == N - 2
    _, found = index.search(x[20:21], 2)
    assert set(found[0].tolist()) == {int(ids[10]), int(ids[20])}
    assert int(ids[10]) not in index.search(x[10:11], 3)[1][0]  # old vector gone
    scores, found = index.search(x[1:2], 1)
    assert found[0, 0] == 10**9 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_filters_fill_k(index: VectorIndex, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, x = data
    far = np.argsort(x @ x[0])[:12]  # the 12 products least like the query
    for allowed in (ids[far], ids[::100]):
        _, found = index.search(x[:2], 10, allowed)
        assert set(found.ravel().tolist()) <= set(allowed.tolist())
        assert ((found >= 0).sum(axis=1) == 10).all()
    _, found = index.search(x[:1], 10, np.concatenate([ids[:3], [-5, 10**12]]))
    assert sorted(found[0][found[0] >= 0].tolist()) == sorted(ids[:3].tolist())


def test_exhaustive_scores_every_product_exactly(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """A query from another geometry (one small part of the vector alone) is far from
    what the lists and codebooks were trained on; exhaustive is the exact top 10."""
    ids, x = data
    rng = np.random.default_rng(6)
    q = np.zeros((20, DIM), np.float32)
    q[:, -8:] = rng.normal(size=(20, 8))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = _exact(x, ids, q, 10)
    _, found = index.search(q, 10, exhaustive=True)
    assert (found == exact).mean() >= 0.99  # float rounding may order an exact tie apart
    assert all(set(f) == set(e) for f, e in zip(found, exact, strict=True))
    allowed = ids[::3]
    _, found = index.search(q, 10, allowed, exhaustive=True)
    keep = np.isin(ids, allowed)
    assert all(
        set(f) == set(e) for f, e in zip(found, _exact(x[keep], ids[keep], q, 10), strict=True)
    )


def test_save_load_fold_round_trip(
    index: VectorIndex,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids, x = data
    index.save(tmp_path / "a")
    rows_file = tmp_path / "a" / VECTORS_FILE
    assert rows_file.stat().st_size == 128 + N * DIM * 4  # .npy header + float32 rows
    first = rows_file.stat().st_ino
    index.remove(ids[:5])
    index.add(np.array([10**9, 10**9 + 1]), x[:2])
    index.save(tmp_path / "a")  # no fold: the rows file stays, the tail goes to the map
    assert rows_file.stat().st_ino == first
    loaded = VectorIndex.load(tmp_path / "a")
    assert loaded.manifest == index.manifest and len(loaded) == N - 3
    q = _clustered(10, seed=3)
    assert (loaded.search(q, 5)[1] == index.search(q, 5)[1]).all()
    assert (loaded.search(q, 5, exhaustive=True)[1] == index.search(q, 5, exhaustive=True)[1]).all()
    monkeypatch.setattr(compressed, "FOLD_ROWS", 2)
    loaded.add(np.array([10**9 + 2]), x[2:3])
    loaded.save(tmp_path / "a")  # the tail reached FOLD_ROWS: a new rows file
    assert rows_file.stat().st_ino != first
    assert rows_file.stat().st_size == 128 + (N - 2) * DIM * 4  # removed rows compacted
    again = VectorIndex.load(tmp_path / "a")
    assert again.search(x[2:3], 1)[1][0, 0] == 10**9 + 2
    assert (again.search(q, 5)[1] == loaded.search(q, 5)[1]).all()
    loaded.save(tmp_path / "b")  # another folder gets its own rows file
    assert VectorIndex.load(tmp_path / "b").manifest.ids_sha256 == loaded.manifest.ids_sha256


@pytest.mark.parametrize("name", [VECTORS_FILE, RERANK_FILE])
def test_a_changed_or_missing_rerank_file_is_detected(
    index: VectorIndex, tmp_path: Path, name: str
) -> None:
    index.save(tmp_path)
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="match"):
        VectorIndex.load(tmp_path)
    path.unlink()
    with pytest.raises(ValueError, match="no usable index"):
        VectorIndex.load(tmp_path)


def test_manager_rebuilds_when_the_files_do_not_match(tmp_path: Path) -> None:
    store = CatalogStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        x = _clustered(600)
        store.upsert(
            [(ProductData(f"s{i}", f"/i/{i}.jpg", f"{i:064d}"), x[i]) for i in range(600)], "m1"
        )
        backend = FaissBackend(exact_max=100, approximate="ivfpq")
        manager = IndexManager(store, tmp_path / "ix", "m1", DIM, backend)
        index, report = manager.load()
        assert report.first_build and index.manifest.kind == "ivfpq"
        assert not manager.load()[1].rebuilt
        rows = manager.folder / VECTORS_FILE
        data = bytearray(rows.read_bytes())
        data[200] ^= 0xFF
        rows.write_bytes(bytes(data))
        index, report = manager.load()
        assert report.rebuilt and "exact vectors" in (report.reason or "")
        assert manager.check(index)["consistent"] and len(index) == 600
        assert not backend.outgrown(index)  # ivfpq past exact_max stays
    finally:
        store.close()


def test_the_setting_selects_the_kind(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, faiss_kind="ivfpq", exact_search_max=500, _env_file=None)
    backend = create_backend(settings)
    x = _clustered(800)
    assert backend.build(np.arange(800), x, "m1", DIM).manifest.kind == "ivfpq"
    assert backend.build(np.arange(400), x[:400], "m1", DIM).manifest.kind == "flat"
    with pytest.raises(ValueError, match="256 products"):
        backend.build(np.arange(100), x[:100], "m1", DIM, "ivfpq")
    # Too few products to train codebooks: flat, and no rebuild at every write for it.
    tiny = FaissBackend(exact_max=0, approximate="ivfpq")
    small = tiny.build(np.arange(100), x[:100], "m1", DIM)
    assert small.manifest.kind == "flat" and not tiny.outgrown(small)
    small.add(np.arange(100, 300), x[100:300])
    assert tiny.outgrown(small)


def test_ram_is_the_codes_and_ids_and_disk_holds_the_rows(
    index: VectorIndex, tmp_path: Path
) -> None:
    """Bytes a product: the serialised index (what RAM holds) is the PQ code and the
    8-byte id, plus the centroids and codebooks shared by all products."""
    index.save(tmp_path)
    m = index.manifest
    shared = 4 * m.nlist * DIM + 4 * 256 * DIM  # coarse centroids + PQ codebooks
    per_product = (len(faiss.serialize_index(index.index)) - shared) / N
    assert pq_bytes(DIM) == 8
    assert pq_bytes(DIM) + 8 <= per_product <= pq_bytes(DIM) + 8 + 2
    assert (tmp_path / VECTORS_FILE).stat().st_size / N == pytest.approx(4 * DIM, rel=0.01)
    assert pq_bytes(1536) == 128 and pq_bytes(1292) == 108  # padded to 1,296 dimensions


def test_an_unpadded_and_a_padded_dimension_both_work() -> None:
    x = _clustered(1000, dim=40)  # 4 bytes of code: padded to 48 dimensions
    ids = np.arange(1000, dtype=np.int64)
    index = VectorIndex.build(ids, x, "m1", kind="ivfpq")
    assert isinstance(index.manifest, CompressedManifest) and index.manifest.pq_bytes == 4
    assert (index.search(x[:10], 1)[1][:, 0] == ids[:10]).all()
