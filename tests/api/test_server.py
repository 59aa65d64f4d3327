"""A real uvicorn process on loopback, searched with a real dev photo."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from lookalike.api.app import create_app
from lookalike.config import Settings
from tests.server import running_server

pytestmark = pytest.mark.dataset
REPO = Path(__file__).resolve().parents[2]


def test_uvicorn_process_serves_search(
    api_settings: Settings, dataset: Path, api_rows: list[dict[str, str]]
) -> None:
    env = {
        "LOOKALIKE_HOME": str(api_settings.home),
        "LOOKALIKE_MODEL_CACHE": str(api_settings.model_cache),
    }
    with running_server(env) as base:
        row = api_rows[7]
        r = httpx.post(
            f"{base}/api/v1/search",
            files={"image": ("q.jpg", (dataset / row["file"]).read_bytes(), "image/jpeg")},
            data={"k": "3"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["product"]["sku"] == row["id"]
        # Writes are refused: this server has no API key.
        assert httpx.delete(f"{base}/api/v1/products/{row['id']}", timeout=10).status_code == 403


def test_an_unexpected_error_is_a_problem_on_a_connection_that_stays_open(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue #12 D5: every 500 closed the keep-alive connection (the client's next request
    # got ECONNRESET). Served by uvicorn in this process, so a store call can be broken.
    app = create_app(api_settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

        def broken() -> None:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(app.state.services.engine.store, "categories", broken)
        port = server.servers[0].sockets[0].getsockname()[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/v1/categories")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 500 and r.getheader("content-type") == "application/problem+json"
        assert body["status"] == 500 and "database" not in body["detail"]  # no internals
        sock = conn.sock
        conn.request("GET", "/healthz")  # the same connection, still open
        r = conn.getresponse()
        r.read()
        assert r.status == 200 and conn.sock is sock
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_an_unknown_model_stops_the_server_with_a_sentence(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")},
        "LOOKALIKE_HOME": str(tmp_path / "home"),
        "LOOKALIKE_MODEL": "foo",
        "LOOKALIKE_PORT": "1",  # never reached
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "unknown model 'foo'" in result.stderr and "Traceback" not in result.stderr
