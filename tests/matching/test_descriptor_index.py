"""The descriptor index: votes, adds and removals, persistence, both kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.matching import descriptor_index
from lookalike.matching.descriptor_index import DescriptorIndex
from lookalike.matching.features import catalog_features, query_features
from tests.matching.conftest import photograph, poster

PRODUCTS = 30


@pytest.fixture(scope="module")
def catalog() -> dict[int, np.ndarray]:
    return {100 + i: catalog_features(poster(i)).rootsift() for i in range(PRODUCTS)}


@pytest.fixture(scope="module")
def saved(
    catalog: dict[int, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Each kind built once (the IVF-PQ one forced on this small catalog), saved."""
    folders = {}
    for kind, flat_max in (("flat", descriptor_index.FLAT_MAX), ("ivfpq", 1000)):
        built = DescriptorIndex.build("test", catalog.items(), flat_max=flat_max, nlist=16)
        assert built.manifest.kind == kind
        folders[kind] = tmp_path_factory.mktemp(kind)
        built.save(folders[kind])
    return folders


@pytest.fixture(params=["flat", "ivfpq"])
def index(request: pytest.FixtureRequest, saved: dict[str, Path]) -> DescriptorIndex:
    return DescriptorIndex.load(saved[request.param])


def _photo(i: int) -> np.ndarray:
    return query_features(photograph(poster(i), seed=50 + i, rotate=90 * (i % 3))).rootsift()


def test_the_photographed_product_gets_the_most_votes(index: DescriptorIndex) -> None:
    for i in (0, 7, 13, 29):
        votes = index.votes(_photo(i), top=5)
        assert votes[0][0] == 100 + i


def test_removed_products_get_no_votes_and_added_ones_do(
    index: DescriptorIndex, catalog: dict[int, np.ndarray]
) -> None:
    index.remove(np.array([107]))
    assert 107 not in index and len(index) == PRODUCTS - 1
    assert 107 not in [v.product_id for v in index.votes(_photo(7), top=5)]
    index.add([(107, catalog[107])])
    assert index.votes(_photo(7), top=1)[0][0] == 107
    assert len(index) == PRODUCTS


def test_save_and_load_keep_everything(index: DescriptorIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    loaded = DescriptorIndex.load(tmp_path)
    assert loaded.manifest == index.manifest
    assert loaded.votes(_photo(13), top=3) == index.votes(_photo(13), top=3)


def test_a_corrupt_file_is_refused(index: DescriptorIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    data = (tmp_path / descriptor_index.INDEX_FILE).read_bytes()
    (tmp_path / descriptor_index.INDEX_FILE).write_bytes(data[:-10])
    with pytest.raises(ValueError):
        DescriptorIndex.load(tmp_path)


def test_an_empty_index_and_empty_queries_answer_nothing() -> None:
    empty = DescriptorIndex.build("test", [])
    assert empty.votes(np.ones((5, 128), np.float32), top=3) == []
    blank = DescriptorIndex.build("test", [(1, np.empty((0, 128), np.float32))])
    assert len(blank) == 1  # recorded, so the id set matches the database's
    assert blank.votes(np.empty((0, 128), np.float32), top=3) == []


@pytest.mark.parametrize("flat_max", [descriptor_index.FLAT_MAX, 1000])
def test_listings_of_one_image_all_get_votes(catalog: dict[int, np.ndarray], flat_max: int) -> None:
    """A product listed again under other SKUs with the same image holds the same
    descriptors: the ratio test across products must not let the listings cancel each
    other's votes (they did: no votes, so no exact match for the photographed product)."""
    listings = {**catalog, 900: catalog[103], 901: catalog[103]}
    index = DescriptorIndex.build("test", listings.items(), flat_max=flat_max, nlist=16)
    alone = DescriptorIndex.build("test", catalog.items(), flat_max=flat_max, nlist=16)
    before = {v.product_id: v.votes for v in alone.votes(_photo(3), top=5)}
    after = {v.product_id: v.votes for v in index.votes(_photo(3), top=5)}
    assert set(list(after)[:3]) == {103, 900, 901}
    # Each listing gets the product's votes (as many as alone; the IVF-PQ quantizers
    # of the two indexes are trained apart, so about as many).
    assert after[103] == after[900] == after[901] >= 0.9 * before[103]
    # Products without copies vote as before.
    assert index.votes(_photo(13), top=1)[0].product_id == 113
