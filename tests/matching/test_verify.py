"""Geometric verification and the exact-match decision."""

from __future__ import annotations

import pytest
from PIL import Image

from benchmarks.smvs import on_a_can
from lookalike.matching.features import catalog_features, query_features
from lookalike.matching.verify import Query, verify
from tests.matching.conftest import photograph, poster

MIN_INLIERS, MIN_COVERAGE = 15, 0.3


@pytest.mark.parametrize("rotate", [0, 90, 180])
def test_a_photo_of_the_product_is_an_exact_match(rotate: int) -> None:
    product = poster(1)
    photo = Query.of(query_features(photograph(product, seed=5, rotate=rotate)))
    result = verify(photo, catalog_features(product))
    assert result.inliers >= 50
    assert result.coverage > 0.3
    assert result.centred
    assert result.is_exact(MIN_INLIERS, MIN_COVERAGE)


@pytest.mark.parametrize("angle", [90, 140])
def test_a_print_round_a_can_is_an_exact_match(angle: int) -> None:
    # A label on a can or a bottle: no homography maps it onto its flat catalog picture,
    # but its middle is nearly flat, and the RANSAC threshold takes the rest.
    product = poster(1)
    photo = Query.of(query_features(photograph(on_a_can(product, angle), seed=5)))
    result = verify(photo, catalog_features(product))
    assert result.is_exact(MIN_INLIERS, MIN_COVERAGE), result


def test_a_photo_of_another_product_is_not() -> None:
    photo = Query.of(query_features(photograph(poster(1), seed=5)))
    for other in range(2, 6):
        result = verify(photo, catalog_features(poster(other)))
        assert not result.is_exact(MIN_INLIERS, MIN_COVERAGE), other
        assert result.inliers < MIN_INLIERS


def test_a_product_off_to_the_side_is_matched_but_not_the_exact_match() -> None:
    # The product only in the photo's left third: verified, but the photo points elsewhere.
    product = poster(1)
    photo = photograph(product, seed=5)
    canvas = photograph(poster(9), seed=6, size=(1600, 768))
    canvas.paste(photo.resize((700, 525)), (0, 120))
    result = verify(Query.of(query_features(canvas)), catalog_features(product))
    assert result.inliers >= MIN_INLIERS
    assert not result.centred
    assert not result.is_exact(MIN_INLIERS, MIN_COVERAGE)


def test_a_mirrored_product_is_not_a_match() -> None:
    product = poster(1)
    mirrored = photograph(product, seed=5).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    result = verify(Query.of(query_features(mirrored)), catalog_features(product))
    assert not result.is_exact(MIN_INLIERS, MIN_COVERAGE)


def test_empty_features_never_match() -> None:
    from PIL import Image

    blank = Query.of(query_features(Image.new("RGB", (640, 480), "white")))
    assert verify(blank, catalog_features(poster(1))).inliers == 0
    photo = Query.of(query_features(photograph(poster(1), seed=5)))
    assert verify(photo, catalog_features(Image.new("RGB", (400, 500)))).inliers == 0


def test_a_shared_template_band_is_not_an_exact_match() -> None:
    # Two covers of one studio: the same printed band across the top, different art.
    a, b = poster(1), poster(2)
    band = a.crop((0, 0, a.width, 60))
    b.paste(band, (0, 0))
    result = verify(Query.of(query_features(photograph(b, seed=5))), catalog_features(a))
    assert result.coverage < MIN_COVERAGE
    assert not result.is_exact(MIN_INLIERS, MIN_COVERAGE)
    own = verify(Query.of(query_features(photograph(b, seed=5))), catalog_features(b))
    assert own.is_exact(MIN_INLIERS, MIN_COVERAGE)
