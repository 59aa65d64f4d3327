"""One loader for every image: bytes in, an 8-bit RGB picture out, or a typed error.

Handles EXIF orientation, palette and alpha (composited on white, like catalog photos),
CMYK, 16-bit and float images, grayscale and animated files (first frame), with limits
on bytes and pixels checked before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lookalike.errors import (
    CorruptImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    NotAnImageError,
)

# We enforce our own pixel limit (below); Pillow's global one would raise a bare warning/error.
Image.MAX_IMAGE_PIXELS = None

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


@dataclass(frozen=True)
class LoadedImage:
    """A decoded picture and the facts about the file it came from."""

    pixels: Image.Image  # mode RGB; a big JPEG may be decoded smaller (``target_size``)
    sha256: str
    format: str
    width: int  # of the picture in the file, after EXIF orientation (not of ``pixels``)
    height: int


def read_image_bytes(path: Path, max_bytes: int) -> bytes:
    """Read a file, refusing missing files and files over ``max_bytes``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageNotFoundError(str(path), "file not found") from None
    except OSError as exc:
        raise ImageNotFoundError(str(path), f"cannot read file: {exc.strerror}") from None
    if not path.is_file():
        raise ImageNotFoundError(str(path), "not a regular file")
    if size > max_bytes:
        raise ImageTooLargeError(str(path), f"file is {size} bytes, limit is {max_bytes}")
    if size == 0:
        raise NotAnImageError(str(path), "file is empty (0 bytes)")
    return path.read_bytes()


def load_image(
    data: bytes,
    source: str,
    *,
    max_pixels: int,
    target_size: int | None = None,
) -> LoadedImage:
    """Decode ``data`` into an RGB image.

    ``source`` names the file or upload in error messages. ``target_size`` lets JPEG
    decoding skip detail it would throw away (DCT scaling), which is much faster for big
    photos; the result is then at least ``target_size`` on its shorter side.
    """
    if not data:
        raise NotAnImageError(source, "file is empty (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImageError(source, "not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise CorruptImageError(source, f"cannot read image header: {exc}") from None

    with img:
        fmt = img.format or "unknown"
        if fmt not in ACCEPTED_FORMATS:
            raise NotAnImageError(source, f"unsupported image format {fmt}")
        width, height = img.size
        if width <= 0 or height <= 0:
            raise CorruptImageError(source, f"invalid dimensions {width}x{height}")
        if width * height > max_pixels:
            raise ImageTooLargeError(
                source, f"{width}x{height} = {width * height} pixels, limit is {max_pixels}"
            )
        try:
            if getattr(img, "is_animated", False):
                img.seek(0)
            if target_size and fmt == "JPEG" and img.mode in ("RGB", "L", "CMYK"):
                # Ask libjpeg for a downscaled decode no smaller than the target.
                img.draft(img.mode, (target_size, target_size))
            img.load()
            orientation = img.getexif().get(_ORIENTATION_TAG)
            rgb = _apply_orientation(_to_rgb(img), orientation)
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(source, str(exc)) from None
        except Exception as exc:  # Pillow's decoders raise IndexError, struct.error, ...
            raise CorruptImageError(source, f"cannot decode image: {exc}") from None
    if orientation in _TURNED:
        width, height = height, width
    return LoadedImage(rgb, digest, fmt, width, height)


_ORIENTATION_TAG = 0x0112
_TURNED = {5, 6, 7, 8}  # orientations that swap width and height


def _apply_orientation(rgb: Image.Image, orientation: int | None) -> Image.Image:
    """Turn the pixels upright as the EXIF orientation tag says (the tag is read before
    mode conversion, which may drop it)."""
    transpose = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation or 1)
    return rgb.transpose(transpose) if transpose is not None else rgb


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency becomes white."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Scale high-bit-depth pixels instead of clipping them to 255.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode in ("I", "F") and float(arr.max()) <= 255.0:
            top = 255.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
