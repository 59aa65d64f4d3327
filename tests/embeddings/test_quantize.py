"""The int8 trunk: made once from the float one, named by its recipe, and embedding as
the float trunk does."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image
from skimage import data as skdata

from lookalike.config import Settings
from lookalike.embeddings import EmbedderConfig, create_embedder
from lookalike.embeddings.embedder import model_file
from lookalike.embeddings.quantize import calibration_inputs
from lookalike.images.loader import LoadedImage
from lookalike.models import DEFAULT_MODEL, SPECS

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field")


def _embed(settings: Settings, model: str) -> np.ndarray:
    config = EmbedderConfig("crop", "gap", 0.0).with_model(model, settings.model_dir)
    embedder = create_embedder(settings, config)
    images = []
    for name in PHOTOS:
        pil = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        images.append(LoadedImage(pil, "0" * 64, "PNG", pil.width, pil.height))
    return embedder.embed_images(images)


def test_the_int8_trunk_embeds_as_the_float_one(settings: Settings) -> None:
    float_vectors, int8_vectors = _embed(settings, "lite0"), _embed(settings, "lite0-int8")
    # Each photo's two vectors are nearly the same (measured: cosine 0.982 to 0.998)...
    assert np.all(np.sum(float_vectors * int8_vectors, axis=1) > 0.97)
    # ...and every pair of photos is about as alike under one as under the other
    # (measured: within 0.017), so products further apart than that keep their order.
    # On a CPU where int8 saturates (ONNX Runtime warns of it without VNNI) this fails.
    pairs = list(itertools.combinations(range(len(PHOTOS)), 2))
    alike_float = [float(float_vectors[i] @ float_vectors[j]) for i, j in pairs]
    alike_int8 = [float(int8_vectors[i] @ int8_vectors[j]) for i, j in pairs]
    assert np.max(np.abs(np.subtract(alike_float, alike_int8))) < 0.03


def test_the_int8_model_is_the_default_and_named_by_its_recipe(settings: Settings) -> None:
    assert DEFAULT_MODEL == "lite0-int8" and SPECS[DEFAULT_MODEL].float_spec is SPECS["lite0"]
    config = EmbedderConfig()
    assert config.version == "lite0-int8@57934424-q1/trim-gap-lab0.09"
    assert EmbedderConfig.from_version(config.version, settings.model_dir) == config
    # Made once, then found: a second call does not make it again.
    path = model_file(config, settings.model_dir)
    assert path is not None and path.name == "lite0-int8-trunk-579344248a93-opset17-q1.onnx"
    made = path.stat().st_mtime_ns
    assert model_file(config, settings.model_dir) == path and path.stat().st_mtime_ns == made
    # The float model is another version: catalogs embedded with it keep it.
    assert EmbedderConfig().with_model("lite0", settings.model_dir).version.startswith("lite0@")


def test_calibration_pictures_are_the_same_everywhere() -> None:
    spec = SPECS[DEFAULT_MODEL]
    first, again = list(calibration_inputs(spec)), list(calibration_inputs(spec))
    assert len(first) == 100 and all(a.shape == (1, 3, 224, 224) for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
