"""Per-query aspect weights: the weighted inner product, errors, explanations."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embeddings.aspects import Aspect, AspectLayout, colour
from lookalike.embeddings.embedder import EmbedderConfig
from lookalike.errors import AspectError
from lookalike.search.aspects import (
    AspectWeights,
    explain,
    needs_exhaustive,
    palette,
    reweighs,
    similarities,
    weighted_query,
)
from lookalike.search.searcher import SearchHit
from lookalike.store.catalog import ProductData

LAYOUT = AspectLayout.of(
    {"shape": 0.85, "colour": 0.1, "texture": 0.05}, {"shape": 16, "colour": 8, "texture": 4}
)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=n)
    return v / np.linalg.norm(v)


def _stored(rng: np.random.Generator) -> tuple[np.ndarray, dict[Aspect, np.ndarray]]:
    """A vector laid out as the embedder stores it, and its unit parts."""
    parts = {p.aspect: _unit(rng, p.stop - p.start) for p in LAYOUT.parts}
    vector = np.concatenate([np.sqrt(p.share) * parts[p.aspect] for p in LAYOUT.parts])
    return vector.astype(np.float32), parts


@pytest.mark.parametrize(
    "weights",
    [
        AspectWeights(shape=1, colour=0, texture=0),
        AspectWeights(colour=1, shape=0, texture=0),
        AspectWeights(shape=0.3, colour=0.5, texture=0.2),
        AspectWeights(texture=1),  # the others keep their stored shares
    ],
)
def test_weighted_inner_product_is_the_weighted_sum_of_aspect_cosines(
    weights: AspectWeights,
) -> None:
    rng = np.random.default_rng(1)
    query, q_parts = _stored(rng)
    other, o_parts = _stored(rng)
    resolved = weights.resolve(LAYOUT)
    expected = sum(w * float(q_parts[a] @ o_parts[a]) for a, w in resolved.items())
    assert float(weighted_query(query, LAYOUT, weights) @ other) == pytest.approx(
        expected, abs=1e-5
    )
    assert sum(resolved.values()) == pytest.approx(1.0)


def test_no_weights_leave_the_query_as_it_is() -> None:
    query, _ = _stored(np.random.default_rng(2))
    assert weighted_query(query, LAYOUT, AspectWeights()) is query
    # The default blend given explicitly is the same ranking as none at all.
    same = weighted_query(query, LAYOUT, AspectWeights(0.85, 0.1, 0.05))
    np.testing.assert_allclose(same, query, atol=1e-6)


def test_shape_only_ranks_by_shape_alone() -> None:
    rng = np.random.default_rng(3)
    query, q = _stored(rng)
    # Same shape, opposite colour vs. other shape, same colour.
    twin = np.concatenate(
        [np.sqrt(0.85) * q["shape"], -np.sqrt(0.1) * q["colour"], np.sqrt(0.05) * q["texture"]]
    )
    stranger, _ = _stored(rng)
    stranger[16:24] = np.sqrt(0.1) * q["colour"]
    for weights, first in ((AspectWeights(1, 0, 0), "twin"), (AspectWeights(0, 1, 0), "stranger")):
        w = weighted_query(query, LAYOUT, weights)
        ranked = "twin" if w @ twin > w @ stranger else "stranger"
        assert ranked == first


def test_unusable_weights_are_refused() -> None:
    with pytest.raises(AspectError, match="above 0"):
        AspectWeights(0, 0, 0).resolve(LAYOUT)
    no_texture = EmbedderConfig().layout
    with pytest.raises(AspectError, match="no texture part"):
        AspectWeights(texture=0.5).resolve(no_texture)
    # A zero weight on an aspect the catalog lacks asks for nothing it lacks.
    resolved = AspectWeights(shape=1, texture=0).resolve(no_texture)
    assert resolved == pytest.approx({"shape": 1 / 1.09, "colour": 0.09 / 1.09})


def test_similarities_and_palette_of_stored_vectors() -> None:
    rng = np.random.default_rng(4)
    query, q = _stored(rng)
    other, o = _stored(rng)
    sims = similarities(query, other, LAYOUT)
    for aspect in ("shape", "colour", "texture"):
        assert sims[aspect] == pytest.approx(float(q[aspect] @ o[aspect]), abs=1e-4)
    # A real colour part: a red square's dominant colour is red.
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 200
    for space, describe in (("hsv", colour.color_descriptor), ("lab", colour.lab_descriptor)):
        layout = EmbedderConfig(colour_space=space).layout  # type: ignore[arg-type]
        vector = np.zeros(layout.parts[-1].stop, np.float32)
        vector[1280:] = np.sqrt(0.1) * describe(red)
        (hex_, share), *_ = palette(vector, layout)
        assert hex_.startswith("#") and int(hex_[1:3], 16) > 2 * int(hex_[3:5], 16), space
        assert share > 0.8


def test_explain_fills_each_hit_against_its_reference() -> None:
    rng = np.random.default_rng(5)
    a, _ = _stored(rng)
    b, _ = _stored(rng)
    product = ProductData(sku="x", image_path="x.jpg", image_sha256="0" * 64, id=7)
    hits = [
        SearchHit(product, 0.5),
        SearchHit(ProductData(sku="y", image_path="y.jpg", image_sha256="1" * 64, id=8), 0.4),
    ]
    out = explain(hits, [a, b], {7: b}, LAYOUT)
    assert out[0].aspects == similarities(a, b, LAYOUT)
    assert out[1].aspects is None  # no vector: left as it was


def test_only_another_blend_counts_as_reweighing() -> None:
    no_texture = EmbedderConfig().layout
    assert not reweighs(AspectWeights(), no_texture)
    assert not reweighs(AspectWeights(texture=0), no_texture)  # nothing it lacks is asked
    assert not reweighs(AspectWeights(shape=0.91, colour=0.09), no_texture)
    assert reweighs(AspectWeights(colour=1), no_texture)


def test_only_queries_far_from_the_stored_geometry_search_exhaustively() -> None:
    layout = EmbedderConfig().layout  # shape 0.91, colour 0.09
    rng = np.random.default_rng(7)
    v = np.concatenate([np.sqrt(0.91) * _unit(rng, 1280), np.sqrt(0.09) * _unit(rng, 256)])
    v = v.astype(np.float32)
    shape_only = weighted_query(v, layout, AspectWeights(1, 0))
    colour_only = weighted_query(v, layout, AspectWeights(0, 1))
    half = weighted_query(v, layout, AspectWeights(0.5, 0.5))
    assert not needs_exhaustive(v, shape_only)  # alignment 0.95: IVF recall 0.995
    assert needs_exhaustive(v, colour_only) and needs_exhaustive(v, half)  # 0.30, 0.57


@pytest.mark.parametrize(
    "rgb, near",
    [
        ((128, 128, 128), (128, 128, 128)),
        ((250, 220, 180), (245, 215, 176)),
        ((0, 128, 0), (49, 143, 30)),
    ],
)
def test_swatches_give_the_colour_back(
    rgb: tuple[int, int, int], near: tuple[int, int, int]
) -> None:
    """Soft bins spread a colour over neighbouring bins; the swatch puts it together again
    (within the descriptor's resolution: saturated colours are clipped at +-48 a*/b*)."""
    square = np.zeros((32, 32, 3), np.uint8)
    square[...] = rgb
    ((hex_, share),) = colour.swatches(colour.lab_descriptor(square))
    got = tuple(int(hex_[i : i + 2], 16) for i in (1, 3, 5))
    assert share == 1.0 and max(abs(g - w) for g, w in zip(got, near, strict=True)) <= 8
