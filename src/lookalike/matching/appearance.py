"""Does the matched region *look* like the catalog image? The check after the geometric one.

SIFT sees grey-level structure around a few hundred points. Two different products can
share enough of it to pass geometric verification: two shirts worn by the same model in
the same pose (inliers on his face, belt and trousers), a cover whose photo shows only a
logo band shared with its siblings. An exact match must also look the same *between* the
matched points: the photo is warped onto the catalog image with the fitted homography,
and the lightness gradients (edges, print, fabric pattern) of the two are correlated
inside the matched region (the inliers' convex hull), at ``SIDE`` px: small enough that a
phone photo's blur and noise do not count, fine enough that a check pattern does.

Measured (docs/evaluation.md): right SMVS phone-photo matches correlate at >= 0.47
(median 0.91); fashion catalog photos that claimed another SKU's exact match at 0.20 to
0.64, SMVS photos whose first exact match was the wrong cover down to -0.06.

Colour is compared only when the two pictures share a white reference: both have a
studio-white border (images/preprocess.is_studio_lit), and where the photo covers the
catalog picture, the catalog's white is white in the photo too (``SAME_WHITE``). A phone
photo's white balance moves the chroma of right matches by a median 10 CIELAB units (28 at
the 95th percentile), more than separates different products; no SMVS phone photo has a
white border (at most 0.26 of it), and a phone photo pasted among studio shots has one,
but not the catalog's white where the product is. Under studio light the colours are the
product's: resized, re-encoded, cropped and colour-shifted copies of 300 fashion photos
kept at most 0.002 of the matched region more than ``COLOUR_DELTA`` from their catalog
image, while other SKUs on the same model in the same pose (the same shirt in another
colour) reached 0.055 to 0.84.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.images.preprocess import background_mask, is_studio_lit
from lookalike.matching.verify import Verification

SIDE = 192  # px, the longer side both pictures are compared at
MIN_PIXELS = 64  # fewer compared pixels than this: no verdict
# Colours are compared smaller still: a pixel or two of misregistration at an edge between
# two colours is not a colour difference (at 192 px, JPEG copies of a photo reached 0.08
# of the region; at 48 px, 0.000).
COLOUR_SIDE = 48
COLOUR_DELTA = 20.0  # CIELAB distance (Delta E 1976) of a clearly different colour
# Share of the catalog picture's white that must be white in the photo: right matches of
# studio copies 0.95-1.00 (median), SMVS phone photos 0.00 (median).
SAME_WHITE = 0.8


@dataclass(frozen=True)
class Appearance:
    """How alike a photo and a catalog image look where a geometric check matched them."""

    structure: float | None  # lightness-gradient correlation, -1..1 (None: too little seen)
    # Share of the matched region in a clearly different colour; None unless both pictures
    # are studio-lit (their colours comparable).
    recoloured: float | None = None

    def alike(self, min_structure: float, max_recoloured: float) -> bool:
        """Whether this is the same picture by both measures (one not taken passes)."""
        if self.structure is not None and self.structure < min_structure:
            return False
        return self.recoloured is None or self.recoloured <= max_recoloured


def compared_size(frame: tuple[int, int], side: int = SIDE) -> tuple[int, int]:
    """The (width, height) a catalog picture described at ``frame`` is compared at (its
    longer side at most ``side``)."""
    scale = min(1.0, side / max(frame))
    return max(1, round(frame[0] * scale)), max(1, round(frame[1] * scale))


def compare(photo: np.ndarray, catalog: np.ndarray, check: Verification) -> Appearance:
    """How alike ``photo`` (RGB, at the size its features were described at) and
    ``catalog`` (RGB, at ``compared_size(check.frame)``) look where ``check`` matched them.

    The photo is warped at the catalog picture's described size, then both are compared
    small, inside the matched region (its border pixels left out: they mix in what lies
    outside it)."""
    if check.homography is None or check.region is None or len(check.region) < 3:
        return Appearance(None)
    frame = check.frame
    warped = cv2.warpPerspective(photo, check.homography, frame, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(
        np.full(photo.shape[:2], 255, np.uint8), check.homography, frame, flags=cv2.INTER_NEAREST
    )
    region = np.zeros((frame[1], frame[0]), np.uint8)
    cv2.fillConvexPoly(region, np.rint(check.region).astype(np.int32), 255)
    size = (catalog.shape[1], catalog.shape[0])
    area = cv2.resize(cv2.bitwise_and(region, inside), size, interpolation=cv2.INTER_AREA)
    mask = area > 200
    if int(mask.sum()) < MIN_PIXELS:
        return Appearance(None)
    small = cv2.resize(warped, size, interpolation=cv2.INTER_AREA)
    alike = _correlation(_gradient(small)[mask], _gradient(catalog)[mask])
    if not (is_studio_lit(photo) and is_studio_lit(catalog)):
        return Appearance(alike)  # a phone photo: its colours are its white balance's
    footprint = cv2.resize(inside, size, interpolation=cv2.INTER_AREA) > 200
    if not _same_white(small, catalog, footprint):
        return Appearance(alike)
    return Appearance(alike, _recoloured(small, catalog, area))


def _same_white(photo: np.ndarray, catalog: np.ndarray, footprint: np.ndarray) -> bool:
    """Is the catalog picture's studio white white in the (warped) photo too, where the
    photo covers it? Then the two share a white point where the product is, not only at
    the photo's border (a phone photo pasted among studio shots has a white border)."""
    white = (background_mask(catalog) > 0) & footprint
    seen = int(white.sum())
    if seen < MIN_PIXELS:
        return False
    return int(((background_mask(photo) > 0) & white).sum()) >= SAME_WHITE * seen


def _recoloured(photo: np.ndarray, catalog: np.ndarray, area: np.ndarray) -> float | None:
    """Share of the region (``area`` > 200 at the pictures' size) where the two differ by
    more than ``COLOUR_DELTA`` in CIELAB, compared at ``COLOUR_SIDE`` px."""
    size = compared_size((photo.shape[1], photo.shape[0]), COLOUR_SIDE)
    mask = cv2.resize(area, size, interpolation=cv2.INTER_AREA) > 200
    if not mask.any():
        return None
    a, b = (_lab(cv2.resize(p, size, interpolation=cv2.INTER_AREA))[mask] for p in (photo, catalog))
    distance = np.sqrt(((a - b) ** 2).sum(axis=1))
    return float((distance > COLOUR_DELTA).mean())


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L 0..100) of 8-bit RGB."""
    lab: np.ndarray = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab


def _gradient(rgb: np.ndarray) -> np.ndarray:
    """Gradient magnitude of CIELAB lightness."""
    # 8-bit CIELAB: OpenCV converts it through a table, 20x faster than float input.
    lightness = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    magnitude: np.ndarray = np.hypot(
        cv2.Sobel(lightness, cv2.CV_32F, 1, 0), cv2.Sobel(lightness, cv2.CV_32F, 0, 1)
    )
    return magnitude


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0
