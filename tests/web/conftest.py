"""What the browser tests share: Debian's Chromium through Playwright, a page on the
module's ``server`` fixture, and screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.ingest.readers import read_catalog
from tests.conftest import write_catalog
from tests.server import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web" / "dist"
CHROMIUM = os.environ.get("LOOKALIKE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("LOOKALIKE_SCREENSHOTS", REPO / "reports" / "screenshots"))


def need(condition: bool, why: str) -> None:
    """Skip (or, in CI with LOOKALIKE_REQUIRE_BROWSER set, fail) unless ``condition``."""
    if condition:
        return
    if os.environ.get("LOOKALIKE_REQUIRE_BROWSER"):
        pytest.fail(why)
    pytest.skip(why)


def shot(page: Page, name: str, full_page: bool = True) -> Path:
    """A screenshot under SHOTS (``name`` may hold a sub-folder)."""
    path = SHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


def drag_crop(page: Page, left: float, top: float, right: float, bottom: float) -> None:
    """Draw a crop box on the query image (fractions of its size), as a person would."""
    box = page.get_by_test_id("query-image").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * left, box["y"] + box["height"] * top)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * right, box["y"] + box["height"] * bottom, steps=8)
    page.mouse.up()
    page.get_by_text("Searching the selected region.").wait_for()


@contextmanager
def catalog_server(
    home: Path, model_cache: Path, catalog: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Ingest ``catalog`` into ``home`` and serve it, with the built front end, from a
    real server process; yields the base URL."""
    need((WEB / "index.html").exists(), f"front end not built at {WEB} (run `make web`)")
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    engine = Engine(Settings(home=home, model_cache=model_cache, _env_file=None))
    engine.ingest(read_catalog(catalog).records)
    engine.close()
    base_env = {
        "LOOKALIKE_HOME": str(home),
        "LOOKALIKE_MODEL_CACHE": str(model_cache),
        "LOOKALIKE_WEB_DIR": str(WEB),
    }
    with running_server({**base_env, **(env or {})}) as base:
        yield base


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> Iterator[str]:
    """A module's server, unless the module has its own: 60 dev photos (the even rows,
    so the odd ones are photos of products it does not have)."""
    home = tmp_path_factory.mktemp("web-home")
    catalog = write_catalog(home / "catalog.csv", dataset, dataset_rows[::2][:60])
    with catalog_server(home, model_cache, catalog) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
