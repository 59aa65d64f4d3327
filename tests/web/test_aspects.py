"""Aspect weights and explanations in a real browser against a real server: the bars and
colour swatches on the result cards, the "Why?" popover, and a preset that searches the
same photo again by its query_id (no second upload), kept in the URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

pytestmark = pytest.mark.dataset


def _colour(page: Page, card: int = 0) -> float:
    meter = (
        page.get_by_test_id("product-card").nth(card).get_by_role("meter", name="Colour similarity")
    )
    return float(meter.get_attribute("aria-valuenow") or "nan")


def _colours(page: Page) -> list[float]:
    return [_colour(page, i) for i in range(page.get_by_test_id("product-card").count())]


def _skus(page: Page) -> list[str]:
    hrefs: list[str] = page.locator("[data-testid=product-card] > a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return hrefs


def test_a_preset_searches_the_same_photo_again_without_uploading_it(
    page: Page, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    searches: list[Request] = []
    page.on("request", lambda r: searches.append(r) if r.url.endswith("/api/v1/search") else None)
    page.goto("/")
    photo = dataset / dataset_rows[1]["file"]  # an odd row: not in the catalog
    with page.expect_response("**/api/v1/search") as first:
        page.get_by_test_id("file-input").set_input_files(str(photo))
    answer = first.value.json()
    cards = page.get_by_test_id("product-card")
    cards.first.wait_for()

    # Bars and swatches on the cards, the photo's own colours next to it.
    card = cards.first
    assert card.get_by_role("meter", name="Shape similarity").is_visible()
    assert 0 <= _colour(page) <= 1
    assert card.locator(".swatch").count() >= 1
    assert (card.locator(".swatch").first.get_attribute("title", timeout=1000) or "").startswith(
        "#"
    )
    assert page.get_by_role("list", name="Colours of your photo").locator(".swatch").count() >= 1
    # The texture slider only when the catalog was embedded with texture.
    has_texture = answer["query"]["aspects"].get("texture") is not None
    assert page.get_by_label("Texture weight").count() == (1 if has_texture else 0)
    assert page.get_by_role("button", name="Balanced").get_attribute("aria-pressed") == "true"

    # "Why?" opens a comparison on click (no hover needed), and Escape closes it.
    card.get_by_role("button", name="Why?").click()
    why = card.get_by_role("region")
    why.wait_for()
    assert why.get_by_text("Your photo").is_visible()
    assert why.get_by_role("meter").count() == (3 if has_texture else 2)
    page.keyboard.press("Escape")
    assert why.count() == 0

    before, colour_before = _skus(page), _colours(page)
    with page.expect_response("**/api/v1/search") as second:
        page.get_by_role("button", name="Same colour").click()
    assert second.value.ok
    page.wait_for_url("**colour=1**")
    page.get_by_text("Looking for look-alikes").wait_for(state="detached")
    after = _skus(page)
    assert after != before  # ranked by colour alone: another order
    # Alike in colour above all: the results are, together, more alike in colour.
    assert sum(_colours(page)) > sum(colour_before)
    assert page.get_by_role("button", name="Same colour").get_attribute("aria-pressed") == "true"

    # One upload; the preset sent JSON naming the kept photo.
    assert len(searches) == 2
    assert searches[0].headers["content-type"].startswith("multipart/form-data")
    assert searches[1].headers["content-type"].startswith("application/json")
    body = json.loads(searches[1].post_data or "{}")
    assert body["query_id"] == answer["query"]["id"]
    assert (body["shape"], body["colour"]) == (0, 1)
    assert "image_base64" not in body and "image_url" not in body

    # The URL holds the weights, so a link reproduces the view.
    query = parse_qs(urlparse(page.url).query)
    assert query["shape"] == ["0"] and query["colour"] == ["1"]
    assert ("texture" in query) == has_texture

    # A slider moved in steps searches once, when the hand rests (debounced).
    slider = page.get_by_label("Shape weight")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_url("**shape=0.15**")
    page.wait_for_load_state("networkidle")
    page.get_by_text("Looking for look-alikes").wait_for(state="detached")
    assert len(searches) == 3
    assert json.loads(searches[2].post_data or "{}")["shape"] == 0.15

    # Opened from the link, the first upload carries the weights.
    page.reload()
    with page.expect_response("**/api/v1/search") as upload:
        page.get_by_test_id("file-input").set_input_files(str(photo))
    used = upload.value.json()["query"]["aspects"]  # the weights, summing to 1
    assert used["shape"] == pytest.approx(0.15 / 1.15, abs=1e-3)
    assert used["colour"] == pytest.approx(1 / 1.15, abs=1e-3)
    cards.first.wait_for()
    assert page.get_by_label("Shape weight").input_value() == "0.15"
