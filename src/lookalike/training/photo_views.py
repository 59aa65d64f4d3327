"""Synthetic shopper-photo views of a catalog image, for training that keeps instance
identity without ever seeing a real shopper photo.

A shop has one clean catalog image per product; shoppers send phone photos of the same
product on a desk, in a hand, among other things, at an angle, with glare and blur. This
module turns the catalog image into such a photo: the product is cut from its studio
background, warped by a random homography (with a 90/180/270 degree turn now and then),
placed at 30-90% of the frame on clutter made from crops of *other* catalog images or a
plain texture, partly covered by a hand-like shape, lit with glare, shifted mildly in
colour temperature and brightness, blurred and JPEG re-encoded. Everything is drawn from
the ``numpy`` generator it is given: the same seed gives the same view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.images.preprocess import background_mask

PHOTO_LONG_SIDE = 448  # the query path decodes photos to about 2 x 224 px anyway
PHOTO_ASPECT = 4 / 3  # phone photos

# (R, G, B) skin tones from light to dark; each hand is one of them, shaded.
_SKIN_TONES = np.array(
    [[233, 196, 170], [222, 171, 127], [198, 134, 92], [161, 102, 62], [110, 70, 45]],
    dtype=np.float32,
)


_NOISE = np.random.default_rng(0).standard_normal((2 * PHOTO_LONG_SIDE,) * 2, dtype=np.float32)


@dataclass(frozen=True)
class PhotoView:
    """A synthetic photo and where the product shows in it."""

    image: np.ndarray  # H x W x 3 uint8 RGB
    product_mask: np.ndarray  # H x W bool: product pixels not hidden by the hand or frame


def product_mask(image: np.ndarray) -> np.ndarray:
    """Where the product is in a catalog image (H x W bool): everything except the
    studio-white background that touches the border. Images without such a background
    (a DVD cover, a packshot on colour) are the product entire."""
    white = background_mask(image)
    h, w = white.shape
    border = np.concatenate([white[0], white[-1], white[:, 0], white[:, -1]])
    if (border > 0).mean() < 0.6:
        return np.ones((h, w), dtype=bool)
    # Flood the white region from the border: white inside the product (a white logo,
    # a white shoe sole) is not connected to it and stays product.
    flood = np.zeros((h + 2, w + 2), np.uint8)
    filled = white.copy()
    for y, x in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
        if filled[y, x] == 255:
            cv2.floodFill(filled, flood, (x, y), 128)
    mask: np.ndarray = filled != 128
    if mask.mean() < 0.02:  # a white product on white: keep the whole picture
        return np.ones((h, w), dtype=bool)
    return mask


def photo_view(
    image: np.ndarray,
    rng: np.random.Generator,
    clutter: Sequence[np.ndarray] = (),
) -> PhotoView:
    """One synthetic shopper photo of the product in ``image`` (H x W x 3 uint8 RGB).

    ``clutter`` holds images of *other* products; crops of them make the background
    (with none, the background is a plain texture). The photo is landscape or portrait,
    ``PHOTO_LONG_SIDE`` px by a phone's 4:3 aspect.
    """
    long, short = PHOTO_LONG_SIDE, round(PHOTO_LONG_SIDE / PHOTO_ASPECT)
    size = (long, short) if rng.random() < 0.5 else (short, long)  # (w, h)
    canvas = _background(size, rng, clutter)
    product, mask = _place(image, product_mask(image), size, rng)
    canvas = _composite(canvas, product, mask)
    visible = mask > 0.5
    if rng.random() < 0.5:
        canvas, hand = held_in_a_hand(canvas, visible, rng)
        visible &= hand < 0.5
    photo = _photometric(canvas, rng)
    return PhotoView(photo, visible)


def held_in_a_hand(
    image: np.ndarray, product: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (H x W x 3 uint8 RGB) with a hand holding the product that lies where
    ``product`` (H x W bool) is: a palm beside one of its edges, four fingers reaching
    over it. Returns the picture and the hand's soft mask (H x W, 0..1)."""
    h, w = product.shape
    hand = _hand((w, h), product, rng)
    return _composite(image, _skin((w, h), rng), hand), hand


def _background(
    size: tuple[int, int], rng: np.random.Generator, clutter: Sequence[np.ndarray]
) -> np.ndarray:
    """A desk-like texture, then (usually) crops of other products scattered on it,
    slightly defocused as things beside the photographed product are."""
    w, h = size
    # Drawn at half resolution (4x fewer pixels to compute) and scaled up: it is smooth.
    hw, hh = (w + 1) // 2, (h + 1) // 2
    grey = rng.uniform(50, 220)
    base = grey + rng.uniform(-40, 40, size=3).astype(np.float32)  # muted, like desks and walls
    gy, gx = np.mgrid[0:hh, 0:hw].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * gx + np.sin(angle) * gy) / max(hw, hh)
    out = base + rng.uniform(-40, 40) * ramp[..., None]
    if rng.random() < 0.5:  # wood grain / fabric stripes
        period = rng.uniform(3, 15)
        stripes = np.sin(2 * np.pi * (gy + 3 * np.sin(gx / 20)) / period)
        out += rng.uniform(5, 25) * stripes[..., None]
    smooth = np.clip(out, 0, 255).astype(np.uint8)
    canvas = _noise(cv2.resize(smooth, (w, h)), rng.uniform(2, 10), rng)
    if clutter and rng.random() < 0.8:
        for _ in range(int(rng.integers(2, 7))):
            src = clutter[int(rng.integers(len(clutter)))]
            sh, sw = src.shape[:2]
            ch, cw = (max(1, int(d * rng.uniform(0.3, 1.0))) for d in (sh, sw))
            y0, x0 = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
            scale = rng.uniform(0.2, 0.6) * max(w, h) / max(ch, cw)
            tw, th = max(4, round(cw * scale)), max(4, round(ch * scale))
            crop = cv2.resize(src[y0 : y0 + ch, x0 : x0 + cw], (tw, th))
            if rng.random() < 0.5:
                crop = np.ascontiguousarray(np.rot90(crop, int(rng.integers(1, 4))))
                th, tw = crop.shape[:2]
            top, left = (
                int(rng.integers(-th // 3, h - th // 2)),
                int(rng.integers(-tw // 3, w - tw // 2)),
            )
            y1, y2, x1, x2 = max(0, top), min(h, top + th), max(0, left), min(w, left + tw)
            if y2 > y1 and x2 > x1:
                canvas[y1:y2, x1:x2] = crop[y1 - top : y2 - top, x1 - left : x2 - left]
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 2.0))
    return canvas


def _place(
    image: np.ndarray, mask: np.ndarray, size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The product warped into the frame: scaled so its longer side spans 30-90% of the
    frame, turned (a quarter or half turn one time in four, else up to +-25 degrees) and
    seen at an angle (each corner moved by up to 12% of the product's size)."""
    w, h = size
    x0, y0, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
    image, mask = image[y0 : y0 + bh, x0 : x0 + bw], mask[y0 : y0 + bh, x0 : x0 + bw]
    ih, iw = image.shape[:2]
    quarter = int(rng.integers(1, 4)) if rng.random() < 0.25 else 0
    angle = np.deg2rad(90 * quarter + rng.uniform(-25, 25))
    extent = rng.uniform(0.3, 0.9) * min(w, h)  # fits the turned product in the frame
    scale = extent / max(iw, ih)
    half = np.array([[-iw, -ih], [iw, -ih], [iw, ih], [-iw, ih]], np.float32) * scale / 2
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    jitter = rng.uniform(-0.12, 0.12, size=(4, 2)) * extent
    # The centre may sit off-centre, but the product stays mostly inside the frame.
    centre = np.array([rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h])
    dst = (half @ rot.T + jitter + centre).astype(np.float32)
    src = np.array([[0, 0], [iw, 0], [iw, ih], [0, ih]], np.float32)
    homography = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(image, homography, size, flags=cv2.INTER_LINEAR)
    soft = cv2.warpPerspective(mask.astype(np.float32), homography, size, flags=cv2.INTER_LINEAR)
    return warped, soft


def _hand(size: tuple[int, int], visible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft mask (H x W float) of a hand holding the product: a palm ellipse centred
    near the product's edge, with four fingers reaching over it."""
    w, h = size
    x0, y0, bw, bh = cv2.boundingRect(visible.astype(np.uint8))
    if not bw:
        return np.zeros((h, w), np.float32)
    x1, y1 = x0 + bw - 1, y0 + bh - 1
    extent = max(x1 - x0, y1 - y0)
    side = int(rng.integers(4))  # which edge of the product the hand holds
    t = rng.uniform(0.2, 0.8)
    cx, cy = [
        (x0 + t * (x1 - x0), y1),
        (x0 + t * (x1 - x0), y0),
        (x0, y0 + t * (y1 - y0)),
        (x1, y0 + t * (y1 - y0)),
    ][side]
    inward = np.deg2rad([270.0, 90.0, 0.0, 180.0][side] + rng.uniform(-30, 30))
    palm = extent * rng.uniform(0.12, 0.2)
    # The palm sits mostly outside the product; the fingers reach in.
    px, py = cx - 0.6 * palm * np.cos(inward), cy - 0.6 * palm * np.sin(inward)
    out = np.zeros((h, w), np.uint8)
    cv2.ellipse(
        out,
        (round(px), round(py)),
        (round(palm), round(palm * 0.75)),
        float(np.rad2deg(inward)),
        0,
        360,
        255,
        -1,
    )
    direction = np.array([np.cos(inward), np.sin(inward)])
    across = np.array([-direction[1], direction[0]])
    finger_w, finger_l = palm * 0.3, palm * rng.uniform(1.0, 1.8)
    for k in range(4):
        base = np.array([px, py]) + across * (k - 1.5) * finger_w * 1.15 + direction * palm * 0.3
        tip = base + direction * finger_l * (1.0 - 0.15 * abs(k - 1.5))
        corners = np.array(
            [
                base - across * finger_w / 2,
                base + across * finger_w / 2,
                tip + across * finger_w / 2,
                tip - across * finger_w / 2,
            ]
        )
        cv2.fillConvexPoly(out, np.round(corners).astype(np.int32), 255)
        cv2.circle(out, tuple(np.round(tip).astype(int)), round(finger_w / 2), 255, -1)
    soft: np.ndarray = cv2.GaussianBlur(out.astype(np.float32) / 255.0, (0, 0), 1.5)
    return soft


def _skin(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A skin-coloured layer, lit from one side."""
    w, h = size
    tone = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))] * rng.uniform(0.9, 1.1)
    shade = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(1.0, 1.15), w, dtype=np.float32)
    layer = tone[None, None, :] * shade[None, :, None] * np.ones((h, 1, 1), np.float32)
    out: np.ndarray = np.clip(layer, 0, 255).astype(np.uint8)
    return out


def _noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``img`` plus grey Gaussian noise, saturated to 0..255: a random window of one
    fixed noise field (drawing fresh normals for every pixel took 2 ms a call)."""
    h, w = img.shape[:2]
    y, x = int(rng.integers(_NOISE.shape[0] - h + 1)), int(rng.integers(_NOISE.shape[1] - w + 1))
    noise = sigma * _NOISE[y : y + h, x : x + w]
    out: np.ndarray = cv2.add(img, cv2.merge([noise] * 3), dtype=cv2.CV_8U)
    return out


def _composite(below: np.ndarray, above: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``above`` over ``below`` with opacity ``alpha`` (H x W float in 0..1)."""
    alpha = alpha.astype(np.float32)
    out: np.ndarray = cv2.blendLinear(above, below, alpha, 1.0 - alpha)
    return out


def _photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting and camera: glare, mild colour temperature and brightness shifts, blur,
    sensor noise, low-quality JPEG."""
    h, w = img.shape[:2]
    out = img
    if rng.random() < 0.5:  # glare: a bright soft ellipse (a lamp on glossy print)
        small = np.zeros((h // 4, w // 4), np.float32)  # smooth: drawn at 1/4 size
        centre = (int(rng.integers(w // 4)), int(rng.integers(h // 4)))
        axes = (int(rng.uniform(0.05, 0.3) * w / 4), int(rng.uniform(0.03, 0.2) * h / 4))
        cv2.ellipse(small, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        small = cv2.GaussianBlur(small, (0, 0), max(axes) * 0.4 + 1)
        glare = cv2.resize(rng.uniform(80, 200) * small, (w, h)).astype(np.uint8)
        out = cv2.add(out, cv2.cvtColor(glare, cv2.COLOR_GRAY2RGB))
    # Mild on purpose: colour is part of "looks alike" (the colour histogram is blended
    # into the embedding), so the model must not learn to ignore it.
    warm, gain = rng.uniform(-0.08, 0.08), rng.uniform(0.8, 1.15)
    levels = np.arange(256, dtype=np.float32)[:, None]
    lut = np.clip(levels * np.array([1 + warm, 1.0, 1 - warm]) * gain, 0, 255).astype(np.uint8)
    out = cv2.LUT(out, lut[None])
    blur = rng.random()
    if blur < 0.3:
        length = int(rng.integers(3, 10))
        line = np.zeros((length, length), np.float32)
        line[length // 2] = 1.0
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(line, rot, (length, length))
        out = cv2.filter2D(out, -1, kernel / np.float32(max(float(kernel.sum()), 1e-6)))
    elif blur < 0.6:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.8))
    out = _noise(out, rng.uniform(0, 4), rng)  # sensor noise
    quality = int(rng.integers(30, 86))
    _, jpeg = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None  # OpenCV decodes the JPEG it just encoded
    return np.ascontiguousarray(decoded[..., ::-1])
