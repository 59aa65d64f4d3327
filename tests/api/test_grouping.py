"""POST /api/v1/search: the listings of one photo (copies under other SKUs) are one
result, with the others in its ``listings``; ``group_listings=false`` shows each
near-duplicate on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from tests.conftest import append_copies, write_catalog

pytestmark = pytest.mark.dataset
COPIES = {"copy-mirror", "copy-jpeg"}


@pytest.fixture(scope="module")
def copied(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> Iterator[tuple[TestClient, list[dict[str, str]]]]:
    """Ten dev photos, and a mirrored and a re-encoded copy of the second under other
    SKUs."""
    home = tmp_path_factory.mktemp("grouping-api")
    rows = dataset_rows[:10]
    catalog = write_catalog(home / "catalog.csv", dataset, rows)
    assert append_copies(catalog, dataset / rows[1]["file"]) == COPIES
    settings = Settings(home=home, model_cache=model_cache, _env_file=None)
    engine = Engine(settings)
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    with TestClient(create_app(settings)) as client:
        yield client, rows


def _search(client: TestClient, photo: Path, **fields: str) -> list[dict[str, Any]]:
    r = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", photo.read_bytes(), "image/jpeg")},
        data={"k": "5", **fields},
    )
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


def test_copies_of_the_photo_are_listings_of_one_result(
    copied: tuple[TestClient, list[dict[str, str]]], dataset: Path
) -> None:
    client, rows = copied
    results = _search(client, dataset / rows[1]["file"])
    first = results[0]  # the best-ranked listing of the photo, the others its listings
    assert {first["product"]["sku"], *(p["sku"] for p in first["listings"])} == {
        rows[1]["id"],
        *COPIES,
    }
    listing = first["listings"][0]
    assert listing["thumbnail_url"].endswith("?size=thumb") and "title" in listing
    # k distinct photos: the copies took no place of their own.
    assert len(results) == 5
    assert not {rows[1]["id"], *COPIES} & {r["product"]["sku"] for r in results[1:]}
    assert all(r["listings"] == [] for r in results[1:])


def test_grouping_can_be_turned_off_in_a_form_and_in_json(
    copied: tuple[TestClient, list[dict[str, str]]], dataset: Path
) -> None:
    client, rows = copied
    results = _search(client, dataset / rows[1]["file"], group_listings="false")
    assert {rows[1]["id"], *COPIES} <= {r["product"]["sku"] for r in results}
    assert len(results) == 5
    assert all(r["listings"] == [] for r in results)
    # The photo again by its query id, as JSON: grouped by default, not when asked.
    upload = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", (dataset / rows[1]["file"]).read_bytes(), "image/jpeg")},
    )
    query_id = upload.json()["query"]["id"]
    for group, expect in ((True, 1), (False, 3)):
        r = client.post(
            "/api/v1/search", json={"query_id": query_id, "k": 5, "group_listings": group}
        )
        assert r.status_code == 200, r.text
        shown = {x["product"]["sku"] for x in r.json()["results"]}
        assert len({rows[1]["id"], *COPIES} & shown) == expect
    r = client.post("/api/v1/search", json={"query_id": query_id, "group_listings": "maybe"})
    assert r.status_code == 422


def test_more_like_this_groups_the_copies_unless_asked_not_to(
    copied: tuple[TestClient, list[dict[str, str]]],
) -> None:
    client, rows = copied
    url = f"/api/v1/products/{rows[1]['id']}/similar"
    grouped = client.get(url, params={"k": 4})
    assert grouped.status_code == 200, grouped.text
    first = grouped.json()[0]  # the product's own edited copies: one result
    assert {first["product"]["sku"], *(p["sku"] for p in first["listings"])} == COPIES
    apart = client.get(url, params={"k": 4, "group_listings": "false"})
    assert apart.status_code == 200, apart.text
    assert {r["product"]["sku"] for r in apart.json()} >= COPIES
    assert client.get(url, params={"group_listings": "maybe"}).status_code == 422
