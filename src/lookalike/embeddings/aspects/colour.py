"""The colour descriptors: the product's colour distribution, background excluded.

CNN features trained for ImageNet classes are nearly colour-blind (a red and a blue
T-shirt are neighbours), yet shoppers read colour as part of "looks alike". Two
descriptors, both square-rooted histograms (Hellinger: unit length, dot product = the
Bhattacharyya coefficient):

- ``lab`` (the default): CIELAB, 4 x 8 x 8 bins with soft (trilinear) assignment, each
  pixel weighted by its closeness to the image centre. Colour-only ranking on the
  fashion dev set: colour@10 0.471 (halves 0.452 / 0.437) against 0.410 for ``hsv``;
  soft bins gave most of it (+0.05: a colour near a bin edge no longer lands in one bin
  or the other), the centre weight +0.01 (a garment on a model is in the middle; skin,
  hair and the other garments less so). docs/evaluation.md "Aspects".
- ``hsv``: 12 hues x 2 saturations x 2 values + 4 greys, hard bins: what catalogs
  embedded before had (``trim-gap-c0.1``), kept so that they still search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import cv2
import numpy as np

from lookalike.images.preprocess import background_mask

ColourSpace = Literal["lab", "hsv"]

HUE_BINS = 12
SAT_BINS = 2
VAL_BINS = 2
GRAY_BINS = 4
DIM = HUE_BINS * SAT_BINS * VAL_BINS + GRAY_BINS
SIDE = 112  # a histogram needs no more detail than this; 4x fewer pixels than 224

_CHROMA_MIN = 51  # 20% of 255: below this saturation or value a pixel counts as a gray
_levels = np.arange(256)
# OpenCV hue is 0..179; shift half a bin so pure red is not split across the wrap.
_HUE = (((_levels + 180 // HUE_BINS // 2) * HUE_BINS // 180) % HUE_BINS).astype(np.int16)
_SAT = np.clip((_levels - _CHROMA_MIN) * SAT_BINS // (256 - _CHROMA_MIN), 0, SAT_BINS - 1)
_VAL = np.clip((_levels - _CHROMA_MIN) * VAL_BINS // (256 - _CHROMA_MIN), 0, VAL_BINS - 1)
_GRAY = HUE_BINS * SAT_BINS * VAL_BINS + np.minimum(_levels * GRAY_BINS // 256, GRAY_BINS - 1)
_CHROMATIC = _levels >= _CHROMA_MIN


def color_descriptor(square: np.ndarray) -> np.ndarray:
    """The ``hsv`` histogram of an HxWx3 uint8 RGB image's product pixels."""
    square = _small(square)
    foreground = _foreground(square)
    hsv = cv2.cvtColor(square, cv2.COLOR_RGB2HSV).reshape(-1, 3)[foreground]
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    color_idx = (_HUE[h] * SAT_BINS + _SAT[s]) * VAL_BINS + _VAL[v]
    idx = np.where(_CHROMATIC[s] & _CHROMATIC[v], color_idx, _GRAY[v])
    hist = np.bincount(idx, minlength=DIM).astype(np.float32)
    hist /= max(float(hist.sum()), 1.0)
    out: np.ndarray = np.sqrt(hist)
    return out


# ---- lab ---------------------------------------------------------------------------
L_BINS, A_BINS, B_BINS = 4, 8, 8
LAB_DIM = L_BINS * A_BINS * B_BINS
_AB_LO, _AB_HI = 80, 176  # OpenCV's 8-bit a*, b* (128 = neutral): +-48 CIELAB units
CENTRE_SIGMA = 0.25  # of the side (0.35 and 0.5 measured 0.002 and 0.007 lower)


def _soft(n: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each 8-bit value: its lower bin, upper bin and the upper bin's share (linear
    between bin centres)."""
    x = (np.clip(np.arange(256, dtype=np.float32), lo, hi) - lo) / (hi - lo) * n - 0.5
    low = np.floor(x).astype(np.int64)
    share = (x - low).astype(np.float32)
    return np.clip(low, 0, n - 1), np.clip(low + 1, 0, n - 1), share


_SOFT_L, _SOFT_A, _SOFT_B = (
    _soft(L_BINS, 0, 255),
    _soft(A_BINS, _AB_LO, _AB_HI),
    _soft(B_BINS, _AB_LO, _AB_HI),
)
_yy, _xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
_CENTRE_WEIGHT = np.exp(
    -0.5 * ((_xx - SIDE / 2 + 0.5) ** 2 + (_yy - SIDE / 2 + 0.5) ** 2) / (CENTRE_SIGMA * SIDE) ** 2
).reshape(-1)


def lab_descriptor(square: np.ndarray) -> np.ndarray:
    """The ``lab`` histogram of an HxWx3 uint8 RGB image's product pixels."""
    square = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    foreground = _foreground(square)
    lab = cv2.cvtColor(square, cv2.COLOR_RGB2LAB).reshape(-1, 3)[foreground]
    weight = _CENTRE_WEIGHT[foreground]
    indices, weights = [], []
    lo_l, hi_l, up_l = (t[lab[:, 0]] for t in _SOFT_L)
    lo_a, hi_a, up_a = (t[lab[:, 1]] for t in _SOFT_A)
    lo_b, hi_b, up_b = (t[lab[:, 2]] for t in _SOFT_B)
    for bin_l, w_l in ((lo_l, 1 - up_l), (hi_l, up_l)):
        for bin_a, w_a in ((lo_a, 1 - up_a), (hi_a, up_a)):
            base = (bin_l * A_BINS + bin_a) * B_BINS
            w_la = weight * w_l * w_a
            indices += [base + lo_b, base + hi_b]
            weights += [w_la * (1 - up_b), w_la * up_b]
    hist = np.bincount(np.concatenate(indices), np.concatenate(weights), minlength=LAB_DIM).astype(
        np.float64
    )
    hist /= max(float(hist.sum()), 1e-12)
    out: np.ndarray = np.sqrt(hist).astype(np.float32)
    return out


def _small(square: np.ndarray) -> np.ndarray:
    if square.shape[0] > SIDE:
        return cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    return square


def _foreground(square: np.ndarray) -> np.ndarray:
    """The pixels that are not studio-white background (all of them for an all-white
    product)."""
    foreground: np.ndarray = background_mask(square).reshape(-1) == 0
    if foreground.sum() < 0.02 * foreground.size:
        foreground[:] = True
    return foreground


def swatches(
    descriptor: np.ndarray, n: int = 3, min_share: float = 0.08
) -> list[tuple[str, float]]:
    """The ``n`` dominant colours of a (unit) colour descriptor of either kind (told
    apart by length), as ``#rrggbb`` and the share of the product's pixels, largest
    first; colours under ``min_share`` left out."""
    shares = np.square(np.asarray(descriptor, dtype=np.float64))
    shares /= max(float(shares.sum()), 1e-12)
    if len(shares) == LAB_DIM:
        return _lab_swatches(shares, n, min_share)
    top = [int(i) for i in np.argsort(-shares)[:n] if shares[i] >= min_share]
    return [(_BIN_HEX[i], round(float(shares[i]), 3)) for i in top]


def _lab_swatches(shares: np.ndarray, n: int, min_share: float) -> list[tuple[str, float]]:
    """Soft bins spread one colour over its neighbouring bins, in proportion to how close
    it lies to each: the share-weighted mean of a 3 x 3 x 3 neighbourhood's bin colours
    gives the colour back. Largest neighbourhood first, its mass then taken out."""
    mass = shares.reshape(L_BINS, A_BINS, B_BINS).copy()
    out: list[tuple[str, float]] = []
    while len(out) < n:
        peak = np.unravel_index(int(np.argmax(mass)), mass.shape)
        around = tuple(slice(max(0, i - 1), i + 2) for i in peak)
        share = float(mass[around].sum())
        if share < min_share:
            break
        weights = mass[around].reshape(-1, 1)
        lab = (
            _LAB_CENTRES.reshape(L_BINS, A_BINS, B_BINS, 3)[around].reshape(-1, 3) * weights
        ).sum(0)
        pixel = np.clip(np.rint(lab / share), 0, 255).astype(np.uint8).reshape(1, 1, 3)
        r, g, b = cv2.cvtColor(pixel, cv2.COLOR_LAB2RGB)[0, 0]
        out.append((f"#{r:02x}{g:02x}{b:02x}", round(share, 3)))
        mass[around] = 0
    return out


def _bin_colours() -> list[str]:
    """Each histogram bin's typical colour: hue at the bin's centre, saturation and value
    at the middle of their range; grays at the middle of theirs."""
    span = 256 - _CHROMA_MIN
    hsv = []
    for hue in range(HUE_BINS):
        for sat in range(SAT_BINS):
            for val in range(VAL_BINS):
                hsv.append(
                    (
                        hue * 180 // HUE_BINS,
                        _CHROMA_MIN + (2 * sat + 1) * span // (2 * SAT_BINS),
                        _CHROMA_MIN + (2 * val + 1) * span // (2 * VAL_BINS),
                    )
                )
    hsv += [(0, 0, (2 * g + 1) * 256 // (2 * GRAY_BINS)) for g in range(GRAY_BINS)]
    rgb = cv2.cvtColor(np.array([hsv], dtype=np.uint8), cv2.COLOR_HSV2RGB)[0]
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]


def _lab_centres() -> np.ndarray:
    """Each ``lab`` bin's colour in OpenCV's 8-bit CIELAB: its centre, except along the
    a*/b* clip, where a bin holds everything beyond it (saturated blue's centre is
    violet): there, the mean of the sRGB colours (every 8th level) that fall in it."""
    centres = np.array(
        [
            (
                (2 * lightness + 1) * 255 / (2 * L_BINS),
                _AB_LO + (2 * a + 1) * (_AB_HI - _AB_LO) / (2 * A_BINS),
                _AB_LO + (2 * b + 1) * (_AB_HI - _AB_LO) / (2 * B_BINS),
            )
            for lightness in range(L_BINS)
            for a in range(A_BINS)
            for b in range(B_BINS)
        ]
    )
    levels = np.arange(4, 256, 8, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    lab = cv2.cvtColor(grid, cv2.COLOR_RGB2LAB)[0]
    near = [
        np.minimum(np.rint(low + up), n - 1).astype(np.int64)
        for (low, _, up), n in zip(
            (_SOFT_L, _SOFT_A, _SOFT_B), (L_BINS, A_BINS, B_BINS), strict=True
        )
    ]
    bins = (near[0][lab[:, 0]] * A_BINS + near[1][lab[:, 1]]) * B_BINS + near[2][lab[:, 2]]
    counts = np.bincount(bins, minlength=LAB_DIM)
    sums = np.stack([np.bincount(bins, lab[:, c], minlength=LAB_DIM) for c in range(3)], 1)
    a_edge = np.isin(np.arange(LAB_DIM) // B_BINS % A_BINS, (0, A_BINS - 1))
    b_edge = np.isin(np.arange(LAB_DIM) % B_BINS, (0, B_BINS - 1))
    typical = (a_edge | b_edge) & (counts > 0)
    centres[typical] = sums[typical] / counts[typical, None]
    return centres


_BIN_HEX = _bin_colours()
_LAB_CENTRES = _lab_centres()

#: Each colour space's descriptor length and function.
DESCRIPTORS: dict[ColourSpace, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "lab": (LAB_DIM, lab_descriptor),
    "hsv": (DIM, color_descriptor),
}
