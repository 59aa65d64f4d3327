"""Text no database column can hold (a NUL, more than the column's length) gets the same
answer on SQLite and PostgreSQL (issue #12 D3, D4): on PostgreSQL it used to be a 500 or a
failed import, on SQLite a 200."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from tests.api.conftest import API_KEY, AUTH
from tests.api.test_imports import _wait, _zip
from tests.conftest import write_catalog

pytestmark = pytest.mark.dataset
PROBLEM = "application/problem+json"


@pytest.fixture
def db_client(
    settings: Settings, database_url: str, dataset: Path, api_rows: list[dict[str, str]]
) -> Iterator[TestClient]:
    """An app over three products, on each database."""
    settings = settings.model_copy(update={"database_url": database_url, "api_keys": API_KEY})
    settings.home.mkdir(parents=True, exist_ok=True)
    catalog = write_catalog(settings.home / "catalog.csv", dataset, api_rows[:3])
    engine = Engine(settings)
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    with TestClient(create_app(settings)) as c:
        yield c


def test_nul_in_a_lookup_finds_nothing(
    db_client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    client = db_client
    for path in (
        "/api/v1/products/%00",
        "/api/v1/products/a%00b",
        "/api/v1/images/%00",
        "/api/v1/images/%00?size=thumb",
        "/api/v1/products/%00/similar",
        "/api/v1/imports/%00",
    ):
        r = client.get(path)
        assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM), (path, r.text)
    assert client.delete("/api/v1/products/%00", headers=AUTH).status_code == 404
    r = client.put("/api/v1/products/%00", data={"title": "x"}, headers=AUTH)
    assert r.status_code == 404
    for params in ({"category": "\x00"}, {"category": "Shoes\x00"}, {"q": "\x00"}):
        r = client.get("/api/v1/products", params=params)
        assert r.status_code == 200 and r.json()["total"] == 0, (params, r.text)
    # A search filtered on a category no product can have says so (as for any unknown
    # category), on both databases.
    sku = api_rows[0]["id"]
    r = client.get(f"/api/v1/products/{sku}/similar", params={"category": "\x00"})
    assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM), r.text
    photo = (dataset / api_rows[0]["file"]).read_bytes()
    r = client.post("/api/v1/search", files={"image": ("q.jpg", photo)}, data={"category": "\x00"})
    assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM), r.text
    r = client.post("/api/v1/search", files={"image": ("q.jpg", photo)})
    assert r.json()["results"][0]["product"]["sku"] == sku  # the unfiltered search finds it


def test_nul_in_written_text_is_refused(
    db_client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    client = db_client
    photo = {"image": ("a.jpg", (dataset / api_rows[5]["file"]).read_bytes())}
    for fields in (
        {"sku": "a\x00b"},
        {"sku": "nul-title", "title": "a\x00b"},
        {"sku": "nul-category", "category": "\x00"},
        {"sku": "nul-currency", "currency": "E\x00"},
        {"sku": "nul-url", "url": "https://shop/\x00"},
    ):
        r = client.post("/api/v1/products", data=fields, files=photo, headers=AUTH)
        assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM), (fields, r.text)
        assert "NUL" in r.json()["detail"] and r.json()["errors"]
    sku = api_rows[0]["id"]
    r = client.put(f"/api/v1/products/{sku}", data={"title": "x\x00"}, headers=AUTH)
    assert r.status_code == 422, r.text
    assert client.get(f"/api/v1/products/{sku}").json()["title"] == api_rows[0]["title"]
    assert client.get("/api/v1/products").json()["total"] == 3  # nothing half-written


def test_an_import_reports_rows_the_database_cannot_hold(
    db_client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    client = db_client
    good = api_rows[6:8]
    images = _zip({f"{r['id']}.jpg": (dataset / r["file"]).read_bytes() for r in good})
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["sku", "image", "category", "currency"])
    for row in good:
        w.writerow([f"imp-{row['id']}", f"{row['id']}.jpg", row["category"], "EUR"])
    image = f"{good[0]['id']}.jpg"
    w.writerow(["s" * 256, image, "", ""])
    w.writerow(["long-category", image, "c" * 256, ""])
    w.writerow(["long-currency", image, "", "E" * 9])
    w.writerow(["nul\x00sku", image, "", ""])
    r = client.post(
        "/api/v1/imports",
        files={"catalog": ("c.csv", out.getvalue().encode()), "images": ("i.zip", images)},
        headers=AUTH,
    )
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["id"])
    assert (job["status"], job["added"], job["total"]) == ("done", 2, 6), job
    reasons = [e["reason"] for e in job["errors"]]
    assert sum("characters long" in x for x in reasons) == 3, reasons
    assert sum("NUL" in x for x in reasons) == 1, reasons
    assert client.get(f"/api/v1/products/imp-{good[0]['id']}").status_code == 200
