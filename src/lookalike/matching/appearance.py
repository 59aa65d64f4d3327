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
0.64, SMVS photos whose first exact match was the wrong cover down to -0.06. Colour is
not compared: phone photos' white balance moves the chroma of right matches by a median
10 CIELAB units (28 at the 95th percentile), more than separates different products.
"""

from __future__ import annotations

import cv2
import numpy as np

from lookalike.matching.verify import Verification

SIDE = 192  # px, the longer side both pictures are compared at
MIN_PIXELS = 64  # fewer compared pixels than this: no verdict


def compared_size(frame: tuple[int, int]) -> tuple[int, int]:
    """The (width, height) a catalog picture described at ``frame`` is compared at."""
    scale = min(1.0, SIDE / max(frame))
    return max(1, round(frame[0] * scale)), max(1, round(frame[1] * scale))


def structure(photo: np.ndarray, catalog: np.ndarray, check: Verification) -> float | None:
    """Correlation (-1..1) of the lightness gradients of ``photo`` (RGB, at the size its
    features were described at) and ``catalog`` (RGB, at ``compared_size(check.frame)``)
    where ``check`` matched them; None when there is too little to compare.

    The photo is warped at the catalog picture's described size, then both are compared
    small, inside the matched region (its border pixels left out: they mix in what lies
    outside it)."""
    if check.homography is None or check.region is None or len(check.region) < 3:
        return None
    frame = check.frame
    warped = cv2.warpPerspective(photo, check.homography, frame, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(
        np.full(photo.shape[:2], 255, np.uint8), check.homography, frame, flags=cv2.INTER_NEAREST
    )
    region = np.zeros((frame[1], frame[0]), np.uint8)
    cv2.fillConvexPoly(region, np.rint(check.region).astype(np.int32), 255)
    size = (catalog.shape[1], catalog.shape[0])
    mask = cv2.resize(cv2.bitwise_and(region, inside), size, interpolation=cv2.INTER_AREA) > 200
    if int(mask.sum()) < MIN_PIXELS:
        return None
    small = cv2.resize(warped, size, interpolation=cv2.INTER_AREA)
    return _correlation(_gradient(small)[mask], _gradient(catalog)[mask])


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
