"""Search on the 200-image slice with the real model, index and database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.errors import UnknownCategoryError
from lookalike.ingest.readers import read_catalog
from lookalike.search import Filters
from tests.conftest import write_catalog

pytestmark = pytest.mark.dataset


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    slice_catalog = request.getfixturevalue("module_slice_catalog")
    home = tmp_path_factory.mktemp("search-home")
    e = Engine(Settings(home=home, model_cache=model_cache, _env_file=None))
    e.ingest(read_catalog(slice_catalog).records)
    yield e
    e.close()


@pytest.fixture(scope="module")
def module_slice_catalog(
    tmp_path_factory: pytest.TempPathFactory, dataset: Path, dataset_rows: list[dict[str, str]]
) -> Path:
    return write_catalog(tmp_path_factory.mktemp("catalog") / "catalog.csv", dataset, dataset_rows)


def test_a_catalog_photo_finds_itself_first(
    engine: Engine, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    rows = dataset_rows[:3]
    results = engine.search_files([dataset / r["file"] for r in rows], k=5)
    for row, result in zip(rows, results, strict=True):
        assert result.error is None
        assert result.hits[0].product.sku == row["id"]
        assert result.hits[0].score > 0.99
        assert len(result.hits) == 5


def test_first_results_share_the_query_category(
    engine: Engine, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    # Query with photos that are NOT in the catalog slice: real retrieval, not lookup.
    import csv

    with (dataset / "labels.csv").open(newline="") as f:
        others = [
            r for r in csv.DictReader(f) if r["category"] in ("Watches", "Sunglasses", "Backpacks")
        ]
    in_slice = {r["id"] for r in dataset_rows}
    queries = [r for r in others if r["id"] not in in_slice][:12]
    results = engine.search_files([dataset / r["file"] for r in queries], k=1)
    agree = sum(
        r.hits[0].product.category == q["category"] for q, r in zip(queries, results, strict=True)
    )
    assert agree >= 10, f"only {agree}/12 top results share the query's category"


def test_filters_still_return_k(
    engine: Engine, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    query = dataset / dataset_rows[0]["file"]
    cheap = engine.search_files([query], k=10, filters=Filters(max_price=40))[0].hits
    assert len(cheap) == 10 and all(
        h.product.price is not None and h.product.price <= 40 for h in cheap
    )
    # A category far from the query: the k best of that category, not a short list.
    hits = engine.search_files([query], k=5, filters=Filters(category="Watches"))[0].hits
    n_watches = sum(r["category"] == "Watches" for r in dataset_rows)
    assert len(hits) == min(5, n_watches) and all(h.product.category == "Watches" for h in hits)
    # A category no product has is said, not answered with an empty list.
    with pytest.raises(UnknownCategoryError, match=r"'Nope'.*Watches"):
        engine.search_files([query], k=5, filters=Filters(category="Nope"))
    with pytest.raises(UnknownCategoryError):
        engine.similar(dataset_rows[0]["id"], k=5, filters=Filters(category="Nope"))


def test_similar_excludes_itself_and_collapses_identical_images(
    engine: Engine, dataset_rows: list[dict[str, str]]
) -> None:
    sku = dataset_rows[5]["id"]
    hits = engine.similar(sku, k=8)
    assert len(hits) == 8 and sku not in [h.product.sku for h in hits]
    assert len({h.product.image_sha256 for h in hits}) == 8


def test_identical_images_under_two_skus_show_once(
    engine: Engine, dataset: Path, tmp_path: Path, dataset_rows: list[dict[str, str]]
) -> None:
    row = dataset_rows[7]
    copy = tmp_path / "copy.jpg"
    shutil.copy(dataset / row["file"], copy)
    (tmp_path / "c.csv").write_text(f"sku,image,category\ncopy-of-{row['id']},{copy},Dup\n")
    engine.ingest(read_catalog(tmp_path / "c.csv").records)
    try:
        hits = engine.search_files([copy], k=5)[0].hits
        skus = [h.product.sku for h in hits]
        assert len(hits) == 5
        assert (row["id"] in skus) != (f"copy-of-{row['id']}" in skus)  # exactly one of them
    finally:
        engine.delete([f"copy-of-{row['id']}"])


def test_bad_query_reports_error_and_others_still_answer(
    engine: Engine, dataset: Path, dataset_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    results = engine.search_files([bad, dataset / dataset_rows[0]["file"]], k=3)
    assert results[0].error and "not a recognised image" in results[0].error
    assert len(results[1].hits) == 3


def test_unknown_sku(engine: Engine) -> None:
    from lookalike.errors import ProductNotFoundError

    with pytest.raises(ProductNotFoundError):
        engine.similar("no-such-sku")


def test_a_catalog_of_one_with_its_product_marked_less(
    tmp_path: Path, model_cache: Path, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    """Weights and marks on the smallest catalogs: an empty answer, no warning, no error."""
    import warnings

    from lookalike.search.aspects import AspectWeights
    from lookalike.search.feedback import Feedback

    row = dataset_rows[0]
    catalog = write_catalog(tmp_path / "one.csv", dataset, [row])
    e = Engine(Settings(home=tmp_path / "home", model_cache=model_cache, _env_file=None))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the index's padding scores, scaled, overflowed
            empty = e.search_files([dataset / row["file"]], 3, weights=AspectWeights(colour=1))
            assert empty[0].hits == [] and empty[0].error is None
            e.ingest(read_catalog(catalog).records)
            marked = Feedback(negative=(row["id"],))
            assert e.similar(row["id"], 3, weights=AspectWeights(0, 1, 0), feedback=marked) == []
    finally:
        e.close()
