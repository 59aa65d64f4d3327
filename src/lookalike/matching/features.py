"""Local features: SIFT keypoints and descriptors of a picture, and their compact format.

Global CNN vectors describe what a picture looks like overall and are easily swamped by a
phone photo's clutter, angle and glare (photo -> catalog R@1 0.18 on the SMVS phone
photos). Local features find the printed details of the product itself wherever they are
in the photo, at any rotation and scale; verified geometrically (matching/verify.py) they
tell an exact product from a look-alike.

Catalog images keep their 400 strongest keypoints at 512 px (52.8 KB a product, stored
compressed: 43.4 KB at most on SMVS); photos are described at 640 px with up to 1,000 keypoints,
since the product is only part of a photo. Measured on SMVS (400 phone photos, 100 DVD
covers among the 2,946 fashion products): candidate recall@5 1.00, R@1 0.995 after
verification.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from lookalike.images.preprocess import background_mask

#: Recorded with every stored feature set; change it when extraction changes.
FEATURE_VERSION = "sift-512-400"
CATALOG_MAX_SIDE = 512
CATALOG_MAX_FEATURES = 400
QUERY_MAX_SIDE = 640
QUERY_MAX_FEATURES = 1000
DESCRIPTOR_DIM = 128
# White kept around a studio shot's content (px at the described size): wider than the
# descriptor windows of all but the coarsest keypoints, so they see what they saw before.
WHITE_MARGIN = 24

_MAGIC = b"LKF1"  # keypoints and descriptors as they are (written until 2026-11-29)
# The same, zlib-compressed (level 1): 0.74 of the bytes on average (SMVS covers and
# fashion photos), 43.4 KB at most for the covers' 400 keypoints instead of 52.8, so that
# a product's local features with its 16 KB in the descriptor index's file stay within
# 64 KB on disk (not guaranteed: a picture of noise compresses to 43.7 KB, random bytes
# would stay at 52.8). It costs about 1 ms a 400-keypoint product at ingest, 0.3 ms a
# verified candidate or a product read by a descriptor-index build.
_MAGIC_ZLIB = b"LKZ1"
_HEADER = struct.Struct("<4sHHI")  # magic, width, height, count
_KEYPOINT_BYTES = 4 + DESCRIPTOR_DIM  # uint16 x, y and the uint8 descriptor
# More keypoints than any picture is described with: a stored row that claims more is
# refused before it is inflated (a row is input, and its header could promise gigabytes).
MAX_STORED_KEYPOINTS = 4 * QUERY_MAX_FEATURES
_XY_SCALE = 8.0  # keypoints stored as uint16 in 1/8 px: enough for 8,191 px sides


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one picture: ``xy`` (n x 2 float32, pixels of the picture as it was
    described, ``width`` x ``height``) and SIFT ``descriptors`` (n x 128 uint8)."""

    xy: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int
    # A query photo's own pixels (RGB, width x height), kept so that a geometric match can
    # be compared by appearance (matching/appearance.py); never stored.
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.descriptors)

    @property
    def nbytes(self) -> int:
        """Memory its arrays hold (keypoints, descriptors and pixels)."""
        pixels = 0 if self.pixels is None else self.pixels.nbytes
        return int(self.xy.nbytes + self.descriptors.nbytes + pixels)

    def rootsift(self) -> np.ndarray:
        """RootSIFT (Arandjelović & Zisserman 2012): L1-normalise, square-root. Unit length,
        so Euclidean distance on it is the Hellinger kernel, which matches better than
        raw SIFT's L2."""
        d = self.descriptors.astype(np.float32)
        d /= d.sum(axis=1, keepdims=True) + 1e-7
        return np.sqrt(d)

    def to_bytes(self) -> bytes:
        """The stored format: a 12-byte header, then uint16 keypoints and uint8
        descriptors (132 bytes a keypoint), zlib-compressed."""
        xy = np.clip(np.rint(self.xy * _XY_SCALE), 0, 65535).astype("<u2")
        header = _HEADER.pack(_MAGIC_ZLIB, self.width, self.height, len(self))
        body = xy.tobytes() + np.ascontiguousarray(self.descriptors, np.uint8).tobytes()
        return header + zlib.compress(body, 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Read the stored format, compressed or (as written before 2026-11-29) not;
        ValueError for anything else."""
        if len(data) < _HEADER.size:
            raise ValueError("not a stored local-feature set")
        magic, width, height, n = _HEADER.unpack_from(data)
        if n > MAX_STORED_KEYPOINTS:
            raise ValueError(f"not a stored local-feature set: {n} keypoints")
        size = n * _KEYPOINT_BYTES
        body = memoryview(data)[_HEADER.size :]
        if magic == _MAGIC_ZLIB:
            inflate = zlib.decompressobj()
            try:  # never more than the header promises (a corrupt row is no zip bomb)
                raw = inflate.decompress(body, size + 1)
            except zlib.error as exc:
                raise ValueError(f"not a stored local-feature set: {exc}") from None
            if not inflate.eof or inflate.unused_data:
                raise ValueError("not a stored local-feature set")
            body = memoryview(raw)
        elif magic != _MAGIC:
            raise ValueError("not a stored local-feature set")
        if len(body) != size:
            raise ValueError("not a stored local-feature set")
        xy = np.frombuffer(body, "<u2", 2 * n).reshape(n, 2)
        desc = np.frombuffer(body, np.uint8, n * DESCRIPTOR_DIM, 4 * n).reshape(n, DESCRIPTOR_DIM)
        return cls(xy.astype(np.float32) / _XY_SCALE, desc, width, height)


def extract(
    image: Image.Image, *, max_side: int, max_features: int, skip_white: bool = False
) -> LocalFeatures:
    """SIFT keypoints of ``image`` scaled so its longer side is at most ``max_side``.

    With ``skip_white``, a studio-white margin around the content is not searched: SIFT
    finds nothing on plain white, and a margin of white kept around the content makes
    the keypoints the same (143.8 vs 143.7 a dev-set image) for 16% less time.
    Blank, tiny or uniform pictures give an empty set, never an error."""
    gray = image.convert("L")
    scale = max_side / max(gray.size)
    if scale < 1.0:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    width, height = gray.size
    left, top, right, bottom = (
        _content_box(image, gray.size) if skip_white else (0, 0, width, height)
    )
    arr = np.asarray(gray)[top:bottom, left:right]
    if min(arr.shape) < 16:  # SIFT needs a few octaves; nothing useful below this
        return _empty(width, height)
    detector = cv2.SIFT.create(nfeatures=max_features)
    keypoints, desc = detector.detectAndCompute(np.ascontiguousarray(arr), None)
    if desc is None or not keypoints:
        return _empty(width, height)
    # Strongest first (OpenCV keeps the strongest but in no order, and may return a few
    # more than asked when responses tie), so a prefix is the most repeatable subset.
    order = np.argsort([-k.response for k in keypoints], kind="stable")[:max_features]
    xy = np.array([keypoints[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    xy += np.array([left, top], dtype=np.float32)
    desc = np.clip(desc[order], 0, 255).astype(np.uint8)
    return LocalFeatures(xy, desc, width, height)


def _content_box(image: Image.Image, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) at ``size`` of what is not studio-white background, with
    ``WHITE_MARGIN`` px of the white kept around it (the whole picture when it has none)."""
    content = cv2.bitwise_not(background_mask(_rgb(image, size)))
    width, height = size
    if not cv2.countNonZero(content):
        return 0, 0, width, height
    x, y, w, h = cv2.boundingRect(content)
    m = WHITE_MARGIN
    return max(0, x - m), max(0, y - m), min(width, x + w + m), min(height, y + h + m)


def catalog_features(image: Image.Image) -> LocalFeatures:
    """Local features of a catalog image, as stored."""
    return extract(
        image, max_side=CATALOG_MAX_SIDE, max_features=CATALOG_MAX_FEATURES, skip_white=True
    )


def query_features(image: Image.Image) -> LocalFeatures:
    """Local features of a query photo (more and finer than a catalog image's: the
    product is only part of the photo), with the photo's pixels at the described size.
    A studio-white margin is skipped as in catalog images: a catalog-style photo costs
    21% less SIFT (38.9 -> 30.9 core-ms on 99 dev photos, 163.4 keypoints either way) and
    is described as its catalog copy was; phone photos have no such margin (50 SMVS
    photos: the same keypoints)."""
    features = extract(
        image, max_side=QUERY_MAX_SIDE, max_features=QUERY_MAX_FEATURES, skip_white=True
    )
    return dataclasses.replace(features, pixels=_rgb(image, (features.width, features.height)))


def _rgb(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """``image`` as RGB pixels at ``size`` (the size it is described at)."""
    rgb = image.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(rgb)


def _empty(width: int, height: int) -> LocalFeatures:
    return LocalFeatures(
        np.empty((0, 2), np.float32), np.empty((0, DESCRIPTOR_DIM), np.uint8), width, height
    )
