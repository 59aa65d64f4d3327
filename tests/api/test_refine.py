"""Refining a search over HTTP: aspect weights, explanations, query_id(s), feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from tests.conftest import write_catalog

pytestmark = pytest.mark.dataset

COLOUR_ONLY = {"shape": 0, "colour": 1, "texture": 0}
KEY = "refine-test-key-0123456789"


def _upload(client: TestClient, dataset: Path, row: dict[str, str], **fields: Any) -> Any:
    photo = (dataset / row["file"]).read_bytes()
    return client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", photo, "image/jpeg")},
        data={k: str(v) for k, v in fields.items()},
    )


def test_results_explain_themselves(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    r = _upload(client, dataset, api_rows[7], k=5)
    assert r.status_code == 200, r.text
    body = r.json()
    query = body["query"]
    assert set(query["aspects"]) >= {"shape", "colour"}
    assert sum(v for v in query["aspects"].values() if v is not None) == pytest.approx(1, abs=1e-3)
    assert query["colours"] and query["colours"][0]["hex"].startswith("#")
    for result in body["results"]:
        aspects = result["aspects"]
        assert -1 <= aspects["shape"] <= 1 and -1 <= aspects["colour"] <= 1
        assert result["colours"], result
    # The product itself comes first, alike in every aspect.
    first = body["results"][0]
    assert first["product"]["sku"] == api_rows[7]["id"]
    assert first["aspects"]["shape"] > 0.95 and first["aspects"]["colour"] > 0.95


def test_weights_change_the_ranking_and_the_score(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    default = _upload(client, dataset, api_rows[10], k=10).json()
    by_colour = _upload(client, dataset, api_rows[10], k=10, **COLOUR_ONLY).json()
    assert by_colour["query"]["aspects"]["colour"] == pytest.approx(1)
    # Colour alone: each result's score is its colour similarity, in that order (the
    # photo's local votes, evidence for the photographed product, do not reorder them).
    colours = [r["aspects"]["colour"] for r in by_colour["results"] if r["match"] != "exact"]
    scores = [r["score"] for r in by_colour["results"] if r["match"] != "exact"]
    assert scores == pytest.approx(colours, abs=1e-3)
    assert colours == sorted(colours, reverse=True)
    assert [r["product"]["sku"] for r in default["results"]] != [
        r["product"]["sku"] for r in by_colour["results"]
    ]


def test_weighted_order_holds_for_a_photo_of_an_absent_product(
    client: TestClient, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    # dataset_rows[1] is not among the API catalog's rows (every third): no exact match,
    # so without weights its local votes would re-rank the look-alikes.
    body = _upload(client, dataset, dataset_rows[1], k=10, **COLOUR_ONLY).json()
    assert not [r for r in body["results"] if r["match"] == "exact"]
    colours = [r["aspects"]["colour"] for r in body["results"]]
    assert [r["score"] for r in body["results"]] == pytest.approx(colours, abs=1e-3)
    assert colours == sorted(colours, reverse=True)


def test_query_id_searches_again_without_the_photo(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    first = _upload(client, dataset, api_rows[12], k=6, **COLOUR_ONLY).json()
    query_id = first["query"]["id"]
    again = client.post("/api/v1/search", json={"query_id": query_id, "k": 6, **COLOUR_ONLY})
    assert again.status_code == 200, again.text
    assert again.json()["results"] == first["results"]
    assert again.json()["query"]["id"] == query_id
    reweighed = client.post("/api/v1/search", json={"query_id": query_id, "k": 6, "shape": 1})
    assert reweighed.status_code == 200
    assert reweighed.json()["query"]["aspects"]["shape"] > first["query"]["aspects"]["shape"]

    gone = client.post("/api/v1/search", json={"query_id": "no-such-query"})
    assert gone.status_code == 404
    assert gone.json()["code"] == "query_expired"
    both = client.post("/api/v1/search", json={"query_id": query_id, "image_url": "http://x/y"})
    assert both.status_code == 422
    crop = client.post(
        "/api/v1/search", json={"query_id": query_id, "crop": {"x": 0, "y": 0, "w": 5, "h": 5}}
    )
    assert crop.status_code == 422


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({"shape": 0, "colour": 0, "texture": 0}, 422, "above 0"),
        ({"colour": 1.5}, 422, "colour"),
        ({"shape": -0.1}, 422, "shape"),
        ({"colour": "red"}, 422, "colour"),
        ({"pattern": 1}, 422, "pattern"),
    ],
)
def test_bad_weights_are_a_clear_4xx(
    client: TestClient,
    dataset: Path,
    api_rows: list[dict[str, str]],
    fields: dict[str, Any],
    status: int,
    words: str,
) -> None:
    r = _upload(client, dataset, api_rows[0], **fields)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]
    similar = client.get(f"/api/v1/products/{api_rows[0]['id']}/similar", params=fields)
    assert similar.status_code == status, similar.text
    assert words in similar.json()["detail"]


def test_similar_takes_weights(client: TestClient, api_rows: list[dict[str, str]]) -> None:
    sku = api_rows[3]["id"]
    r = client.get(f"/api/v1/products/{sku}/similar", params={"k": 8, **COLOUR_ONLY})
    assert r.status_code == 200, r.text
    results = r.json()
    assert len(results) == 8 and sku not in {x["product"]["sku"] for x in results}
    colours = [x["aspects"]["colour"] for x in results]
    assert [x["score"] for x in results] == pytest.approx(colours, abs=1e-3)


def test_an_aspect_the_catalog_lacks_is_a_400(
    tmp_path: Path, model_cache: Path, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.csv", dataset, api_rows[:6])
    settings = Settings(home=tmp_path, model_cache=model_cache, texture_weight=0.0, _env_file=None)
    engine = Engine(settings)
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    with TestClient(create_app(settings)) as client:
        r = _upload(client, dataset, api_rows[1], texture=0.5)
        assert r.status_code == 400
        assert r.json()["code"] == "aspect_weights" and "no texture part" in r.json()["detail"]
        fine = _upload(client, dataset, api_rows[1], texture=0, colour=1)
        assert fine.status_code == 200
        assert "texture" not in {k for k, v in fine.json()["query"]["aspects"].items() if v}


def test_less_like_this_hides_even_the_photographed_product(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    row = api_rows[8]
    shown = _upload(client, dataset, row, k=5).json()["results"]
    assert shown[0]["product"]["sku"] == row["id"] and shown[0]["match"] == "exact"
    photo = (dataset / row["file"]).read_bytes()
    hidden = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", photo, "image/jpeg")},
        data={"k": "5", "negative": [row["id"]]},
    )
    assert hidden.status_code == 200
    assert row["id"] not in {r["product"]["sku"] for r in hidden.json()["results"]}


def test_more_and_less_like_this(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    sku = api_rows[5]["id"]
    url = f"/api/v1/products/{sku}/similar"
    before = [r["product"]["sku"] for r in client.get(url, params={"k": 10}).json()]
    more, less = before[3], before[:2]
    r = client.get(url, params={"k": 10, "positive": [more], "negative": less})
    assert r.status_code == 200, r.text
    after = [x["product"]["sku"] for x in r.json()]
    assert not set(less) & set(after)  # "less like this" is never shown again
    assert after.index(more) < 3  # "more like this" moves up

    # A form repeats the field, one SKU each.
    photo = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", (dataset / api_rows[5]["file"]).read_bytes(), "image/jpeg")},
        data={"k": "10", "positive": [more, before[4]], "negative": less},
    )
    assert photo.status_code == 200, photo.text
    found = [x["product"]["sku"] for x in photo.json()["results"]]
    assert found[0] == sku and not set(less) & set(found)


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"positive": ["no-such-sku"]}, 422, "no-such-sku"),
        (
            {"positive": [str(i) for i in range(6)], "negative": [str(i) for i in range(6)]},
            422,
            "at most 10",
        ),
        ({"negative": [str(i) for i in range(11)]}, 422, "negative"),
    ],
)
def test_bad_marks_are_a_clear_422(
    client: TestClient,
    api_rows: list[dict[str, str]],
    params: dict[str, Any],
    status: int,
    words: str,
) -> None:
    r = client.get(f"/api/v1/products/{api_rows[0]['id']}/similar", params=params)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    body = client.post("/api/v1/search", json={"image_url": "http://127.0.0.1:1/x.jpg", **params})
    assert body.status_code in (status, 400), body.text  # 400: the URL is refused first


def test_several_photos_are_one_query(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    a, b = api_rows[20], api_rows[21]
    ids = [_upload(client, dataset, row, k=3).json()["query"]["id"] for row in (a, b)]
    r = client.post("/api/v1/search", json={"query_ids": ids, "k": 6})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["photos"] == 2 and body["query"]["id"] == ids[0]
    exact = {x["product"]["sku"] for x in body["results"] if x["match"] == "exact"}
    assert exact == {a["id"], b["id"]}  # each photo's own product, both first

    many = client.post("/api/v1/search", json={"query_ids": ids * 3})
    assert many.status_code == 422
    mixed = client.post("/api/v1/search", json={"query_ids": ids, "query_id": ids[0]})
    assert mixed.status_code == 422
    gone = client.post("/api/v1/search", json={"query_ids": [ids[0], "forgotten"]})
    assert gone.status_code == 404 and gone.json()["query_id"] == "forgotten"


def test_query_id_searches_today_s_catalog(
    tmp_path: Path, model_cache: Path, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    """A remembered photo is searched in the index as it is now, not as it was when the
    photo was uploaded: a product added since is found."""
    catalog = write_catalog(tmp_path / "catalog.csv", dataset, dataset_rows[:6])
    settings = Settings(home=tmp_path, model_cache=model_cache, api_keys=KEY, _env_file=None)
    engine = Engine(settings)
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    new = dataset_rows[10]
    photo = (dataset / new["file"]).read_bytes()
    with TestClient(create_app(settings)) as client:
        first = _upload(client, dataset, new, k=3).json()
        assert new["id"] not in {r["product"]["sku"] for r in first["results"]}
        # A new index object (as a rebuild, or another process's writes, make); the write
        # below goes into it, not into the one the photo was first searched in.
        client.app.state.services.engine.rebuild_index()  # type: ignore[attr-defined]
        added = client.post(
            "/api/v1/products",
            data={"sku": new["id"]},
            files={"image": ("new.jpg", photo, "image/jpeg")},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert added.status_code == 201, added.text
        again = client.post("/api/v1/search", json={"query_id": first["query"]["id"], "k": 3})
        assert again.status_code == 200, again.text
        top = again.json()["results"][0]
        assert top["product"]["sku"] == new["id"] and top["match"] == "exact"
