"""The search page in a real browser against a real server: a photo whose catalog has
copies of it under other SKUs (mirrored, re-encoded) shows them as one result card, "3
listings of this photo", which opens to list them, each a link to its product."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import append_copies, write_catalog
from tests.web.conftest import catalog_server, shot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.dataset


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> Iterator[str]:
    home = tmp_path_factory.mktemp("listings-home")
    rows = dataset_rows[:8]
    catalog = write_catalog(home / "catalog.csv", dataset, rows)
    append_copies(catalog, dataset / rows[1]["file"])
    with catalog_server(home, model_cache, catalog) as base:
        yield base


def test_listings_of_one_photo_are_one_card_that_opens(
    page: Page, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    group = {dataset_rows[1]["id"], "copy-mirror", "copy-jpeg"}
    page.goto("/")
    page.get_by_test_id("file-input").set_input_files(str(dataset / dataset_rows[1]["file"]))
    cards = page.get_by_test_id("product-card")
    cards.first.wait_for()
    first = cards.first
    head = first.get_attribute("data-sku")
    assert head in group
    # The copies took no card of their own: every card is another photo.
    shown = [c.get_attribute("data-sku") for c in cards.all()]
    assert len(shown) == len(set(shown)) and not (group - {head}) & set(shown)
    summary = first.get_by_text("3 listings of this photo")
    assert summary.is_visible()
    listings = first.get_by_test_id("listing")
    assert not listings.first.is_visible()  # folded until opened
    summary.click()
    listings.first.wait_for()
    others = {listing.get_attribute("data-sku") or "" for listing in listings.all()}
    assert others == group - {head}
    page.wait_for_load_state("networkidle")
    loaded = "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
    assert first.locator(".listings img").evaluate_all(loaded)
    shot(page, "listings")  # reports/ only: dev photos are not published

    # Each listing opens its product, whose similar products group the same way.
    target = sorted(others)[0]
    first.locator(f'[data-testid="listing"][data-sku="{target}"] a').click()
    page.get_by_role("heading", name="Similar products").wait_for()
    assert page.url.endswith(f"/products/{target}")
    similar = page.get_by_test_id("product-card")
    similar.first.wait_for()
    assert similar.first.get_by_text("2 listings of this photo").is_visible()
