"""The bad-image corpus and the formats catalog photos come in."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import (
    CorruptImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    NotAnImageError,
)
from lookalike.images.loader import load_image, read_image_bytes

MAX_PIXELS = 50_000_000


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _load(data: bytes, *, target_size: int | None = None) -> Image.Image:
    return load_image(data, "test-image", max_pixels=MAX_PIXELS, target_size=target_size).pixels


def test_plain_jpeg_decodes_to_rgb_with_sha() -> None:
    data = _encode(Image.new("RGB", (40, 30), (200, 10, 10)), "JPEG")
    loaded = load_image(data, "x.jpg", max_pixels=MAX_PIXELS)
    assert loaded.pixels.mode == "RGB"
    assert (loaded.width, loaded.height) == (40, 30)
    assert loaded.format == "JPEG"
    assert len(loaded.sha256) == 64


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(NotAnImageError, match="empty"):
        read_image_bytes(empty, 10_000)
    with pytest.raises(NotAnImageError, match="empty"):
        _load(b"")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError) as info:
        read_image_bytes(tmp_path / "nope.jpg", 10_000)
    assert "nope.jpg" in str(info.value)


def test_file_over_byte_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 5000)
    with pytest.raises(ImageTooLargeError, match="5000 bytes"):
        read_image_bytes(big, 4096)


def test_text_renamed_jpg() -> None:
    with pytest.raises(NotAnImageError, match="not a recognised image"):
        _load(b"name,price\nshoe,12\n")


def test_corrupt_bytes_after_jpeg_header() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises((CorruptImageError, NotAnImageError)):
        _load(b"\xff\xd8\xff\xe0" + rng.bytes(4000))


def test_truncated_jpeg() -> None:
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8))
    data = _encode(noisy, "JPEG", quality=95)
    with pytest.raises(CorruptImageError, match=r"truncated|decode"):
        _load(data[: len(data) // 2])


def test_huge_dimensions_refused_before_decoding() -> None:
    # A 30000 x 30000 PNG: tiny on disk, 900 MP in memory (a decompression bomb).
    data = _png_header_only(30000, 30000)
    with pytest.raises(ImageTooLargeError, match="30000x30000"):
        _load(data)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = _encode(Image.new("CMYK", (20, 20), (0, 255, 255, 0)), "JPEG")
    px = np.asarray(_load(data))
    assert px.shape == (20, 20, 3)
    assert px[..., 0].mean() > 200 and px[..., 1].mean() < 60  # red stays red


def test_16_bit_png_is_scaled_not_clipped() -> None:
    ramp = (np.linspace(0, 65535, 64 * 16).reshape(16, 64)).astype(np.uint16)
    data = _encode(Image.fromarray(ramp), "PNG")
    px = np.asarray(_load(data))[..., 0].astype(int)
    assert px.min() <= 2 and px.max() >= 253
    # Mid-grey stays mid-grey (clipping to 8 bits would make it 255).
    assert abs(int(px[8, 32]) - round(int(ramp[8, 32]) / 65535 * 255)) <= 1


def test_palette_with_transparency_composited_on_white() -> None:
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    img.paste(1, (0, 0, 5, 10))
    data = _encode(img, "PNG", transparency=0)
    px = np.asarray(_load(data))
    assert tuple(px[5, 8]) == (255, 255, 255)  # transparent -> white background
    assert tuple(px[5, 2]) == (255, 0, 0)


def test_rgba_alpha_composited_on_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 255, 0))
    px = np.asarray(_load(_encode(img, "PNG")))
    assert (px == 255).all()


def test_exif_rotated_jpeg_is_turned_upright() -> None:
    # Stored 40 wide x 20 high, left half red; orientation 6 = rotate 90 clockwise to view.
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    px = np.asarray(_load(_encode(img, "JPEG", exif=exif, quality=95)))
    assert px.shape == (40, 20, 3)  # upright: 20 wide, 40 high
    assert px[5, 10, 0] > 200 and px[35, 10, 0] < 60  # the red half is now on top


def test_grayscale_and_animated_gif_first_frame() -> None:
    gray = np.asarray(_load(_encode(Image.new("L", (8, 8), 77), "PNG")))
    assert gray.shape == (8, 8, 3) and (gray == 77).all()
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    px = np.asarray(_load(buf.getvalue()))
    assert px[4, 4, 0] > 200 and px[4, 4, 2] < 50


def test_unsupported_format_is_refused() -> None:
    img = Image.new("RGB", (8, 8))
    with pytest.raises(NotAnImageError, match="unsupported image format"):
        _load(_encode(img, "PPM"))


def test_large_jpeg_decodes_at_reduced_size() -> None:
    data = _encode(Image.new("RGB", (2000, 1600), (10, 200, 10)), "JPEG")
    loaded = load_image(data, "big.jpg", max_pixels=MAX_PIXELS, target_size=448)
    assert 448 <= min(loaded.pixels.size) < 1600
    # The size is the file's, so that crop boxes and stored sizes mean its pixels.
    assert (loaded.width, loaded.height) == (2000, 1600)


def test_size_is_the_files_after_exif_orientation() -> None:
    img = Image.new("RGB", (2000, 1600), (10, 200, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # turned 90 degrees
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    loaded = load_image(buf.getvalue(), "turned.jpg", max_pixels=MAX_PIXELS, target_size=448)
    assert (loaded.width, loaded.height) == (1600, 2000)
    assert loaded.pixels.height > loaded.pixels.width


def test_broken_gifs_are_corrupt_images_not_crashes() -> None:
    # Issue #12 D1: a GIF cut short in its trailer or image descriptor raised IndexError /
    # struct.error from Pillow, outside the errors the loader turned into a clear one.
    import io

    from PIL import Image as PILImage

    from lookalike.errors import CorruptImageError
    from lookalike.images.loader import load_image

    buf = io.BytesIO()
    PILImage.new("P", (8, 8)).save(buf, "GIF")
    for tail in (b"!", b","):
        with pytest.raises(CorruptImageError):
            load_image(buf.getvalue()[:-1] + tail, "t.gif", max_pixels=10**8)
