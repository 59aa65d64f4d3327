"""Synthetic shopper-photo views: shape, determinism, the product still in the picture."""

from __future__ import annotations

import numpy as np

from lookalike.training.photo_views import PHOTO_LONG_SIDE, photo_view, product_mask


def _product(colour: tuple[int, int, int], white_margin: bool) -> np.ndarray:
    """A 200 x 160 picture: a coloured box with a stripe pattern (on white, or filling
    the frame like a DVD cover)."""
    img = np.full((200, 160, 3), 255 if white_margin else colour, np.uint8)
    inner = img[30:170, 25:135] if white_margin else img
    inner[:] = colour
    inner[::10] = (20, 20, 20)
    return img


def test_product_mask_drops_the_studio_background_only() -> None:
    on_white = _product((200, 40, 40), white_margin=True)
    on_white[80:100, 60:100] = 255  # a white logo inside the product stays product
    mask = product_mask(on_white)
    assert not mask[:30].any() and not mask[:, :25].any()
    assert mask[30:170, 25:135].all()
    cover = _product((40, 40, 200), white_margin=False)
    assert product_mask(cover).all()


def test_views_are_phone_photos_and_deterministic_per_seed() -> None:
    product = _product((40, 160, 60), white_margin=True)
    clutter = [_product((30, 30, 200), white_margin=False)]
    views = [photo_view(product, np.random.default_rng(7), clutter) for _ in range(2)]
    other = photo_view(product, np.random.default_rng(8), clutter)
    for v in views:
        assert v.image.dtype == np.uint8 and v.image.ndim == 3 and v.image.shape[2] == 3
        assert max(v.image.shape[:2]) == PHOTO_LONG_SIDE
        assert sorted(v.image.shape[:2]) == [336, 448]  # 4:3, landscape or portrait
        assert v.product_mask.shape == v.image.shape[:2] and v.product_mask.dtype == bool
    assert np.array_equal(views[0].image, views[1].image)
    assert np.array_equal(views[0].product_mask, views[1].product_mask)
    assert not np.array_equal(views[0].image, other.image)


def test_the_product_stays_partly_visible_and_looks_like_itself() -> None:
    green = (40, 160, 60)
    product = _product(green, white_margin=True)
    clutter = [_product((30, 30, 200), white_margin=False)]  # blue: never confused with green
    rng = np.random.default_rng(0)
    for _ in range(30):
        view = photo_view(product, rng, clutter)
        visible = view.product_mask
        frame = visible.size
        assert 0.02 * frame < visible.sum() < 0.95 * frame  # there, and not the whole photo
        pixels = view.image[visible].astype(int)
        greenish = (pixels[:, 1] > pixels[:, 0] + 30) & (pixels[:, 1] > pixels[:, 2] + 30)
        assert greenish.mean() > 0.4  # mostly the product's own colour where it shows


def test_odd_shapes_still_give_a_photo() -> None:
    """A 2 x 300 px banner product among 3 x 5 px clutter, all white: no crash."""
    rng = np.random.default_rng(1)
    for product in (np.zeros((2, 300, 3), np.uint8), np.full((50, 50, 3), 255, np.uint8)):
        for _ in range(10):
            view = photo_view(product, rng, [np.zeros((3, 5, 3), np.uint8)])
            assert view.image.shape[2] == 3 and view.image.dtype == np.uint8
