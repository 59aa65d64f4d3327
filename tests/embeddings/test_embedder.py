from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from lookalike.config import Settings
from lookalike.embeddings import EmbedderConfig, create_embedder
from lookalike.embeddings.aspects.colour import DIM as COLOR_DIM
from lookalike.embeddings.aspects.colour import LAB_DIM, color_descriptor, lab_descriptor
from lookalike.embeddings.embedder import TorchEmbedder
from lookalike.images.loader import LoadedImage


def _img(arr: np.ndarray) -> LoadedImage:
    pil = Image.fromarray(arr).convert("RGB")
    return LoadedImage(pil, "0" * 64, "PNG", pil.width, pil.height)


def test_config_names_round_trip() -> None:
    for spec in (
        "trim-gap-c0.1",
        "trim-gap-lab0.1",
        "trim-gap-lab0.1-t0.05",
        "crop-gem-c0",
        "pad-gap-c0.5",
        "colorhist",
    ):
        assert EmbedderConfig.parse(spec).name == spec
    with pytest.raises(ValueError, match="exceed 1"):
        EmbedderConfig.parse("trim-gap-lab0.6-t0.5")
    with pytest.raises(ValueError, match="bad embedder spec"):
        EmbedderConfig.parse("square-max")


def test_version_names_weights_and_config() -> None:
    v = EmbedderConfig("crop", "gem", 0.2).version
    assert v.startswith("lite0-int8@") and v.endswith("-q1/crop-gem-lab0.2")


@pytest.mark.parametrize("model", ["lite0", "lite2"])
def test_onnx_session_matches_pytorch(settings: Settings, model: str) -> None:
    config = EmbedderConfig("crop", "gap", 0.0).with_model(model, settings.model_dir)
    onnx = create_embedder(settings, config)
    torch_eager = TorchEmbedder(config)
    prepared = [onnx.prepare(_img(a)) for a in (skdata.chelsea(), skdata.coffee())]
    a, b = onnx.embed_prepared(prepared), torch_eager.embed_prepared(prepared)
    assert a.shape == (2, 1280)
    assert np.allclose(a, b, atol=1e-4)


def test_embeddings_are_unit_length_and_deterministic(settings: Settings) -> None:
    emb = create_embedder(settings)
    images = [_img(skdata.chelsea()), _img(skdata.astronaut())]
    v1, v2 = emb.embed_images(images), emb.embed_images(images)
    assert v1.shape == (2, emb.dim) == (2, 1280 + LAB_DIM)
    assert np.allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-5)
    assert np.allclose(v1, v2)


def test_same_photo_closer_than_other_photo(settings: Settings) -> None:
    emb = create_embedder(settings)
    cat = skdata.chelsea()
    flipped_crop = np.ascontiguousarray(cat[10:-10, ::-1])
    v = emb.embed_images([_img(cat), _img(flipped_crop), _img(skdata.rocket())])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_color_descriptor_separates_colours_and_ignores_background() -> None:
    def product(rgb: tuple[int, int, int]) -> np.ndarray:
        sq = np.full((64, 64, 3), 255, np.uint8)
        sq[16:48, 16:48] = rgb
        return sq

    red, red_small, blue = product((200, 20, 20)), product((200, 20, 20)), product((20, 20, 200))
    red_small[:] = 255
    red_small[24:40, 24:40] = (200, 20, 20)
    for describe in (color_descriptor, lab_descriptor):
        d_red, d_small, d_blue = (describe(x) for x in (red, red_small, blue))
        assert np.isclose(np.linalg.norm(d_red), 1.0)
        assert d_red @ d_small > 0.99  # same colour, background excluded, size irrelevant
        assert d_red @ d_blue < 0.05


def test_lab_bins_are_soft() -> None:
    """Two nearly equal colours on either side of a bin edge stay alike (hard bins would
    put them in different bins: similarity 0)."""
    a, b = (
        np.full((64, 64, 3), (120, 60, 60), np.uint8),
        np.full((64, 64, 3), (126, 60, 60), np.uint8),
    )
    assert lab_descriptor(a) @ lab_descriptor(b) > 0.9


def test_texture_part_comes_from_the_same_model_call(settings: Settings) -> None:
    config = EmbedderConfig.parse("trim-gap-lab0.1-t0.1")
    emb = create_embedder(settings, config)
    v = emb.embed_images([_img(skdata.chelsea()), _img(skdata.brick())])
    assert v.shape == (2, 1280 + LAB_DIM + 1280) == (2, config.dim)
    texture = config.layout.part(v, "texture")
    assert texture is not None and np.allclose(np.linalg.norm(texture, axis=1), 1.0, atol=1e-5)


def test_colour_only_embedder_needs_no_cnn(settings: Settings) -> None:
    emb = create_embedder(settings, EmbedderConfig.parse("colorhist"))
    v = emb.embed_images([_img(skdata.coffee())])
    assert v.shape == (1, COLOR_DIM)
