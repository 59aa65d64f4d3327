""" "More like this / less like this" marks and several photos as one query, in a real
browser against a real server: a mark re-ranks the same photo by its query_id (JSON, no
second upload), a "less" product disappears, the marks stay in the URL; a second photo is
uploaded once and then searched together with the first (query_ids)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlparse

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Request

pytestmark = pytest.mark.dataset


def _href(sku: str) -> str:
    return f"/products/{quote(sku, safe='')}"


def _skus(page: Page) -> list[str]:
    hrefs: list[str] = page.locator("[data-testid=product-card] > a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return hrefs


def _card(page: Page, sku: str) -> Locator:
    return page.get_by_test_id("product-card").filter(has=page.locator(f'a[href="{_href(sku)}"]'))


def _shown(answer: dict[str, Any]) -> list[str]:
    return [_href(r["product"]["sku"]) for r in answer["results"]]


def _settled(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.get_by_text("Looking for look-alikes").wait_for(state="detached")


def test_marks_rerank_and_a_second_photo_searches_together(
    page: Page, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    searches: list[Request] = []
    page.on("request", lambda r: searches.append(r) if r.url.endswith("/api/v1/search") else None)
    page.goto("/")
    with page.expect_response("**/api/v1/search") as first:
        # Odd rows are not in the catalog.
        page.get_by_test_id("file-input").set_input_files(str(dataset / dataset_rows[1]["file"]))
    answer = first.value.json()
    query_id = answer["query"]["id"]
    page.get_by_test_id("product-card").first.wait_for()
    more, less = (r["product"]["sku"] for r in answer["results"][:2])

    # Thumb up: the same photo searched again (JSON, by its id) towards the product.
    with page.expect_response("**/api/v1/search") as marked:
        _card(page, more).get_by_role("button", name="More like this").click()
    assert marked.value.ok
    _settled(page)
    up = _card(page, more).get_by_role("button", name="More like this")
    assert up.get_attribute("aria-pressed") == "true"

    # Thumb down: the product is gone from the results, and can be brought back.
    with page.expect_response("**/api/v1/search") as hidden:
        _card(page, less).get_by_role("button", name="Less like this").click()
    assert hidden.value.ok
    _settled(page)
    assert _href(less) not in _skus(page)
    assert _skus(page) == _shown(hidden.value.json())
    assert page.get_by_role("group", name="Your marks").get_by_text("Hidden: 1").is_visible()

    assert len(searches) == 3
    assert searches[0].headers["content-type"].startswith("multipart/form-data")
    for request in searches[1:]:
        assert request.headers["content-type"].startswith("application/json")
    body = json.loads(searches[2].post_data or "{}")
    assert body["query_id"] == query_id
    assert (body["positive"], body["negative"]) == ([more], [less])
    assert "image_base64" not in body and "image_url" not in body

    # The URL holds the marks, so a link reproduces the view.
    query = parse_qs(urlparse(page.url).query)
    assert (query["more"], query["less"]) == ([more], [less])

    # A second photo: uploaded once (multipart), then both searched together with the marks.
    before = _skus(page)
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/search") and "query_ids" in (r.request.post_data or "")
    ) as together:
        page.get_by_test_id("add-photo-input").set_input_files(
            str(dataset / dataset_rows[3]["file"])
        )
    assert together.value.ok
    _settled(page)
    upload = searches[3]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    uploaded = upload.response()
    assert uploaded is not None
    second_id = uploaded.json()["query"]["id"]
    body = json.loads(together.value.request.post_data or "{}")
    assert body["query_ids"] == [query_id, second_id]
    assert (body["positive"], body["negative"]) == ([more], [less])
    assert "query_id" not in body
    result = together.value.json()
    assert result["query"]["photos"] == 2
    page.get_by_text("(2 photos together)").wait_for()
    after = _skus(page)
    assert after == _shown(result) and after != before
    assert _href(less) not in after
    assert page.get_by_test_id("photo-thumb").count() == 2
    assert page.get_by_test_id("query-image").count() == 0  # no cropping with several photos
    assert len(searches) == 5
