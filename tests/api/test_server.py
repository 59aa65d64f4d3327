"""A real uvicorn process on loopback, searched with a real dev photo."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lookalike.config import Settings
from tests.server import running_server

pytestmark = pytest.mark.dataset


def test_uvicorn_process_serves_search(api_settings: Settings, dataset: Path, api_rows) -> None:  # type: ignore[no-untyped-def]
    env = {
        "LOOKALIKE_HOME": str(api_settings.home),
        "LOOKALIKE_MODEL_CACHE": str(api_settings.model_cache),
    }
    with running_server(env) as base:
        row = api_rows[7]
        r = httpx.post(
            f"{base}/api/v1/search",
            files={"image": ("q.jpg", (dataset / row["file"]).read_bytes(), "image/jpeg")},
            data={"k": "3"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["product"]["sku"] == row["id"]
        # Writes are refused: this server has no API key.
        assert httpx.delete(f"{base}/api/v1/products/{row['id']}", timeout=10).status_code == 403
