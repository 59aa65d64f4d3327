"""POST /api/v1/search with uploads, base64 and URLs; its errors."""

from __future__ import annotations

import base64
import functools
import http.server
import io
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike.api.app import create_app
from lookalike.config import Settings
from tests.api.conftest import QuietHandler, oversized_body

if TYPE_CHECKING:
    import httpx2  # what TestClient's responses are

pytestmark = pytest.mark.dataset


def _photo(dataset: Path, row: dict[str, str]) -> bytes:
    return (dataset / row["file"]).read_bytes()


def test_upload_finds_the_product_itself(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    row = api_rows[4]
    r = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", _photo(dataset, row), "image/jpeg")},
        data={"k": "5"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 5 and body["took_ms"] > 0
    first = body["results"][0]
    assert first["product"]["sku"] == row["id"] and first["score"] > 0.99
    assert first["match"] == "exact" and first["inliers"] >= 15
    assert all(r["match"] == "similar" for r in body["results"][1:])
    assert first["product"]["thumbnail_url"].endswith("?size=thumb")


def test_json_base64_and_filters(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    payload = {
        "image_base64": base64.b64encode(_photo(dataset, api_rows[0])).decode(),
        "k": 4,
        "max_price": 20,
    }
    r = client.post("/api/v1/search", json=payload)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 4 and all(x["product"]["price"] <= 20 for x in results)
    # A category no product has: said, not an empty list (issue #12, new-user 8).
    r = client.post("/api/v1/search", json={**payload, "category": "Spaceships"})
    assert r.status_code == 404 and r.json()["category"] == "Spaceships"
    assert "Spaceships" in r.json()["detail"] and "categories" in r.json()["detail"]


def test_crop_box_is_applied(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    img = Image.open(dataset / api_rows[1]["file"])
    r = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", _photo(dataset, api_rows[1]), "image/jpeg")},
        data={"crop": f"10,20,{img.width // 2},{img.height // 2}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["query"]["crop"] == {
        "x": 10,
        "y": 20,
        "w": img.width // 2,
        "h": img.height // 2,
    }
    assert r.json()["query"]["width"] == img.width // 2
    bad = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", _photo(dataset, api_rows[1]), "image/jpeg")},
        data={"crop": "0,0,5000,10"},
    )
    assert bad.status_code == 400 and "outside" in bad.json()["detail"]


def _problem(r: httpx2.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"] and body["title"]
    return body


def test_not_an_image_is_415_by_content_not_name(client: TestClient) -> None:
    r = client.post(
        "/api/v1/search", files={"image": ("shoe.jpg", b"plain text, not a photo", "image/jpeg")}
    )
    assert "not a recognised image" in _problem(r, 415)["detail"]


def test_truncated_image_is_400(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    data = _photo(dataset, api_rows[2])
    _problem(
        client.post(
            "/api/v1/search", files={"image": ("t.jpg", data[: len(data) // 3], "image/jpeg")}
        ),
        400,
    )


def test_decompression_bomb_is_413(client: TestClient) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    ihdr = (40000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    _problem(client.post("/api/v1/search", files={"image": ("b.png", png, "image/png")}), 413)


def test_parameter_errors(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    photo = _photo(dataset, api_rows[0])
    _problem(client.post("/api/v1/search", files={"image": ("q.jpg", photo)}, data={"k": "0"}), 422)
    # A form field's 422 lists its errors like a query parameter's (issue #12, new-user 5).
    form = client.post("/api/v1/search", files={"image": ("q.jpg", photo)}, data={"k": "0"})
    query = client.get(f"/api/v1/products/{api_rows[0]['id']}/similar", params={"k": "0"})
    for r in (form, query):
        errors = _problem(r, 422)["errors"]
        assert errors and errors[0]["loc"][-1] == "k" and errors[0]["msg"], r.text
    no_image = client.post("/api/v1/search", data={"k": "3"}, files={"other": ("x", b"1")})
    missing = _problem(no_image, 422)
    assert missing["errors"] == [{"loc": ["body", "image"], "msg": missing["errors"][0]["msg"]}]
    _problem(
        client.post("/api/v1/search", files={"image": ("q.jpg", photo)}, data={"k": "101"}), 422
    )
    _problem(client.post("/api/v1/search", data={"k": "3"}, files={"other": ("x", b"1")}), 422)
    _problem(client.post("/api/v1/search", json={"k": 3}), 422)
    _problem(client.post("/api/v1/search", json={"image_base64": "***"}), 400)
    _problem(
        client.post("/api/v1/search", content=b"raw", headers={"content-type": "text/plain"}), 415
    )
    r = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", photo)},
        data={"min_price": "9", "max_price": "1"},
    )
    _problem(r, 400)


def test_oversized_upload_is_413(client: TestClient, api_settings: Settings) -> None:
    big = b"\xff" * (api_settings.max_upload_bytes + 200_000)
    r = client.post("/api/v1/search", files={"image": ("big.jpg", big)})
    _problem(r, 413)
    mib = api_settings.max_upload_bytes / 2**20
    assert r.json()["detail"] == f"request body over the {mib:g} MiB limit"  # as the README


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.jpg",
        "http://localhost/x.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x.jpg",
        "http://[::1]/x.jpg",
        "file:///etc/passwd",
        "ftp://example.com/x.jpg",
        "http://user:pw@example.com/x.jpg",
    ],
)
def test_ssrf_attempts_are_refused(client: TestClient, url: str) -> None:
    body = _problem(client.post("/api/v1/search", json={"image_url": url}), 400)
    assert body["code"] == "unsafe_url"


@pytest.fixture
def image_server(dataset: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving the dev images."""
    handler = functools.partial(QuietHandler, directory=str(dataset))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_image_url_fetched_when_private_addresses_allowed(
    api_settings: Settings,
    image_server: str,
    api_rows: list[dict[str, str]],
) -> None:
    settings = api_settings.model_copy(update={"allow_private_urls": True})
    with TestClient(create_app(settings)) as c:
        r = c.post(
            "/api/v1/search", json={"image_url": f"{image_server}/{api_rows[3]['file']}", "k": 3}
        )
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["product"]["sku"] == api_rows[3]["id"]
        missing = c.post("/api/v1/search", json={"image_url": f"{image_server}/nope.jpg"})
        assert missing.status_code == 400 and "404" in missing.json()["detail"]


def test_concurrent_searches_are_micro_batched(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    photos = [_photo(dataset, r) for r in api_rows[:16]]

    def one(data: bytes) -> int:
        return client.post(
            "/api/v1/search", files={"image": ("q.jpg", data)}, data={"k": "1"}
        ).status_code

    def counts() -> tuple[float, float]:
        """Model calls so far, and those that held one image (the client is shared by the
        package's tests: only the difference counts)."""
        lines = client.get("/metrics").text.splitlines()
        calls = next(x for x in lines if x.startswith("lookalike_embedding_batch_size_count"))
        single = next(x for x in lines if 'batch_size_bucket{le="1.0"}' in x)
        return float(calls.split()[-1]), float(single.split()[-1])

    calls_before, single_before = counts()
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, photos)) == {200}
    calls_after, single_after = counts()
    calls = calls_after - calls_before
    # 16 studio photos, one view each: fewer model calls than photos, because at least one
    # batch held several of them.
    assert calls < 16 and single_after - single_before < calls


def test_png_with_alpha_search_works(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (120, 160), (200, 30, 30, 128)).save(buf, "PNG")
    r = client.post("/api/v1/search", files={"image": ("a.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200 and len(r.json()["results"]) == 12


def test_chunked_upload_without_length_is_cut_off_at_the_limit(
    client: TestClient, api_settings: Settings
) -> None:
    boundary = "xyz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    r = client.post(
        "/api/v1/search",
        content=oversized_body(head, api_settings.max_upload_bytes),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in r.request.headers
    _problem(r, 413)


def test_url_fetch_connects_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.api import fetch

    # The name resolves to a public address at check time; the request must go to that
    # address (with the original Host), so a second DNS answer cannot redirect it.
    monkeypatch.setattr(  # socket: the module fetch resolves names with
        socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 0))]
    )
    target, headers, ext = fetch._pinned(
        "https://shop.example:8443/a.jpg",
        fetch.check_url("https://shop.example:8443/a.jpg", allow_private=False),
    )
    assert target == "https://93.184.216.34:8443/a.jpg"
    assert headers == {"Host": "shop.example:8443"} and ext == {"sni_hostname": "shop.example"}


@pytest.mark.parametrize(
    "size,colour",
    [
        ((1, 1), "black"),
        ((3, 3), "white"),
        ((1, 10_000), "red"),
        ((10_000, 1), "red"),
        ((800, 600), "grey"),
    ],
    ids=["1px", "3px", "1x10000", "10000x1", "uniform"],
)
def test_degenerate_photos_get_similar_results(
    client: TestClient, size: tuple[int, int], colour: str
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    r = client.post("/api/v1/search", files={"image": ("odd.png", buf.getvalue())})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and all(x["match"] == "similar" for x in results)


def test_a_crop_of_a_big_photo_is_in_the_files_own_pixels(
    client: TestClient, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    """A big JPEG is decoded at a fraction of its size (2700 x 1800 at 1/4): the box the
    user drew on it is still in its own pixels, as the web app sends it."""
    side = (1350, 1800)
    left, right = (
        Image.open(dataset / api_rows[n]["file"]).convert("RGB").resize(side) for n in (5, 1)
    )
    canvas = Image.new("RGB", (2 * side[0], side[1]), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (side[0], 0))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    for x, row in ((0, api_rows[5]), (side[0], api_rows[1])):
        r = client.post(
            "/api/v1/search",
            files={"image": ("big.jpg", buf.getvalue(), "image/jpeg")},
            data={"crop": f"{x},0,{side[0]},{side[1]}", "k": "1"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["product"]["sku"] == row["id"]


@pytest.mark.parametrize(
    "crop", ["inf,0,5,5", "0,0,inf,5", "-inf,0,5,5", "1e400,0,5,5", "nan,0,5,5"]
)
def test_crop_that_is_not_a_finite_number_is_400(
    client: TestClient,
    dataset: Path,
    api_rows: list[dict[str, str]],
    crop: str,
) -> None:
    # Issue #12 D2: these gave 500 (OverflowError).
    r = client.post(
        "/api/v1/search",
        files={"image": ("q.jpg", _photo(dataset, api_rows[0]), "image/jpeg")},
        data={"crop": crop},
    )
    assert r.status_code == 400, r.text
