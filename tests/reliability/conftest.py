"""A real server (``python app.py`` on loopback) over 20 dev photos, shared by the
reliability tests; short runs of the scripts in benchmarks/reliability/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.common import Server
from benchmarks.reliability.common import Home, dev_photos, ingest, running_server

CATALOG = 20


@pytest.fixture(scope="package")
def served_home(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, dataset: Path) -> Home:
    home = Home(
        tmp_path_factory.mktemp("reliability") / "home",
        extra={"LOOKALIKE_MODEL_CACHE": str(model_cache)},
    )
    ingest(home, dev_photos(CATALOG))
    return home


@pytest.fixture(scope="package")
def served(served_home: Home) -> Iterator[Server]:
    with running_server(served_home, served_home.path.parent / "server.log") as server:
        yield server


@pytest.fixture
def fresh_home(tmp_path: Path, model_cache: Path, dataset: Path) -> Home:
    """An empty home on SQLite (for a test of its own processes)."""
    return Home(tmp_path / "home", extra={"LOOKALIKE_MODEL_CACHE": str(model_cache)})
