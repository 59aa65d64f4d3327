"""The built front end as the API serves it: the page for client-side routes, its icon,
and nothing else from the build folder by name."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings


def test_the_page_its_icon_and_no_other_file(api_settings: Settings, tmp_path: Path) -> None:
    web = tmp_path / "dist"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text('<link rel="icon" href="/favicon.svg"><div id="root">')
    (web / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (web / "docs-assets").mkdir()
    (web / "docs-assets" / "swagger-ui-bundle.js").write_text("/* Swagger UI */")
    (tmp_path / "secret.txt").write_text("not served")
    settings = api_settings.model_copy(update={"web_dir": web})
    with TestClient(create_app(settings)) as client:
        page = client.get("/products/some-sku")  # a client-side route
        assert page.status_code == 200 and 'href="/favicon.svg"' in page.text
        icon = client.get("/favicon.svg")
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        docs = client.get("/docs")  # Swagger UI from the build, not a CDN
        assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower()
        assert client.get("/docs-assets/swagger-ui-bundle.js").text == "/* Swagger UI */"
        wrong = client.get("/api/v1/search")  # a POST-only route, asked with GET
        assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
        for missing in ("/favicon.ico", "/index.html.bak", "/..%2Fsecret.txt", "/nope.png"):
            assert client.get(missing).status_code == 404, missing


def test_the_built_page_names_its_icon() -> None:
    html = (Path(__file__).resolve().parents[2] / "web" / "index.html").read_text()
    assert 'rel="icon" href="/favicon.svg"' in html
    assert (Path(__file__).resolve().parents[2] / "web" / "public" / "favicon.svg").is_file()
