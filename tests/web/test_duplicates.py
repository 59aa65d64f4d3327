"""The Manage page's Duplicates view in a real browser against a real server: a few dev
photos and edited copies of two of them; find the groups, open a product, delete a copy
with the API key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageOps

from tests.conftest import write_catalog
from tests.web.conftest import catalog_server, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.dataset
KEY = "e2e-duplicates-key-42"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> Iterator[str]:
    home = tmp_path_factory.mktemp("duplicates-home")
    rows = dataset_rows[:6]
    catalog = write_catalog(home / "catalog.csv", dataset, rows)
    with catalog.open("a") as f:
        for n, row in enumerate(rows[:2], 1):
            with Image.open(dataset / row["file"]) as photo:
                copy = photo.convert("RGB")
            if n == 1:
                copy = ImageOps.mirror(copy)
            path = home / f"copy-{n}.jpg"
            copy.save(path, quality=55)
            f.write(f"copy-{n},{path},Copy {n},,,,\n")
    with catalog_server(home, model_cache, catalog, {"LOOKALIKE_API_KEYS": KEY}) as base:
        yield base


def test_find_open_and_delete_duplicates(page: Page, dataset_rows: list[dict[str, str]]) -> None:
    page.goto("/manage")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use this key").click()
    view = page.get_by_role("region", name="Duplicates")
    view.get_by_role("button", name="Find duplicates").click()
    status = view.get_by_role("status")
    status.filter(has_text="2 groups of duplicates among 8 products").wait_for()
    groups = view.get_by_test_id("duplicate-group")
    assert groups.count() == 2
    for n in range(2):  # side by side: the catalog's photo and its copy, thumbnails shown
        cards = groups.nth(n).get_by_test_id("duplicate-card")
        assert [c.get_attribute("data-sku") for c in cards.all()] == [
            dataset_rows[n]["id"],
            f"copy-{n + 1}",
        ]
    page.wait_for_load_state("networkidle")
    loaded = "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
    assert view.locator(".dup-group img").evaluate_all(loaded)
    shot(page, "duplicates")  # reports/ only: dev photos are not published

    # Delete a copy: a second click confirms; the groups are found again without it.
    view.get_by_role("button", name="Delete copy-1").click()
    view.get_by_role("button", name="Really delete copy-1").click()
    status.filter(has_text="1 group of duplicates among 7 products").wait_for()
    assert groups.count() == 1

    # Open the remaining group's first product.
    groups.first.get_by_role("link", name="Open").first.click()
    page.get_by_role("heading", name="Similar products").wait_for()
    assert page.url.endswith(f"/products/{dataset_rows[1]['id']}")


def test_deleting_without_the_key_says_why(page: Page) -> None:
    page.goto("/manage")
    view = page.get_by_role("region", name="Duplicates")
    view.get_by_role("button", name="Find duplicates").click()
    groups = view.get_by_test_id("duplicate-group")
    groups.first.wait_for()
    before = groups.count()
    view.get_by_role("button", name="Delete copy-2").click()
    view.get_by_role("button", name="Really delete copy-2").click()
    alert = view.get_by_role("alert")
    alert.wait_for()
    assert "key" in alert.inner_text().lower()
    assert groups.count() == before  # nothing was deleted
