from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.images.preprocess import INPUT_SIZE, model_input, to_square, trim_background


def _product_on_white(w: int = 300, h: int = 400) -> Image.Image:
    arr = np.full((h, w, 3), 255, dtype=np.uint8)
    arr[150:250, 100:200] = (20, 40, 200)  # a blue product in the middle
    return Image.fromarray(arr)


def test_every_mode_gives_a_model_sized_square() -> None:
    for mode in ("trim", "pad", "crop"):
        sq = to_square(_product_on_white(), mode)
        assert sq.shape == (INPUT_SIZE, INPUT_SIZE, 3) and sq.dtype == np.uint8


def test_trim_makes_the_product_fill_the_frame() -> None:
    img = _product_on_white()

    def blue(sq: np.ndarray) -> float:
        return float(((sq[..., 2] > 150) & (sq[..., 0] < 100)).mean())

    assert blue(to_square(img, "trim")) > 0.7
    assert blue(to_square(img, "pad")) < 0.15


def test_pad_keeps_a_wide_product_whole_while_crop_cuts_it() -> None:
    arr = np.full((100, 400, 3), 255, dtype=np.uint8)
    arr[:, :10] = (255, 0, 0)  # red tip at the far left of a wide product
    img = Image.fromarray(arr)
    assert (to_square(img, "pad")[..., 1] < 100).any()
    assert not (to_square(img, "crop")[..., 1] < 100).any()


def test_trim_leaves_photos_without_white_background_alone() -> None:
    arr = np.full((50, 60, 3), 90, dtype=np.uint8)
    assert trim_background(arr).shape == arr.shape


def test_model_input_scaling_matches_tensorflow_lite_training() -> None:
    x = model_input([np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4, 3), np.uint8)])
    assert x.shape == (2, 3, 4, 4)
    assert np.isclose(x[0].max(), (255 - 127) / 128) and np.isclose(x[1].min(), -127 / 128)
