"""Geometric verification: does the photo show this catalog product?

Descriptors of the photo are matched to the candidate's (nearest neighbour, Lowe's ratio
test, one photo keypoint per catalog keypoint) and a homography is fitted with RANSAC.
A flat printed product (a box, a cover, a label) seen from any angle maps onto its
catalog image by a homography, so many consistent matches mean the same product; a
look-alike of another product gets a handful by chance.

An *exact* match needs three things (measured on the SMVS phone photos against the
2,946 fashion products as distractors; docs/evaluation.md):

- enough inliers (``min_inliers``): the true product has >= 17 in 99% of the photos,
  the best wrong candidate <= 11 in 90%;
- inliers spread over the product, not one shared element: along both axes of the catalog
  image the inliers span ``min_coverage`` of what its keypoints span. Covers of one
  studio share a "BLU-RAY + DVD" band across the top with dozens of inliers, but it
  spans a tenth of the height; true matches span 0.33 or more in 99% of photos;
- the product is what the photo points at: the photo's centre lies inside (or near) the
  matched region of the photo. Shoppers centre what they want; a second product lying
  beside or under it in the photo is still verified, but not *the* match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lookalike.matching.features import LocalFeatures

RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 8.0  # reprojection threshold, in catalog-image pixels (512 px side)
MIN_MATCHES = 6
CENTRE_TOLERANCE = 0.2  # of the photo's shorter side (true matches: >= -0.19 in 99%)


@dataclass(frozen=True)
class Query:
    """A query photo's local features, with RootSIFT computed once for all candidates."""

    features: LocalFeatures
    rootsift: np.ndarray

    @classmethod
    def of(cls, features: LocalFeatures) -> Query:
        return cls(features, features.rootsift())


@dataclass(frozen=True)
class Verification:
    """The geometric evidence that a photo shows one catalog product."""

    inliers: int
    coverage: float = 0.0  # least share, over both axes, of the product the inliers span
    centred: bool = False  # the photo's centre lies in (or near) the matched region
    # The fitted map from photo to catalog pixels, and the inliers' outline on the catalog
    # image (its convex hull): what the appearance check compares (matching/appearance.py).
    homography: np.ndarray | None = field(default=None, repr=False, compare=False)
    region: np.ndarray | None = field(default=None, repr=False, compare=False)
    frame: tuple[int, int] = (0, 0)  # the catalog picture's (width, height) they refer to

    def is_exact(self, min_inliers: int, min_coverage: float) -> bool:
        return self.inliers >= min_inliers and self.coverage >= min_coverage and self.centred


NO_MATCH = Verification(0)


def verify(query: Query, candidate: LocalFeatures, min_matches: int = MIN_MATCHES) -> Verification:
    """Match ``query`` against one candidate's stored features and fit a homography.

    Candidates with fewer than ``min_matches`` tentative matches are not fitted at all:
    they cannot reach that many inliers, and RANSAC spends its whole iteration budget on
    such hopeless sets (9 in 10 verified candidates on SMVS are wrong ones, with a
    median of 13 tentative matches; right ones have 24 or more in 99%)."""
    min_matches = max(min_matches, MIN_MATCHES)
    qf = query.features
    if len(qf) < min_matches or len(candidate) < min_matches:
        return NO_MATCH
    sim = query.rootsift @ candidate.rootsift().T  # cosine; squared distance = 2 - 2 sim
    top2 = np.argpartition(-sim, 1, axis=1)[:, :2]
    rows = np.arange(len(sim))
    a, b = sim[rows, top2[:, 0]], sim[rows, top2[:, 1]]
    best = np.where(b > a, top2[:, 1], top2[:, 0])
    s1, s2 = np.maximum(a, b), np.minimum(a, b)
    passed = np.nonzero((2.0 - 2.0 * s1) < RATIO**2 * (2.0 - 2.0 * s2))[0]
    if len(passed) < min_matches:
        return NO_MATCH
    # One photo keypoint per catalog keypoint (the most similar): many photo points
    # collapsing on one catalog point make degenerate homographies with many "inliers".
    order = passed[np.argsort(-s1[passed])]
    _, first = np.unique(best[order], return_index=True)
    keep = order[first]
    if len(keep) < min_matches:
        return NO_MATCH
    src, dst = qf.xy[keep], candidate.xy[best[keep]]
    # 500 iterations find a 4-point sample of inliers with probability > 0.9999 when half
    # the tentative matches are inliers, as they are for a right candidate.
    homography, mask = cv2.findHomography(
        src, dst, cv2.RANSAC, RANSAC_PX, maxIters=500, confidence=0.995
    )
    if homography is None or mask is None:
        return NO_MATCH
    inlier = mask.ravel().astype(bool)
    n = int(inlier.sum())
    if n < 4 or not _plausible(homography):
        return NO_MATCH
    matched = dst[inlier].astype(np.float32)
    return Verification(
        n,
        _coverage(matched, candidate.xy),
        _centred(src[inlier], qf),
        homography,
        cv2.convexHull(matched.reshape(-1, 1, 2)).reshape(-1, 2),
        (candidate.width, candidate.height),
    )


def _plausible(homography: np.ndarray) -> bool:
    """Reject mirror images and collapsing or exploding maps (not a view of a plane)."""
    det = float(np.linalg.det(homography[:2, :2]))
    return 1e-3 < det < 1e3


def _coverage(inliers: np.ndarray, keypoints: np.ndarray) -> float:
    """The smaller, over x and y of the catalog image, of the inliers' extent over all
    keypoints' extent (5th to 95th percentile, so a stray point does not count)."""
    lo, hi = np.percentile(inliers, [5, 95], axis=0)
    all_lo, all_hi = np.percentile(keypoints, [5, 95], axis=0)
    return float(np.min((hi - lo) / np.maximum(all_hi - all_lo, 1.0)))


def _centred(inliers: np.ndarray, photo: LocalFeatures) -> bool:
    """Is the photo's centre inside (or within the tolerance of) the matched region?"""
    if len(inliers) < 3:
        return False
    hull = cv2.convexHull(inliers.astype(np.float32).reshape(-1, 1, 2))
    centre = (photo.width / 2.0, photo.height / 2.0)
    distance = cv2.pointPolygonTest(hull, centre, True)
    return bool(distance >= -CENTRE_TOLERANCE * min(photo.width, photo.height))
