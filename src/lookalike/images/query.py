"""A query photo as the model sees it: the whole frame, and its centre.

A shopper's photo is not a catalog shot: the product sits somewhere near the middle,
among other things, on a desk or in a hand. Embedding the centre of the photo together
with the whole frame (the mean of the two unit vectors) weights the product over the
clutter without losing it when it fills the frame. Measured on 200 SMVS phone photos
with the global vector alone (docs/evaluation.md): R@1 0.21 -> 0.40, and with the
photographed product removed from the catalog, the share of other covers among the
first 10 results 0.84 -> 0.94 (the centre alone: 0.50 / 0.94, but it cuts off products
that fill the frame).

Catalog-style images (a product on a studio-white background, which the ``trim``
preprocessing already frames) and regions the user cropped are used as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
from PIL import Image

from lookalike.images.loader import LoadedImage
from lookalike.images.preprocess import is_studio_lit

CENTRE = 0.6  # side of the centre view, as a share of the photo's sides


def is_studio_shot(image: LoadedImage) -> bool:
    """True when most of the picture's border is studio white (a catalog-style shot)."""
    return is_studio_lit(np.asarray(image.pixels))


def query_views(image: LoadedImage) -> list[LoadedImage]:
    """The views of a query picture to embed and average: the whole photo and its
    centre, or the picture alone when it is a studio shot."""
    if is_studio_shot(image):
        return [image]
    # Its size in the file's pixels, as LoadedImage keeps it (the pixels may be smaller).
    width, height = _view_side(image.width), _view_side(image.height)
    return [
        image,
        dataclasses.replace(image, pixels=centre(image.pixels), width=width, height=height),
    ]


def centre(pixels: Image.Image) -> Image.Image:
    """The middle ``CENTRE`` of a picture's sides: where a shopper puts the product."""
    w, h = pixels.size
    cw, ch = _view_side(w), _view_side(h)
    x, y = (w - cw) // 2, (h - ch) // 2
    return pixels.crop((x, y, x + cw, y + ch))


def _view_side(side: int) -> int:
    """A closer view's side: ``CENTRE`` of the photo's."""
    return max(1, round(side * CENTRE))


def closer_views(pixels: Image.Image, corners: bool) -> Iterator[Image.Image]:
    """The regions of a photo to look at closer when nothing matched the whole of it:
    its centre, where a shopper puts the product, then (``corners``) the four corner
    regions of the same size, overlapping, for a product off to one side."""
    yield centre(pixels)
    if not corners:
        return
    w, h = pixels.size
    cw, ch = _view_side(w), _view_side(h)
    for x, y in ((0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch)):
        yield pixels.crop((x, y, x + cw, y + ch))


def combine(vectors: np.ndarray) -> np.ndarray:
    """One query vector from the views' unit vectors: their normalised mean."""
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    out: np.ndarray = (mean / norm if norm > 0 else mean).astype(np.float32)
    return out
