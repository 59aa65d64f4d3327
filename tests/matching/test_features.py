"""Local features: extraction on odd inputs, the stored format."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.matching.features import (
    CATALOG_MAX_FEATURES,
    CATALOG_MAX_SIDE,
    LocalFeatures,
    catalog_features,
    query_features,
)
from tests.matching.conftest import poster


def test_catalog_features_are_capped_and_scaled() -> None:
    f = catalog_features(poster(1, (800, 1000)))
    assert 100 < len(f) <= CATALOG_MAX_FEATURES
    assert max(f.width, f.height) == CATALOG_MAX_SIDE
    assert f.xy[:, 0].max() <= f.width and f.xy[:, 1].max() <= f.height
    assert f.descriptors.dtype == np.uint8 and f.descriptors.shape[1] == 128


def test_stored_format_round_trips_within_an_eighth_of_a_pixel() -> None:
    f = query_features(poster(2))
    data = f.to_bytes()
    assert len(data) == 12 + 132 * len(f)
    back = LocalFeatures.from_bytes(data)
    assert (back.width, back.height) == (f.width, f.height)
    np.testing.assert_array_equal(back.descriptors, f.descriptors)
    assert np.abs(back.xy - f.xy).max() <= 1 / 16 + 1e-6


def test_rootsift_rows_have_unit_length() -> None:
    f = catalog_features(poster(3))
    norms = np.linalg.norm(f.rootsift(), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1)),
        Image.new("RGB", (1, 10_000), "red"),
        Image.new("RGB", (640, 480), "white"),
        Image.new("L", (300, 300), 128),
        Image.new("RGB", (15, 400)),
    ],
    ids=["1px", "1x10000", "blank", "grey", "thin"],
)
def test_degenerate_images_give_an_empty_set_not_an_error(image: Image.Image) -> None:
    f = query_features(image)
    assert len(f) == 0
    assert LocalFeatures.from_bytes(f.to_bytes()).descriptors.shape == (0, 128)


def test_corrupt_stored_data_is_refused() -> None:
    data = catalog_features(poster(4)).to_bytes()
    with pytest.raises(ValueError):
        LocalFeatures.from_bytes(data[:-1])
    with pytest.raises(ValueError):
        LocalFeatures.from_bytes(b"XXXX" + data[4:])


def test_a_studio_shot_searched_as_a_photo_is_described_as_its_catalog_copy() -> None:
    """The studio-white margin is skipped on both sides, so the photo's keypoints are the
    catalog image's (with the margin searched, SIFT's borders moved some of them)."""
    shot = Image.new("RGB", (420, 480), "white")
    shot.paste(poster(5, (160, 200)), (130, 150))
    catalog, photo = catalog_features(shot), query_features(shot)
    assert 0 < len(catalog) < CATALOG_MAX_FEATURES  # no cap cuts either set
    np.testing.assert_array_equal(photo.xy, catalog.xy)
    np.testing.assert_array_equal(photo.descriptors, catalog.descriptors)
    assert photo.pixels is not None and photo.pixels.shape[:2] == (480, 420)
