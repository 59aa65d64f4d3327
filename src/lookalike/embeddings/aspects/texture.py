"""A texture descriptor: the product's local grey-level patterns, background excluded.

Rotation-invariant uniform local binary patterns (Ojala et al. 2002, "riu2": 8
neighbours, 10 codes) at three radii, so fine weaves and broad stripes both register.
"""

from __future__ import annotations

import cv2
import numpy as np

from lookalike.images.preprocess import background_mask

SIDE = 112
RADII = (1, 2, 4)
NEIGHBOURS = 8
CODES = NEIGHBOURS + 2  # riu2: 0..8 set bits for uniform patterns, 9 for the rest
DIM = CODES * len(RADII)

_ANGLES = 2 * np.pi * np.arange(NEIGHBOURS) / NEIGHBOURS


def texture_descriptor(square: np.ndarray) -> np.ndarray:
    """Histogram of riu2 LBP codes of an HxWx3 uint8 RGB image's foreground, as the
    square root of its frequencies (unit length, like the colour descriptor)."""
    if square.shape[0] != SIDE:
        square = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(square, cv2.COLOR_RGB2GRAY).astype(np.float32)
    foreground = background_mask(square) == 0
    if foreground.sum() < 0.02 * foreground.size:
        foreground[:] = True
    hists = [_lbp_histogram(gray, radius, foreground) for radius in RADII]
    out: np.ndarray = np.sqrt(np.concatenate(hists) / len(RADII)).astype(np.float32)
    return out


def _lbp_histogram(gray: np.ndarray, radius: int, mask: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    centre = gray[radius : h - radius, radius : w - radius]
    bits = np.empty((NEIGHBOURS, *centre.shape), dtype=bool)
    for i, angle in enumerate(_ANGLES):
        dx, dy = radius * np.cos(angle), -radius * np.sin(angle)
        # Bilinear sample of the neighbour at (x + dx, y + dy) for every centre pixel.
        shift = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        moved = cv2.warpAffine(gray, shift, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        bits[i] = moved[radius : h - radius, radius : w - radius] >= centre
    ones = bits.sum(axis=0)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    codes = np.where(transitions <= 2, ones, NEIGHBOURS + 1)
    inside = mask[radius : h - radius, radius : w - radius]
    hist = np.bincount(codes[inside].ravel(), minlength=CODES).astype(np.float32)
    total: float = float(hist.sum())
    return hist / max(total, 1.0)
