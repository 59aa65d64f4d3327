"""Ray ingest on a real local cluster (a head node and one worker node, as processes on
this machine): the same vectors, local features, idempotency and per-file errors as a
local ingest, through the CLI with its progress bar."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.common import LocalRayCluster
from lookalike.cli import app
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from lookalike.matching.features import FEATURE_VERSION
from tests.conftest import write_catalog

pytestmark = pytest.mark.dataset

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[dev]')")
from lookalike.ingest.ray_ingest import (  # noqa: E402  (after the skip above)
    RayConnectionError,
    RayEmbedding,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayCluster]:
    """Head node (no CPUs) + one worker node of 2 CPUs: about 10 s to start, 3 s to stop."""
    # Ray's socket paths must stay under 107 bytes: a short temp folder, not pytest's.
    temp = Path("/tmp") / f"lookalike-ray-{tmp_path_factory.getbasetemp().name}"
    local = LocalRayCluster(cpus=2, worker_nodes=1, temp_dir=temp)
    try:
        local.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"cannot start a local Ray cluster here: {exc}")
    yield local
    local.stop()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def catalog(tmp_path: Path, dataset: Path, dataset_rows: list[dict[str, str]]) -> Path:
    """30 dev images plus one file that is not an image."""
    path = write_catalog(tmp_path / "catalog.csv", dataset, dataset_rows[:30])
    (tmp_path / "broken.jpg").write_text("this is not a photo")
    with path.open("a") as f:
        f.write(f"broken,{tmp_path / 'broken.jpg'},Broken,Tshirts,1,EUR,Blue\n")
    return path


def test_ray_ingest_matches_local_ingest(
    cluster: LocalRayCluster,
    catalog: Path,
    tmp_path: Path,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = read_catalog(catalog).records
    local = Engine(Settings(home=tmp_path / "local", model_cache=model_cache, _env_file=None))
    expected = local.ingest(records)
    assert expected.added == 30 and [f.sku for f in expected.failed] == ["broken"]

    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "ray"))
    monkeypatch.setenv("LOOKALIKE_MODEL_CACHE", str(model_cache))
    monkeypatch.setenv("LOOKALIKE_BATCH_SIZE", "8")  # 4 batches over 2 workers
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(catalog), "--ray", cluster.address])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"embedding on Ray at {cluster.address} with 2 workers" in out
    assert "ingest" in out and "31/31" in out  # the progress bar, as a local run shows it
    assert "added" in out and "30" in out
    reason = expected.failed[0].reason
    assert f"(sku broken): {reason}" in " ".join(out.split())  # the local run's reason

    ray_engine = Engine(Settings(home=tmp_path / "ray", model_cache=model_cache, _env_file=None))
    version = local.active_model_version
    assert version is not None and ray_engine.active_model_version == version
    for record in records[:30]:
        mine, theirs = local.product(record.sku), ray_engine.product(record.sku)
        assert mine is not None and theirs is not None
        assert theirs.image_sha256 == mine.image_sha256
        assert (theirs.image_width, theirs.image_height) == (mine.image_width, mine.image_height)
        assert mine.id is not None and theirs.id is not None
        a = local.stored_vector(mine.id, version)
        b = ray_engine.stored_vector(theirs.id, version)
        assert a is not None and b is not None
        np.testing.assert_allclose(b, a, atol=1e-5)
        fa = local.store.local_features([mine.id], FEATURE_VERSION)[mine.id]
        fb = ray_engine.store.local_features([theirs.id], FEATURE_VERSION)[theirs.id]
        assert fa == fb
    assert ray_engine.product("broken") is None
    assert ray_engine.check_index()["consistent"] and len(ray_engine.index) == 30
    ray_engine.close()
    local.close()

    again = runner.invoke(app, ["ingest", str(catalog), "--ray", cluster.address])
    assert again.exit_code == 0, again.output
    assert "nothing to embed (30 unchanged)" in again.output


def test_workers_run_on_the_worker_node_without_torch(
    cluster: LocalRayCluster, catalog: Path, settings: Settings, database_url: str
) -> None:
    """On SQLite and on PostgreSQL: Ray embeds, the store and index path is the same."""
    settings = settings.model_copy(update={"database_url": database_url})
    engine = Engine(settings)
    with RayEmbedding(cluster.address, settings, workers=2, batch_size=8) as ray_embed:
        summary = engine.ingest(read_catalog(catalog).records, embed=ray_embed)
        info = ray_embed.worker_info
    assert summary.added == 30 and summary.embedded == 30
    assert [f.sku for f in summary.failed] == ["broken"]
    assert len({w["pid"] for w in info}) == 2
    assert not any(w["torch"] for w in info)  # the ONNX runtime path, no PyTorch
    assert engine.check_index()["consistent"] and len(engine.index) == 30
    engine.close()


def test_an_address_that_does_not_answer_is_a_clear_error(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(RayConnectionError, match=rf"--ray 127.0.0.1:{port}: no Ray head"):
        RayEmbedding(f"127.0.0.1:{port}", settings).connect()
    assert time.monotonic() - start < 10
