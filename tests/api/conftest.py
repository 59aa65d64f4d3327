"""An API app over a small real catalog (60 dev photos), shared by the API tests."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from tests.conftest import write_catalog

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="package")
def api_rows(dataset_rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return dataset_rows[::3][:60]


@pytest.fixture(scope="package")
def api_settings(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    api_rows: list[dict[str, str]],
) -> Settings:
    home = tmp_path_factory.mktemp("api-home")
    catalog = write_catalog(home / "catalog.csv", dataset, api_rows, first_price=5)
    settings = Settings(home=home, model_cache=model_cache, api_keys=API_KEY, _env_file=None)
    engine = Engine(settings)
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    return settings


@pytest.fixture(scope="package")
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as c:
        yield c


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def oversized_body(head: bytes, limit: int) -> Iterator[bytes]:
    """A multipart body sent chunked (no Content-Length): ``head`` then 1 MiB blocks
    until well past ``limit`` bytes."""
    yield head
    for _ in range(limit // (1 << 20) + 2):
        yield b"\xff" * (1 << 20)
