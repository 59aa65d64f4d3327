"""Query views: a photo adds its centre, a studio shot stays whole."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageDraw

from lookalike.images.loader import LoadedImage
from lookalike.images.query import combine, is_studio_shot, query_views


def _loaded(img: Image.Image) -> LoadedImage:
    return LoadedImage(img, hashlib.sha256(img.tobytes()).hexdigest(), "PNG", *img.size)


def test_a_studio_shot_is_used_whole() -> None:
    img = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(img).ellipse([60, 80, 240, 320], fill="navy")
    assert is_studio_shot(_loaded(img))
    assert len(query_views(_loaded(img))) == 1


def test_a_photo_adds_its_centre() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 200, (480, 640, 3), dtype=np.uint8))
    views = query_views(_loaded(img))
    assert not is_studio_shot(_loaded(img))
    assert len(views) == 2
    assert (views[1].width, views[1].height) == (384, 288)
    assert views[1].pixels.size == (384, 288)
    assert views[0] is not views[1] and views[1].sha256 == views[0].sha256


def test_views_combine_to_one_unit_vector() -> None:
    v = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    out = combine(v)
    np.testing.assert_allclose(out, [0.70710677, 0.70710677], rtol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(combine(v[:1]), v[0])
