"""Images with caching headers, path traversal, health and metrics."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

pytestmark = pytest.mark.dataset


def test_original_and_thumbnail_with_etag(
    client: TestClient, api_rows: list[dict[str, str]]
) -> None:
    sku = api_rows[5]["id"]
    r = client.get(f"/api/v1/images/{sku}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "max-age" in r.headers["cache-control"] and r.headers["etag"]
    again = client.get(f"/api/v1/images/{sku}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    thumb = client.get(f"/api/v1/images/{sku}", params={"size": "thumb"})
    assert thumb.status_code == 200 and thumb.headers["etag"] != r.headers["etag"]
    assert Image.open(io.BytesIO(thumb.content)).size == (256, 256)
    assert client.get(f"/api/v1/images/{sku}", params={"size": "huge"}).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/images/../../../../etc/passwd",
        "/api/v1/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/images//etc/passwd",
        "/api/v1/products/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_path_traversal_reaches_no_file(client: TestClient, path: str) -> None:
    r = client.get(path)
    # A 404, or (for paths the client normalised out of /api) the front end's page.
    assert r.status_code == 404 or r.text.lstrip().lower().startswith("<!doctype html>")
    assert b"root:" not in r.content


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "model": "ok", "index": "ok"}
    client.get("/api/v1/categories")
    text = client.get("/metrics").text
    assert "lookalike_request_seconds_bucket" in text and "lookalike_index_products" in text
    assert 'route="/api/v1/categories"' in text


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/search" in spec["paths"]
    body = spec["paths"]["/api/v1/search"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert client.get("/docs").status_code == 200
    # The docs' own routes are counted under their paths, not as "unmatched".
    text = client.get("/metrics").text
    assert 'route="/docs"' in text and 'route="/api/v1/openapi.json"' in text
