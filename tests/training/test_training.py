"""A tiny real training run: a loadable, activatable version; the swap under searches."""

from __future__ import annotations

import csv
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.config import Settings
from lookalike.embeddings.aspects.colour import LAB_DIM
from lookalike.engine import Engine
from lookalike.evaluation.report import resolve_config
from lookalike.ingest.readers import read_catalog
from lookalike.models import ModelRegistry
from lookalike.training.trainer import TrainOptions, split, train

pytestmark = pytest.mark.dataset


def test_split_is_stratified_seeded_and_disjoint() -> None:
    cats = ["a"] * 10 + ["b"] * 5 + ["c"] * 2
    train_idx, val_idx = split(cats, 0.2, seed=3)
    assert not set(train_idx) & set(val_idx) and len(train_idx) + len(val_idx) == 17
    assert Counter(cats[i] for i in val_idx) == {"a": 2, "b": 1}  # "c" too small: train only
    assert split(cats, 0.2, seed=3) == (train_idx, val_idx)


@pytest.fixture
def small_catalog(tmp_path: Path, dataset: Path, dataset_rows: list[dict[str, str]]) -> Path:
    with (dataset / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    picked = [
        r
        for c in ("Watches", "Sunglasses", "Casual Shoes", "Handbags")
        for r in [x for x in rows if x["category"] == c][:12]
    ]
    path = tmp_path / "small.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image", "category", "color"])
        for r in picked:
            w.writerow([r["id"], dataset / r["file"], r["category"], r["color"]])
    return path


def test_tiny_training_run_gives_an_activatable_version(
    settings: Settings, small_catalog: Path, dataset: Path
) -> None:
    engine = Engine(settings)
    engine.ingest(read_catalog(small_catalog).records)
    options = TrainOptions(epochs=1, embedding_dim=32, views=2, batch_size=16, photo_views=2)
    messages: list[str] = []
    model = train(engine, options, progress=messages.append)

    assert (model.folder / "model.onnx").exists() and (model.folder / "head.pt").exists()
    assert Image.open(model.folder / "curve.png").width > 400
    card = model.card
    assert card["embedding_dim"] == 32 and card["parameters"]["epochs"] == 1
    assert card["data"]["validation_products"] == len(card["data"]["validation_skus"]) > 0
    assert card["objective"] == "both" and card["data"]["photo_views_per_product"] == 2
    assert set(card["metrics"]["validation_finetuned"]) >= {
        "precision@10",
        "map@r",
        "instance_r@1",  # held-out photo views of training products
        "instance_r@1_unseen",  # ... and of the validation products
    }
    assert any("epoch 1/1" in m for m in messages)
    registry = ModelRegistry(settings.model_dir)
    assert [m.version for m in registry.list()] == [model.version]

    config = resolve_config(engine, model.version)
    assert config.network.name == model.version and config.dim == 32 + LAB_DIM
    assert model.base == "lite0" and card["base_model"].startswith("lite0@")
    query = Path(engine.store.all_products()[0].image_path)

    results: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                hits = engine.search_files([query], k=3)[0].hits
                results.append(len(hits))
            except BaseException as exc:  # any failure fails the test
                failures.append(exc)
                return

    searcher = threading.Thread(target=search_loop)
    searcher.start()
    try:
        summary = engine.reembed(config=config)
    finally:
        stop.set()
        searcher.join()
    assert not failures, failures
    assert results and all(n == 3 for n in results)  # searches kept working during the swap
    assert summary.embedded == 48 and not summary.failed
    assert engine.model_config.version == config.version
    assert list(engine.store.stats()["embeddings"]) == [config.version]  # never mixed
    hits = engine.search_files([query], k=3)[0].hits
    assert hits[0].score > 0.99  # the query product finds itself with the new model
    vec = engine.store.vector(hits[0].product.id or 0, config.version)
    assert (
        vec is not None
        and vec.shape == (32 + LAB_DIM,)
        and np.isclose(np.linalg.norm(vec), 1, atol=1e-4)
    )
    engine.close()


def test_cuda_request_without_gpu_is_a_clear_error(settings: Settings, small_catalog: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from lookalike.errors import CatalogFileError

    engine = Engine(settings)
    engine.ingest(read_catalog(small_catalog).records)
    with pytest.raises(CatalogFileError, match="no CUDA device"):
        train(engine, TrainOptions(epochs=1, device="cuda"))
    engine.close()
