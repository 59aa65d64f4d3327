"""Browse, similar, and writes (effective in search immediately)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.api.services import Services
from lookalike.config import Settings
from tests.api.conftest import AUTH, oversized_body

pytestmark = pytest.mark.dataset


def test_list_page_search_and_categories(
    client: TestClient, api_rows: list[dict[str, str]]
) -> None:
    page = client.get("/api/v1/products", params={"page": 2, "page_size": 25}).json()
    assert page["total"] == 60 and page["page"] == 2 and len(page["items"]) == 25
    word = api_rows[0]["title"].split()[0]
    found = client.get("/api/v1/products", params={"q": word.lower()}).json()
    assert found["total"] >= 1 and all(word.lower() in p["title"].lower() for p in found["items"])
    cats = client.get("/api/v1/categories").json()
    assert sum(c["count"] for c in cats) == 60
    biggest = cats[0]["name"]
    in_cat = client.get("/api/v1/products", params={"category": biggest}).json()
    assert in_cat["total"] == cats[0]["count"]


def test_get_and_similar(client: TestClient, api_rows: list[dict[str, str]]) -> None:
    sku = api_rows[2]["id"]
    product = client.get(f"/api/v1/products/{sku}").json()
    assert product["sku"] == sku and product["metadata"]["color"] == api_rows[2]["color"]
    similar = client.get(f"/api/v1/products/{sku}/similar", params={"k": 6}).json()
    assert len(similar) == 6 and sku not in [s["product"]["sku"] for s in similar]
    r = client.get("/api/v1/products/nope-123")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/products/nope-123/similar").status_code == 404


def test_writes_need_the_key(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    photo = (dataset / api_rows[0]["file"]).read_bytes()
    r = client.post("/api/v1/products", data={"sku": "x1"}, files={"image": ("a.jpg", photo)})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post(
        "/api/v1/products",
        data={"sku": "x1"},
        files={"image": ("a.jpg", photo)},
        headers={"Authorization": "Bearer wrong"},
    )
    assert r.status_code == 401
    assert client.delete(f"/api/v1/products/{api_rows[0]['id']}").status_code == 401


def test_writes_refused_when_no_key_is_configured(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"api_keys": ""})
    with TestClient(create_app(settings)) as c:
        r = c.delete("/api/v1/products/anything", headers=AUTH)
        assert r.status_code == 403 and "LOOKALIKE_API_KEYS" in r.json()["detail"]


def test_create_update_delete_cycle(
    client: TestClient, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    # A photo that is not in the API catalog.
    row = dataset_rows[1]
    photo = (dataset / row["file"]).read_bytes()
    r = client.post(
        "/api/v1/products",
        data={
            "sku": "new/sku 1",
            "title": "Brand new",
            "category": "Testing",
            "price": "12.5",
            "metadata": '{"color": "Teal"}',
        },
        files={"image": ("p.jpg", photo, "image/jpeg")},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert r.json()["metadata"] == {"color": "Teal"} and r.json()["image_width"] > 0
    # Searchable at once, no rebuild.
    hits = client.post("/api/v1/search", files={"image": ("q.jpg", photo)}, data={"k": "1"}).json()
    assert hits["results"][0]["product"]["sku"] == "new/sku 1"
    # Its local features were stored and indexed with it: the photo is an exact match.
    assert hits["results"][0]["match"] == "exact" and hits["results"][0]["inliers"] >= 15
    dup = client.post(
        "/api/v1/products",
        data={"sku": "new/sku 1"},
        files={"image": ("p.jpg", photo)},
        headers=AUTH,
    )
    assert dup.status_code == 409

    r = client.put(
        "/api/v1/products/new/sku 1", data={"title": "Renamed", "price": "9"}, headers=AUTH
    )
    assert (
        r.status_code == 200
        and r.json()["title"] == "Renamed"
        and r.json()["category"] == "Testing"
    )
    other = (dataset / dataset_rows[2]["file"]).read_bytes()
    r = client.put("/api/v1/products/new/sku 1", files={"image": ("o.jpg", other)}, headers=AUTH)
    assert r.status_code == 200
    hits = client.post("/api/v1/search", files={"image": ("q.jpg", other)}, data={"k": "1"}).json()
    assert hits["results"][0]["product"]["sku"] == "new/sku 1"
    assert client.get("/api/v1/images/new%2Fsku%201").status_code == 200

    assert client.delete("/api/v1/products/new/sku 1", headers=AUTH).status_code == 204
    assert client.get("/api/v1/products/new/sku 1").status_code == 404
    hits = client.post("/api/v1/search", files={"image": ("q.jpg", other)}, data={"k": "3"}).json()
    assert "new/sku 1" not in [h["product"]["sku"] for h in hits["results"]]
    assert client.delete("/api/v1/products/new/sku 1", headers=AUTH).status_code == 404


def test_bad_write_input(client: TestClient, dataset: Path, api_rows: list[dict[str, str]]) -> None:
    photo = (dataset / api_rows[0]["file"]).read_bytes()
    r = client.post(
        "/api/v1/products",
        data={"sku": "m1", "metadata": "[1,2]"},
        files={"image": ("a.jpg", photo)},
        headers=AUTH,
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/products",
        data={"sku": "m2"},
        files={"image": ("a.jpg", b"GIF89a nonsense")},
        headers=AUTH,
    )
    assert r.status_code in (400, 415)
    assert client.get("/api/v1/products/m2").status_code == 404  # nothing half-written
    r = client.post(
        "/api/v1/products",
        data={"sku": "m3", "price": "-4"},
        files={"image": ("a.jpg", photo)},
        headers=AUTH,
    )
    assert r.status_code == 422


def test_chunked_product_upload_over_the_limit_is_413(
    client: TestClient, api_settings: Settings
) -> None:
    boundary = "b0"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="sku"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    ).encode()

    r = client.post(
        "/api/v1/products",
        content=oversized_body(head, api_settings.max_upload_bytes),
        headers={**AUTH, "content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/products/big").status_code == 404


def test_private_reads_and_cors(api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={"public_reads": False, "cors_origins": "https://shop.example"}
    )
    with TestClient(create_app(settings)) as c:
        assert c.get("/api/v1/categories").status_code == 401
        assert c.get("/api/v1/categories", headers=AUTH).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open
        preflight = c.options(
            "/api/v1/search",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        other = c.options(
            "/api/v1/search",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_files_no_product_uses_are_swept(
    client: TestClient,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
    api_rows: list[dict[str, str]],
) -> None:
    assert isinstance(client.app, FastAPI)
    svc: Services = client.app.state.services
    in_catalog = {r["id"] for r in api_rows}
    fresh = [r for r in dataset_rows if r["id"] not in in_catalog][-2:]
    a, b = ((dataset / r["file"]).read_bytes() for r in fresh[:2])
    for sku, photo in (("sweep-1", a), ("sweep-2", a), ("sweep-3", b)):
        r = client.post(
            "/api/v1/products", data={"sku": sku}, files={"image": ("p.jpg", photo)}, headers=AUTH
        )
        assert r.status_code == 201, r.text
        assert client.get(f"/api/v1/images/{sku}?size=thumb").status_code == 200

    def files(photo: bytes) -> list[Path]:
        sha = hashlib.sha256(photo).hexdigest()
        return sorted(svc.settings.home.glob(f"*/{sha[:2]}/{sha}*"))

    assert len(files(a)) == 2 and len(files(b)) == 2  # the upload and its thumbnail
    for sku in ("sweep-1", "sweep-3"):
        assert client.delete(f"/api/v1/products/{sku}", headers=AUTH).status_code == 204
    assert svc.sweep_files() == 0  # young files stay: an upload is stored before its row
    assert svc.sweep_files(min_age_s=0) >= 2
    assert len(files(a)) == 2  # sweep-2 still shows photo a
    assert files(b) == []
    assert client.get("/api/v1/images/sweep-2?size=thumb").status_code == 200
    assert client.delete("/api/v1/products/sweep-2", headers=AUTH).status_code == 204
