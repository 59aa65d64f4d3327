"""The colour descriptor: the product's colour distribution, background excluded.

CNN features trained for ImageNet classes are nearly colour-blind (a red and a blue
T-shirt are neighbours), yet shoppers read colour as part of "looks alike". This
descriptor is a hue/saturation/value histogram of the non-background pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from lookalike.images.preprocess import background_mask

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
    """Histogram of an HxWx3 uint8 RGB image, as the square root of its frequencies
    (Hellinger mapping: the dot product of two descriptors is their Bhattacharyya
    coefficient, and the vector has unit length)."""
    if square.shape[0] > SIDE:
        square = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    foreground = background_mask(square).reshape(-1) == 0
    if foreground.sum() < 0.02 * foreground.size:  # all-white product: use every pixel
        foreground[:] = True
    hsv = cv2.cvtColor(square, cv2.COLOR_RGB2HSV).reshape(-1, 3)[foreground]
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    color_idx = (_HUE[h] * SAT_BINS + _SAT[s]) * VAL_BINS + _VAL[v]
    idx = np.where(_CHROMATIC[s] & _CHROMATIC[v], color_idx, _GRAY[v])
    hist = np.bincount(idx, minlength=DIM).astype(np.float32)
    hist /= max(float(hist.sum()), 1.0)
    out: np.ndarray = np.sqrt(hist)
    return out


def swatches(
    descriptor: np.ndarray, n: int = 3, min_share: float = 0.08
) -> list[tuple[str, float]]:
    """The ``n`` dominant colours of a (unit) colour descriptor, as ``#rrggbb`` and the
    share of the product's pixels, largest first; colours under ``min_share`` left out."""
    shares = np.square(np.asarray(descriptor, dtype=np.float64))
    shares /= max(float(shares.sum()), 1e-12)
    top = [int(i) for i in np.argsort(-shares)[:n] if shares[i] >= min_share]
    return [(_BIN_HEX[i], round(float(shares[i]), 3)) for i in top]


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


_BIN_HEX = _bin_colours()
