"""A colour descriptor: the product's colour distribution, background excluded.

CNN features trained for ImageNet classes are nearly colour-blind (a red and a blue
T-shirt are neighbours), yet shoppers read colour as part of "looks alike". This
descriptor is a hue/saturation/value histogram of the non-background pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

HUE_BINS = 12
SAT_BINS = 2
VAL_BINS = 2
GRAY_BINS = 4
DIM = HUE_BINS * SAT_BINS * VAL_BINS + GRAY_BINS

_BACKGROUND_MIN = 236  # all channels at or above: white studio background
_CHROMA_MIN = 0.20 * 255  # below this saturation or value, a pixel counts as a gray


def color_descriptor(square: np.ndarray) -> np.ndarray:
    """Histogram of an HxWx3 uint8 RGB image, as the square root of its frequencies
    (Hellinger mapping: the dot product of two descriptors is their Bhattacharyya
    coefficient, and the vector has unit length)."""
    pixels = square.reshape(-1, 3)
    foreground = ~np.all(pixels >= _BACKGROUND_MIN, axis=1)
    if foreground.sum() < 0.02 * len(pixels):  # all-white product: use every pixel
        foreground[:] = True
    hsv = cv2.cvtColor(square, cv2.COLOR_RGB2HSV).reshape(-1, 3)[foreground].astype(np.int32)
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    chromatic = (s >= _CHROMA_MIN) & (v >= _CHROMA_MIN)
    # OpenCV hue is 0..179; shift half a bin so pure red is not split across the wrap.
    half = 180 // HUE_BINS // 2
    hue_bin = ((h + half) * HUE_BINS // 180) % HUE_BINS
    sat_bin = np.minimum((s - _CHROMA_MIN) * SAT_BINS // (256 - _CHROMA_MIN), SAT_BINS - 1)
    val_bin = np.minimum((v - _CHROMA_MIN) * VAL_BINS // (256 - _CHROMA_MIN), VAL_BINS - 1)
    color_idx = (hue_bin * SAT_BINS + sat_bin.astype(np.int32)) * VAL_BINS + val_bin.astype(
        np.int32
    )
    gray_idx = HUE_BINS * SAT_BINS * VAL_BINS + np.minimum(v * GRAY_BINS // 256, GRAY_BINS - 1)
    idx = np.where(chromatic, color_idx, gray_idx)
    hist = np.bincount(idx, minlength=DIM).astype(np.float32)
    hist /= max(float(hist.sum()), 1.0)
    out: np.ndarray = np.sqrt(hist)
    return out
