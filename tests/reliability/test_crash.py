"""kill -9 of ingest, of the API server during writes, and of ``models activate``: after
the restart nothing acknowledged is lost or doubled, the index agrees, search works."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.reliability.common import Home
from benchmarks.reliability.crash import activate_kills, ingest_kills, server_kills
from lookalike.embeddings.embedder import EmbedderConfig

pytestmark = pytest.mark.dataset


def _home(tmp_path: Path, model_cache: Path, url: str) -> Home:
    sqlite = url.startswith("sqlite")
    return Home(
        tmp_path / "home",
        None if sqlite else url,
        extra={"LOOKALIKE_MODEL_CACHE": str(model_cache)},
    )


def test_kill_ingest(tmp_path: Path, model_cache: Path, dataset: Path, database_url: str) -> None:
    home = _home(tmp_path, model_cache, database_url)
    result = ingest_kills(home, 24, 1, random.Random(1))
    assert result["problems"] == []


def test_kill_server_during_writes(
    tmp_path: Path, model_cache: Path, dataset: Path, database_url: str
) -> None:
    home = _home(tmp_path, model_cache, database_url)
    result = server_kills(home, 1, random.Random(2), tmp_path, seed_size=8, write_s=(1, 2))
    assert result["problems"] == []
    assert result["acknowledged_per_round"] != [0]


def test_kill_models_activate(fresh_home: Home) -> None:
    # Two configurations of the default model: a full re-embed, without a second export.
    targets = ("trim-gap-lab0.2", EmbedderConfig().name)
    result = activate_kills(fresh_home, 24, 1, random.Random(3), targets)
    assert result["problems"] == []
