"""Background imports: progress, per-row errors, hostile archives, restarts."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.config import Settings
from tests.api.conftest import AUTH, QuietHandler

pytestmark = pytest.mark.dataset


def _wait(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/imports/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"import {job_id} did not finish")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_csv_with_zip_imports_with_row_errors(
    client: TestClient, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    rows = dataset_rows[100:110]
    images = {f"img/{r['id']}.jpg": (dataset / r["file"]).read_bytes() for r in rows}
    images["img/broken.jpg"] = b"not an image"
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["sku", "image", "title", "category"])
    for r in rows:
        w.writerow([f"imp-{r['id']}", f"img/{r['id']}.jpg", r["title"], r["category"]])
    w.writerow(["imp-broken", "img/broken.jpg", "x", "y"])
    w.writerow(["imp-escape", "/etc/passwd", "x", "y"])
    w.writerow(["imp-dotdot", "../../catalog.db", "x", "y"])
    w.writerow(["", "img/x.jpg", "no sku", "y"])
    started = client.post(
        "/api/v1/imports",
        files={"catalog": ("c.csv", out.getvalue().encode()), "images": ("i.zip", _zip(images))},
        headers=AUTH,
    )
    assert started.status_code == 202, started.text
    job = _wait(client, started.json()["id"])
    assert job["status"] == "done", job
    assert job["added"] == 10 and job["processed"] == job["total"] == 14
    reasons = {e["sku"]: e["reason"] for e in job["errors"]}
    assert "not a recognised image" in reasons["imp-broken"]
    assert "outside the uploaded files" in reasons["imp-escape"]
    assert "outside the uploaded files" in reasons["imp-dotdot"]
    assert any("empty 'sku'" in e["reason"] for e in job["errors"])
    assert client.get(f"/api/v1/products/imp-{rows[0]['id']}").status_code == 200
    for r in rows:
        client.delete(f"/api/v1/products/imp-{r['id']}", headers=AUTH)


def test_zip_slip_and_bad_uploads_are_refused(client: TestClient) -> None:
    csv_bytes = b"sku,image\na,a.jpg\n"
    evil = _zip({"../../evil.txt": b"x"})
    r = client.post(
        "/api/v1/imports",
        files={"catalog": ("c.csv", csv_bytes), "images": ("i.zip", evil)},
        headers=AUTH,
    )
    assert r.status_code == 400 and "escapes" in r.json()["detail"]
    r = client.post(
        "/api/v1/imports",
        files={"catalog": ("c.csv", csv_bytes), "images": ("i.zip", b"PK nonsense")},
        headers=AUTH,
    )
    assert r.status_code == 400 and "zip" in r.json()["detail"]
    r = client.post("/api/v1/imports", files={"catalog": ("c.exe", b"MZ")}, headers=AUTH)
    assert r.status_code == 400
    assert (
        client.post("/api/v1/imports", files={"catalog": ("c.csv", csv_bytes)}).status_code == 401
    )
    assert client.get("/api/v1/imports/no-such-job").status_code == 404


def test_wrong_columns_fail_visibly(client: TestClient) -> None:
    r = client.post(
        "/api/v1/imports", files={"catalog": ("c.csv", b"name,price\nx,1\n")}, headers=AUTH
    )
    job = _wait(client, r.json()["id"])
    assert job["status"] == "failed" and "missing required column 'sku'" in job["message"]


def test_interrupted_job_resumes_after_restart(
    api_settings: Settings, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    from lookalike.engine import Engine

    rows = dataset_rows[120:124]
    folder = api_settings.home / "imports" / "restart-job"
    folder.mkdir(parents=True)
    with (folder / "catalog.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "image"])
        for r in rows:
            (folder / f"{r['id']}.jpg").write_bytes((dataset / r["file"]).read_bytes())
            w.writerow([f"restart-{r['id']}", f"{r['id']}.jpg"])
    engine = Engine(api_settings)  # a job a killed server left 'running'
    engine.store.create_job("restart-job", str(folder / "catalog.csv"))
    engine.store.update_job("restart-job", status="running")
    engine.close()
    with TestClient(create_app(api_settings)) as c:
        job = _wait(c, "restart-job")
        assert job["status"] == "done" and job["added"] == 4
        for r in rows:
            c.delete(f"/api/v1/products/restart-{r['id']}", headers=AUTH)


def test_import_with_image_urls(
    api_settings: Settings, dataset: Path, dataset_rows: list[dict[str, str]]
) -> None:
    import functools
    import http.server
    import threading

    handler = functools.partial(QuietHandler, directory=str(dataset))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = dataset_rows[130:133]
    lines = ["sku,image"] + [f"url-{r['id']},{base}/{r['file']}" for r in rows]
    lines.append(f"url-missing,{base}/images/does-not-exist.jpg")
    try:
        for allow, added in ((False, 0), (True, 3)):
            settings = api_settings.model_copy(update={"allow_private_urls": allow})
            with TestClient(create_app(settings)) as c:
                r = c.post(
                    "/api/v1/imports",
                    files={"catalog": ("c.csv", "\n".join(lines).encode())},
                    headers=AUTH,
                )
                job = _wait(c, r.json()["id"])
                assert job["status"] == "done" and job["added"] == added, job
                reasons = {e["sku"]: e["reason"] for e in job["errors"]}
                if not allow:  # loopback is not a public address: refused, not fetched
                    assert "non-public address" in reasons[f"url-{rows[0]['id']}"]
                else:
                    assert "404" in reasons["url-missing"]
                    product = c.get(f"/api/v1/products/url-{rows[0]['id']}").json()
                    assert product["metadata"]["source_image_url"].startswith(base)
                    for row in rows:
                        c.delete(f"/api/v1/products/url-{row['id']}", headers=AUTH)
    finally:
        server.shutdown()
