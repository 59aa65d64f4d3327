from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from lookalike.index.vector_index import INDEX_FILE, FaissKind, VectorIndex, suggested_nlist


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 50 centres: structured like real embeddings, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, dim))
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


@pytest.fixture(params=["flat", "ivf"])
def built(request: pytest.FixtureRequest) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    x = _clustered(5000)
    ids = np.arange(5000, dtype=np.int64) * 10 + 3  # ids are product ids, not positions
    return VectorIndex.build(ids, x, "m1", kind=request.param), ids, x


def test_nearest_is_self_and_scores_sorted(
    built: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, x = built
    scores, found = index.search(x[:20], 5)
    assert (found[:, 0] == ids[:20]).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_ivf_recall_reaches_target() -> None:
    x = _clustered(20000)
    ids = np.arange(20000, dtype=np.int64)
    index = VectorIndex.build(ids, x, "m1", exact_max=1000, target_recall=0.95)
    assert index.manifest.kind == "ivf"
    assert index.manifest.nlist == suggested_nlist(20000)
    assert index.measure_recall(x, ids) >= 0.95
    assert index.manifest.nprobe < index.manifest.nlist  # it is really approximate


def test_filter_returns_k_allowed_when_they_exist(
    built: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, x = built
    allowed = ids[4000:4012]  # far from the query in id space and maybe in vector space
    _, found = index.search(x[:1], 10, allowed)
    assert set(found[0].tolist()) <= set(allowed.tolist())
    assert (found[0] >= 0).sum() == 10


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_a_filter_probes_more_lists_the_fewer_products_it_allows(kind: FaissKind) -> None:
    """A filter's nearest allowed products lie farther out than the nearest of all, in lists
    the tuned nprobe does not reach; when those lists still hold k allowed products, the
    search never widens. Here (10-product clusters, a filter of 1 in 10) the tuned nprobe
    alone found 0.55 of the true top 10."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, 32))
    x = centres[rng.integers(0, 2000, 20000)] + 0.3 * rng.normal(size=(20000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(20000, dtype=np.int64)
    index = VectorIndex.build(ids, x, "m1", kind=kind)
    assert index.manifest.nprobe < index.manifest.nlist
    q = x[rng.integers(0, 20000, 100)] + 0.03 * rng.normal(size=(100, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    allowed = ids[::10]
    exact = allowed[np.argsort(-(q @ x[allowed].T), axis=1)[:, :10]]
    _, found = index.search(q, 10, allowed)
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, exact, strict=True)]
    assert sum(hits) / exact.size >= 0.9


def test_add_remove_without_rebuild(built: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, x = built
    n = len(index)
    assert index.remove(ids[:3]) == 3
    assert len(index) == n - 3 and ids[0] not in index
    _, found = index.search(x[:1], 5)
    assert ids[0] not in found[0]
    index.add(np.array([999_999]), x[:1])
    _, found = index.search(x[:1], 1)
    assert found[0, 0] == 999_999
    index.add(np.array([999_999]), x[1:2])  # re-adding replaces, never duplicates
    assert len(index) == n - 3 + 1


def test_an_id_given_twice_in_one_add_is_held_once_with_its_last_vector(
    built: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, x = built
    n = len(index)
    index.add(np.array([77, 77, ids[0]]), x[[10, 11, 12]])
    assert len(index) == n + 1 and index.manifest.count == n + 1
    held, vectors = index.vectors_of(np.array([77, ids[0]]))
    assert held.tolist() == [ids[0], 77] and np.array_equal(vectors[1], x[11])
    assert index.remove(np.array([77])) == 1 and 77 not in index
    assert 77 not in index.search(x[11:12], 20)[1][0]


def test_save_load_round_trip(
    built: tuple[VectorIndex, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    index, ids, x = built
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert loaded.manifest == index.manifest
    assert len(loaded) == len(index) and int(ids[7]) in loaded
    assert (loaded.search(x[:3], 4)[1] == index.search(x[:3], 4)[1]).all()


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_vectors_are_handed_out_by_id_through_writes_and_a_reload(
    kind: FaissKind, tmp_path: Path
) -> None:
    x = _clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 7 + 1
    index = VectorIndex.build(ids, x, "m1", kind=kind)
    index.remove(ids[:2])
    index.add(ids[2:3], x[500:501])  # replaced
    index.add(np.array([99_999]), x[600:601])  # new
    asked = np.array([99_999, ids[0], ids[2], ids[10], ids[10], 123_456], dtype=np.int64)
    expected = {99_999: x[600], int(ids[2]): x[500], int(ids[10]): x[10]}

    def check(i: VectorIndex) -> None:
        held, vectors = i.vectors_of(asked)
        assert held.tolist() == sorted(expected)  # the removed and unknown ones left out
        for pid, vector in zip(held.tolist(), vectors, strict=True):
            assert np.array_equal(vector, expected[pid])  # exact, never codes

    check(index)
    index.save(tmp_path)
    check(VectorIndex.load(tmp_path))
    assert index.vectors_of(np.array([ids[0]]))[1].shape == (0, 32)


def test_an_ivf_index_is_saved_without_its_id_map_and_gets_it_back_at_load(
    tmp_path: Path,
) -> None:
    """The id map is built at load, not saved: the file stays what code before the map
    reads and writes (its removals, through a batch of ids, fail on an index with one)."""
    x = _clustered(2000)
    ids = np.arange(2000, dtype=np.int64) + 5
    index = VectorIndex.build(ids, x, "m1", kind="ivf")
    index.save(tmp_path)
    raw = faiss.read_index(str(tmp_path / INDEX_FILE))
    assert raw.remove_ids(faiss.IDSelectorBatch(ids[:1])) == 1  # as code before the map did
    assert np.array_equal(index.vectors_of(ids[5:7])[1], x[5:7])  # the live index keeps it
    loaded = VectorIndex.load(tmp_path)
    assert np.array_equal(loaded.vectors_of(ids[5:7])[1], x[5:7])
    assert loaded.remove(np.array([ids[5], 999_999])) == 1 and ids[5] not in loaded
    assert loaded.vectors_of(ids[5:7])[0].tolist() == [ids[6]]


def test_corrupt_index_file_is_detected(tmp_path: Path) -> None:
    x = _clustered(100)
    VectorIndex.build(np.arange(100), x, "m1").save(tmp_path)
    data = bytearray((tmp_path / INDEX_FILE).read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / INDEX_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its manifest"):
        VectorIndex.load(tmp_path)


def test_empty_index_searches_to_nothing() -> None:
    index = VectorIndex.build(np.empty(0, np.int64), np.empty((0, 16), np.float32), "m1", dim=16)
    _, found = index.search(np.ones((1, 16), np.float32), 5)
    assert (found < 0).all()


def test_queries_run_on_one_openmp_thread_whatever_thread_asks(
    built: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    # OpenMP keeps the thread count per calling thread; a server's worker thread that
    # searched with the default (all cores) left an OpenMP thread spinning at 0.7 core.
    import threading

    import faiss

    index, _, x = built
    seen: list[int] = []

    def worker() -> None:
        index.search(x[:1], 5)
        seen.append(faiss.omp_get_max_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [1]
