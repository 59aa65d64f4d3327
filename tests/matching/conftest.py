"""Synthetic flat products and phone-like photos of them, for matching tests."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from lookalike.embeddings.quantize import synthetic_product

# A textured flat product (a cover or box front): random shapes, lines and text; the same
# pictures the int8 model is calibrated on.
poster = synthetic_product


def photograph(
    product: Image.Image, seed: int, size: tuple[int, int] = (1024, 768), rotate: int = 0
) -> Image.Image:
    """The product under a perspective warp, on a cluttered background, centred,
    optionally turned by a multiple of 90 degrees (as phones save some photos)."""
    rng = np.random.default_rng(seed)
    w, h = size
    background = np.asarray(poster(seed + 10_000, size).resize(size)).copy()
    background = cv2.GaussianBlur(background, (0, 0), 3)
    pw, ph = product.size
    scale = 0.7 * min(w / pw, h / ph)
    cx, cy = w / 2, h / 2
    corners = np.array(
        [[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2], [-pw / 2, ph / 2]]
    ) * scale + [cx, cy]
    corners += rng.uniform(-0.08, 0.08, corners.shape) * [pw * scale, ph * scale]
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    homography = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    warped = cv2.warpPerspective(np.asarray(product), homography, size)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), homography, size) > 0
    background[mask] = warped[mask]
    photo = Image.fromarray(background)
    return photo.rotate(rotate, expand=True) if rotate else photo


def studio(product: Image.Image, margin: float = 0.15) -> Image.Image:
    """``product`` shot as a catalog photo: on studio white, with a white margin around it."""
    w, h = product.size
    pad = round(margin * max(w, h))
    canvas = Image.new("RGB", (w + 2 * pad, h + 2 * pad), (255, 255, 255))
    canvas.paste(product, (pad, pad))
    return canvas


def recoloured(product: Image.Image, turn: int = 90) -> Image.Image:
    """The same design in another colourway: every hue turned by ``turn`` degrees."""
    h, s, v = product.convert("HSV").split()
    hue = h.point(lambda x: (x + round(turn * 256 / 360)) % 256)
    return Image.merge("HSV", (hue, s, v)).convert("RGB")
