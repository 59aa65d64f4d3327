"""Instance training on a catalog without categories (small generated images)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.config import Settings
from lookalike.embeddings import EmbedderConfig, create_embedder
from lookalike.embeddings.aspects.colour import LAB_DIM
from lookalike.engine import Engine
from lookalike.errors import CatalogFileError
from lookalike.images.loader import load_image
from lookalike.ingest.readers import read_catalog
from lookalike.models import get_spec
from lookalike.training.trainer import TrainOptions, train


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A model folder of its own: the shared one's registry must hold only the version
    test_training registers."""
    return Settings(home=tmp_path / "home", model_cache=tmp_path / "models", _env_file=None)


@pytest.fixture
def covers(tmp_path: Path) -> Path:
    """Eight 'covers': coloured stripes and a disc, no category column."""
    rng = np.random.default_rng(0)
    path = tmp_path / "covers.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image"])
        for n in range(8):
            img = np.zeros((160, 120, 3), np.uint8)
            for band in range(0, 160, 20):
                img[band : band + 20] = rng.integers(0, 256, 3)
            yy, xx = np.mgrid[:160, :120]
            img[(yy - 40 - 10 * n) ** 2 + (xx - 60) ** 2 < 400] = (255, 255, 0)
            file = tmp_path / f"cover{n}.png"
            Image.fromarray(img).save(file)
            w.writerow([f"cover-{n}", file])
    return path


def test_without_categories_both_trains_instances_and_records_it(
    settings: Settings, covers: Path
) -> None:
    engine = Engine(settings)
    engine.ingest(read_catalog(covers).records)
    messages: list[str] = []
    options = TrainOptions(epochs=2, embedding_dim=16, batch_size=16, views=1, photo_views=3)
    model = train(engine, options, progress=messages.append)
    card = model.card

    assert card["objective"] == "instance" and card["parameters"]["objective"] == "both"
    assert card["data"]["instance_classes"] == 8 and card["data"]["classes"] == []
    assert card["data"]["photo_views_per_product"] == 3
    assert card["data"]["validation_skus"] == []  # no categories: every product trains
    before, after = (
        card["metrics"]["validation_pretrained"],
        card["metrics"]["validation_finetuned"],
    )
    assert set(after) == {"instance_r@1"} and 0 <= after["instance_r@1"] <= 1
    assert set(before) == {"instance_r@1"}
    assert [h["epoch"] for h in card["metrics"]["history"]] == [1, 2]
    assert Image.open(model.folder / "curve.png").width > 400
    assert any("instance objective only" in m for m in messages)
    assert any("held-out photo views: 8/8 products" in m for m in messages)
    engine.close()


def test_fine_tunes_lite2_and_records_the_base(settings: Settings, covers: Path) -> None:
    engine = Engine(settings)  # the catalog is on lite0; the base is asked for
    engine.ingest(read_catalog(covers).records)
    options = TrainOptions(
        epochs=1, embedding_dim=16, batch_size=16, views=1, photo_views=1, base="lite2"
    )
    model = train(engine, options)

    assert model.base == "lite2" and model.card["parameters"]["base"] == "lite2"
    assert model.card["base_model"] == f"{get_spec('lite2').version}/{EmbedderConfig().name}"
    config = EmbedderConfig.resolve(model.version, settings.model_dir)
    assert config.network.spec.input_size == 260 and config.dim == 16 + LAB_DIM
    embedder = create_embedder(settings, config)  # the exported network takes 260 px
    image = load_image((covers.parent / "cover0.png").read_bytes(), "cover0", max_pixels=10**6)
    assert embedder.embed_images([image]).shape == (1, config.dim)
    engine.close()


def test_category_objective_needs_categories(settings: Settings, covers: Path) -> None:
    engine = Engine(settings)
    engine.ingest(read_catalog(covers).records)
    with pytest.raises(CatalogFileError, match="at least two categories"):
        train(engine, TrainOptions(epochs=1, objective="category"))
    engine.close()


def test_build_trains_the_tail_and_freezes_the_front() -> None:
    from lookalike.training.network import build

    front, tail = build(get_spec("lite0"), 16, unfrozen_blocks=1)
    trainable = {n.split(".")[0] for n, p in tail.named_parameters() if p.requires_grad}
    assert trainable == {"blocks", "conv_head", "bn", "projection"}
    net = front.net
    frozen = [net._conv_stem, net._bn0, *list(net._blocks)[: front.cut]]
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
