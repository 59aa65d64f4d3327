"""Local features: extraction on odd inputs, the stored format."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

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
    assert len(data) < 0.9 * (12 + 132 * len(f))  # compressed
    back = LocalFeatures.from_bytes(data)
    assert (back.width, back.height) == (f.width, f.height)
    np.testing.assert_array_equal(back.descriptors, f.descriptors)
    assert np.abs(back.xy - f.xy).max() <= 1 / 16 + 1e-6


def _uncompressed(f: LocalFeatures) -> bytes:
    """The stored format as written before 2026-11-29 (magic LKF1, nothing compressed)."""
    xy = np.clip(np.rint(f.xy * 8), 0, 65535).astype("<u2")
    header = struct.pack("<4sHHI", b"LKF1", f.width, f.height, len(f))
    return bytes(header + xy.tobytes() + f.descriptors.tobytes())


def test_rows_stored_uncompressed_before_still_read_the_same() -> None:
    f = catalog_features(poster(5))
    old = LocalFeatures.from_bytes(_uncompressed(f))
    new = LocalFeatures.from_bytes(f.to_bytes())
    np.testing.assert_array_equal(old.descriptors, new.descriptors)
    np.testing.assert_array_equal(old.xy, new.xy)
    assert (old.width, old.height) == (new.width, new.height)


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
    f = catalog_features(poster(4))
    data = f.to_bytes()
    promising_fewer = struct.pack("<4sHHI", b"LKZ1", f.width, f.height, len(f) - 1)
    flipped = bytearray(data)
    flipped[40] ^= 0xFF
    for bad in (
        data[:-1],
        b"XXXX" + data[4:],
        data[:5],
        promising_fewer + data[12:],  # more inside than the header says: not inflated
        bytes(flipped),
        data + b"x",  # anything after the compressed stream
        _uncompressed(f)[:-1],
    ):
        with pytest.raises(ValueError):
            LocalFeatures.from_bytes(bad)


def test_a_row_promising_more_keypoints_than_any_picture_has_is_not_inflated() -> None:
    """A row is input: a forged header and a small stream of zeros would otherwise
    inflate to hundreds of megabytes before the length check refused it."""
    zeros = zlib.compress(bytes(64 << 20), 1)  # 64 MiB of zeros in about 64 KB
    forged = struct.pack("<4sHHI", b"LKZ1", 10, 10, 2**32 - 1) + zeros  # 567 GB promised
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="keypoints"):
            LocalFeatures.from_bytes(forged)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


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
