"""The API works unchanged on the other product-index backends (FAISS, the default, is
what every other API test runs on): a photo search with a filter, similar products, a
delete the next search honours, the index check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from tests.api.conftest import API_KEY, AUTH
from tests.conftest import write_catalog


@pytest.mark.parametrize("backend", ["annoy", "milvus"])
def test_the_api_answers_on_another_backend(
    backend: str,
    tmp_path: Path,
    model_cache: Path,
    dataset: Path,
    api_rows: list[dict[str, str]],
) -> None:
    rows = api_rows[:24]
    catalog = write_catalog(tmp_path / "catalog.csv", dataset, rows, first_price=5)
    settings = Settings(
        home=tmp_path / "home",
        model_cache=model_cache,
        api_keys=API_KEY,
        index_backend=backend,
        _env_file=None,
    )
    engine = Engine(settings)
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    row = rows[3]  # price 8
    photo = (dataset / row["file"]).read_bytes()
    with TestClient(create_app(settings)) as client:

        def search(**form: str) -> list[dict[str, Any]]:
            r = client.post(
                "/api/v1/search",
                files={"image": ("q.jpg", photo, "image/jpeg")},
                data={"k": "5", **form},
            )
            assert r.status_code == 200, r.text
            results: list[dict[str, Any]] = r.json()["results"]
            return results

        def skus(results: list[dict[str, Any]]) -> list[str]:
            return [x["product"]["sku"] for x in results]

        first = search()[0]
        assert first["product"]["sku"] == row["id"] and first["match"] == "exact"
        cheap = search(max_price="7")
        assert len(cheap) == 3 and row["id"] not in skus(cheap)  # prices 5, 6, 7
        r = client.get(f"/api/v1/products/{row['id']}/similar", params={"k": 5})
        assert r.status_code == 200, r.text
        assert len(r.json()) == 5 and row["id"] not in skus(r.json())
        assert client.delete(f"/api/v1/products/{row['id']}", headers=AUTH).status_code == 204
        assert row["id"] not in skus(search())
    # The server's writes reached the backend's index as the database has them.
    engine = Engine(settings)
    try:
        report = engine.check_index()
        assert report["consistent"] and report["local"]["consistent"], report
        assert report["backend"] == backend and report["index_count"] == len(rows) - 1
    finally:
        engine.close()
