"""The appearance check: a geometric match must also look like the catalog image between
the matched points, and, where both pictures are studio-lit, be the same colour there."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lookalike.matching.appearance import compare, compared_size
from lookalike.matching.features import catalog_features, query_features
from lookalike.matching.verify import Query, Verification, verify
from tests.matching.conftest import photograph, poster, recoloured, studio

MIN_STRUCTURE, MAX_RECOLOURED = 0.4, 0.05  # the defaults (search/photo.py)


def _match(product: Image.Image, photo: Image.Image) -> tuple[np.ndarray, Verification]:
    features = query_features(photo)
    check = verify(Query.of(features), catalog_features(product))
    assert check.is_exact(15, 0.3) and features.pixels is not None
    return features.pixels, check


def _pixels(product: Image.Image, check: Verification) -> np.ndarray:
    return np.asarray(product.resize(compared_size(check.frame)))


def _reencoded(image: Image.Image, scale: float = 0.7, quality: int = 50) -> Image.Image:
    """A merchant's copy of a catalog picture: smaller, JPEG-compressed."""
    size = (round(image.width * scale), round(image.height * scale))
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def test_a_photo_of_the_product_looks_like_it() -> None:
    product = poster(1)
    photo, check = _match(product, photograph(product, seed=5))
    seen = compare(photo, _pixels(product, check), check)
    assert seen.structure is not None and seen.structure > 0.9
    assert seen.recoloured is None  # a phone photo: no white reference, colour not compared
    assert seen.alike(MIN_STRUCTURE, MAX_RECOLOURED)


def test_a_product_a_quarter_hidden_still_looks_like_it() -> None:
    # Another product over a quarter of it (a shelf, a hand): the matched region's outline
    # spans part of what is hidden, but the rest carries the correlation (measured 0.87).
    product = poster(1)
    photo = photograph(product, seed=5)
    w, h = photo.size
    photo.paste(poster(9, (w // 3, h // 3)), (w // 2, h // 2))
    pixels, check = _match(product, photo)
    seen = compare(pixels, _pixels(product, check), check)
    assert seen.structure is not None and seen.structure < 0.9  # the hidden part counts
    assert seen.alike(MIN_STRUCTURE, MAX_RECOLOURED)


def test_other_content_between_the_matched_points_does_not() -> None:
    # The same matched points with another picture around them (the same model wearing
    # another shirt): the geometry alone would call it exact.
    product = poster(1)
    photo, check = _match(product, photograph(product, seed=5))
    seen = compare(photo, _pixels(poster(7), check), check)
    assert seen.structure is not None and seen.structure < MIN_STRUCTURE
    assert not seen.alike(MIN_STRUCTURE, MAX_RECOLOURED)


def test_no_verdict_without_a_homography() -> None:
    product = poster(1)
    photo, _ = _match(product, photograph(product, seed=5))
    seen = compare(photo, np.asarray(product), Verification(20))
    assert seen.structure is None and seen.recoloured is None
    assert seen.alike(MIN_STRUCTURE, MAX_RECOLOURED)


def test_studio_copies_keep_their_colour() -> None:
    product = studio(poster(1))
    photo, check = _match(product, _reencoded(product))
    seen = compare(photo, _pixels(product, check), check)
    assert seen.recoloured is not None and seen.recoloured <= 0.01
    assert seen.alike(MIN_STRUCTURE, MAX_RECOLOURED)


def test_the_same_design_in_another_colour_is_not_alike_under_studio_light() -> None:
    # Another colourway of the product shot the same way: the same edges (structure
    # passes), another colour over most of it.
    product = studio(poster(1))
    other = studio(recoloured(poster(1)))
    photo, check = _match(other, _reencoded(product))
    seen = compare(photo, _pixels(other, check), check)
    assert seen.structure is not None and seen.structure >= MIN_STRUCTURE
    assert seen.recoloured is not None and seen.recoloured > 0.3
    assert not seen.alike(MIN_STRUCTURE, MAX_RECOLOURED)


def test_a_phone_photo_is_not_judged_by_colour() -> None:
    # Without a white reference in the photo its colours say nothing (white balance):
    # the colourway is judged by its edges alone.
    product = studio(poster(1))
    other = studio(recoloured(poster(1)))
    photo, check = _match(other, photograph(product, seed=5))
    seen = compare(photo, _pixels(other, check), check)
    assert seen.recoloured is None
