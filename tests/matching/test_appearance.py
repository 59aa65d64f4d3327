"""The appearance check: a geometric match must also look like the catalog image between
the matched points."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.matching.appearance import compared_size, structure
from lookalike.matching.features import catalog_features, query_features
from lookalike.matching.verify import Query, Verification, verify
from tests.matching.conftest import photograph, poster

MIN_STRUCTURE = 0.4  # the default (search/photo.py)


def _match(product: Image.Image) -> tuple[np.ndarray, Verification]:
    features = query_features(photograph(product, seed=5))
    check = verify(Query.of(features), catalog_features(product))
    assert check.is_exact(15, 0.3) and features.pixels is not None
    return features.pixels, check


def test_a_photo_of_the_product_looks_like_it() -> None:
    product = poster(1)
    photo, check = _match(product)
    alike = structure(photo, np.asarray(product.resize(compared_size(check.frame))), check)
    assert alike is not None and alike > 0.9


def test_other_content_between_the_matched_points_does_not() -> None:
    # The same matched points with another picture around them (the same model wearing
    # another shirt): the geometry alone would call it exact.
    product = poster(1)
    photo, check = _match(product)
    other = np.asarray(poster(7).resize(compared_size(check.frame)))
    alike = structure(photo, other, check)
    assert alike is not None and alike < MIN_STRUCTURE


def test_no_verdict_without_a_homography() -> None:
    product = poster(1)
    photo, _ = _match(product)
    assert structure(photo, np.asarray(product), Verification(20)) is None
