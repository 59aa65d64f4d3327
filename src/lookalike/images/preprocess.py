"""Turn a decoded picture into the model's input.

Three geometries:

- ``trim``: cut away the plain white margin around the product, then ``pad``. The product
  fills the frame and is never cut (the default; see docs/evaluation.md).
- ``pad``: longest side scaled to the input size, centred on white (the colour of catalog
  backgrounds): the whole product, but small when the photo has wide margins.
- ``crop``: the classic resize-then-centre-crop, which can cut off the ends of shoes,
  bags and dresses.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from lookalike.config import Preprocessing

INPUT_SIZE = 224
CROP_RATIO = 0.875  # the usual ImageNet evaluation crop (224 of 256)
PAD_VALUE = 255
BACKGROUND_MIN = 236  # all channels at or above: white studio background
STUDIO_BORDER = 0.6  # share of white border pixels that marks a studio shot
TRIM_MARGIN = 0.04  # keep a little background around the product, as catalog shots do


def to_square(img: Image.Image, mode: Preprocessing, size: int = INPUT_SIZE) -> np.ndarray:
    """Return a ``size`` x ``size`` x 3 uint8 array of ``img`` under the chosen geometry."""
    arr = np.asarray(img, dtype=np.uint8)
    if mode == "trim":
        arr = trim_background(arr)
    h, w = arr.shape[:2]
    if mode in ("pad", "trim"):
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = _resize(arr, nw, nh)
        out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
        top, left = (size - nh) // 2, (size - nw) // 2
        out[top : top + nh, left : left + nw] = resized
        return out
    short = round(size / CROP_RATIO)
    scale = short / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    resized = _resize(arr, nw, nh)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def trim_background(arr: np.ndarray) -> np.ndarray:
    """Crop to the bounding box of the non-white pixels plus a small margin. Photos with
    no white background (or almost nothing else) come back unchanged."""
    foreground = cv2.bitwise_not(background_mask(arr))
    if cv2.countNonZero(foreground) < 0.01 * foreground.size:
        return arr
    x, y, w, h = cv2.boundingRect(foreground)
    margin = int(TRIM_MARGIN * max(w, h))
    height, width = arr.shape[:2]
    return arr[
        max(0, y - margin) : min(height, y + h + margin),
        max(0, x - margin) : min(width, x + w + margin),
    ]


def background_mask(arr: np.ndarray) -> np.ndarray:
    """255 where a pixel is studio-white background (every channel >= BACKGROUND_MIN)."""
    return cv2.inRange(arr, (BACKGROUND_MIN,) * 3, (255, 255, 255))


def is_studio_lit(arr: np.ndarray) -> bool:
    """True when most of an RGB picture's outermost pixels are studio white: a
    catalog-style shot, framed, lit and white-balanced by its studio."""
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]], axis=0).reshape(1, -1, 3)
    white = background_mask(np.ascontiguousarray(border))
    return bool(np.count_nonzero(white) >= STUDIO_BORDER * white.size)


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    # INTER_AREA anti-aliases strong reductions (large photos); for mild ones linear is
    # as good and several times faster; cubic when enlarging.
    ratio = max(arr.shape[1] / width, arr.shape[0] / height)
    interp = cv2.INTER_AREA if ratio >= 2 else cv2.INTER_LINEAR if ratio > 1 else cv2.INTER_CUBIC
    return cv2.resize(arr, (width, height), interpolation=interp)


def model_input(batch: list[np.ndarray], mean: float = 127.0, std: float = 128.0) -> np.ndarray:
    """Stack HxWx3 uint8 arrays into an NCHW float32 tensor scaled as ``(x - mean) / std``
    (a model spec's input scaling).

    The default is EfficientNet-Lite's: converted TensorFlow weights trained on
    ``(x - 127) / 128`` (not the ImageNet mean/std): the network's BatchNorm statistics
    match that scaling, see tests/embeddings/test_backbone.py.
    """
    x = np.stack(batch).astype(np.float32)
    x -= mean
    x *= 1.0 / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
