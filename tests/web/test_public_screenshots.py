"""Screenshots for the docs, on a catalog whose pictures may be published.

The dev set's photos may not be republished (see its SOURCE.md), so the pictures of
results, crop, catalog and product pages in docs/screenshots come from here: public
domain clip art of the Open Clip Art Library, as Debian ships it (`apt-get install
openclipart-png`; folder configurable with LOOKALIKE_CLIPART_DIR). `make screenshots`
runs this module and copies the pictures into docs/screenshots.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.web.conftest import catalog_server, drag_crop, need, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

CLIPART = Path(os.environ.get("LOOKALIKE_CLIPART_DIR", "/usr/share/openclipart/png"))
# Folders that look like shop departments, and their category names.
DEPARTMENTS = {
    "people/clothing": "Clothing & hats",
    "food/fruit": "Fruit",
    "food/beverages": "Drinks",
    "recreation/music": "Music",
    "recreation/sports": "Sports",
    "tools": "Tools",
    "computer/hardware": "Computers",
    "transportation/vehicles": "Vehicles",
}
QUERY = "people/clothing/hats/hat_01.png"  # held out of the catalog
PER_DEPARTMENT = 40


def write_clipart_catalog(path: Path) -> Path:
    """A CSV catalog of up to PER_DEPARTMENT pictures per department (small files only:
    some clip art is a 100-megapixel poster), with made-up prices for the filters."""
    seen: set[str] = set()
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image", "title", "category", "price", "currency"])
        for folder, category in DEPARTMENTS.items():
            files = sorted(
                p
                for p in (CLIPART / folder).rglob("*.png")
                if p.stat().st_size < 400_000 and p.relative_to(CLIPART).as_posix() != QUERY
            )
            for i, image in enumerate(files[:PER_DEPARTMENT]):
                sku = image.stem.lower()
                if sku in seen:  # the library files a few pictures in two folders
                    continue
                seen.add(sku)
                title = image.stem.replace("_", " ").strip().capitalize()
                w.writerow([sku, image, title, category, 5 + (i * 7) % 60, "EUR"])
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[str]:
    need(
        (CLIPART / QUERY).exists(),
        f"clip art not found at {CLIPART} (apt-get install openclipart-png)",
    )
    home = tmp_path_factory.mktemp("public-home")
    catalog = write_clipart_catalog(home / "catalog.csv")
    with catalog_server(home, model_cache, catalog) as base:
        yield base


def test_screenshots_of_search_crop_catalog_and_product_pages(page: Page) -> None:
    page.goto("/")
    page.get_by_test_id("file-input").set_input_files(str(CLIPART / QUERY))
    page.get_by_test_id("query-image").wait_for()
    cards = page.get_by_test_id("product-card")  # searched on pick
    cards.first.wait_for()
    assert cards.count() >= 10
    page.wait_for_load_state("networkidle")
    shots = [shot(page, "public/search-results")]

    drag_crop(page, 0.15, 0.25, 0.85, 0.75)
    page.get_by_text("(cropped region)").wait_for()  # the region's own results
    page.wait_for_load_state("networkidle")
    shots.append(shot(page, "public/crop"))

    cards.first.locator("a").click()
    page.get_by_role("heading", name="Similar products").wait_for()
    page.get_by_test_id("product-card").first.wait_for()
    page.wait_for_load_state("networkidle")
    shots.append(shot(page, "public/product-page"))

    page.goto("/catalog")
    page.get_by_test_id("product-card").first.wait_for()
    page.wait_for_load_state("networkidle")
    shots.append(shot(page, "public/catalog", full_page=False))  # it scrolls on
    assert all(p.stat().st_size > 10_000 for p in shots)  # pictures, not blank pages
