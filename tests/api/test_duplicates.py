"""GET /duplicates: groups of the catalog's products whose photos are the same or nearly,
paged; bad parameters are 422 problems."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from lookalike.search.duplicates import DEFAULT_THRESHOLD
from tests.api.conftest import AUTH

pytestmark = pytest.mark.dataset


def _copy(path: Path, mirror: bool) -> bytes:
    """A photo mirrored, or re-encoded at a lower quality: a near-duplicate of it."""
    with Image.open(path) as opened:
        image = ImageOps.mirror(opened.convert("RGB")) if mirror else opened.convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=50)
    return out.getvalue()


def _groups(client: TestClient, **params: float) -> dict[str, object]:
    r = client.get("/api/v1/duplicates", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_copies_added_to_the_catalog_are_grouped_and_paged(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    before = _groups(client)
    assert before["threshold"] == DEFAULT_THRESHOLD and before["products"] == 60
    assert before["page"] == 1 and before["page_size"] == 20 and before["unreadable"] == 0
    copies = {"dup-copy-1": api_rows[0], "dup-copy-2": api_rows[1]}
    try:
        for n, (sku, row) in enumerate(copies.items()):
            photo = _copy(dataset / row["file"], mirror=n == 0)
            r = client.post(
                "/api/v1/products",
                data={"sku": sku, "title": "A copy"},
                files={"image": (f"{sku}.jpg", photo, "image/jpeg")},
                headers=AUTH,
            )
            assert r.status_code == 201, r.text
        after = _groups(client)
        assert after["products"] == 62 and after["total"] == before["total"] + 2  # type: ignore[operator]
        groups = after["groups"]
        assert isinstance(groups, list)
        found = [{p["sku"] for p in g["products"]} for g in groups]
        for sku, row in copies.items():
            assert {row["id"], sku} in found
            group = groups[found.index({row["id"], sku})]
            assert not group["identical"] and DEFAULT_THRESHOLD <= group["similarity"] <= 1
            # Oldest first: the catalog's product, then its copy; each a full Product.
            assert [p["sku"] for p in group["products"]] == [row["id"], sku]
            assert group["products"][1]["thumbnail_url"].endswith("?size=thumb")
        total = after["total"]
        assert isinstance(total, int)
        pages = [_groups(client, page=n, page_size=1)["groups"] for n in range(1, total + 2)]
        assert [len(g) for g in pages] == [1] * total + [0]  # type: ignore[arg-type]
        assert _groups(client, threshold=1.0)["total"] == before["total"]
    finally:
        for sku in copies:
            client.delete(f"/api/v1/products/{sku}", headers=AUTH)
    assert _groups(client)["total"] == before["total"]


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": "abc"},
        {"threshold": "0.5"},
        {"threshold": "1.01"},
        {"threshold": "nan"},
        {"threshold": "inf"},
        {"threshold": ""},
        {"page": "0"},
        {"page": "-3"},
        {"page": "1.5"},
        {"page": "99999999999999999999"},
        {"page_size": "0"},
        {"page_size": "101"},
        {"page_size": "ten"},
    ],
)
def test_bad_parameters_are_422_problems(client: TestClient, params: dict[str, str]) -> None:
    r = client.get("/api/v1/duplicates", params=params)
    assert r.status_code == 422, (params, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and body["errors"] and body["instance"] == "/api/v1/duplicates"
    assert next(iter(params)) in body["detail"]
