"""A real uvicorn process on loopback, searched with a real dev photo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lookalike.config import Settings

pytestmark = pytest.mark.dataset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_uvicorn_process_serves_search(api_settings: Settings, dataset: Path, api_rows) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {
        **os.environ,
        "LOOKALIKE_HOME": str(api_settings.home),
        "LOOKALIKE_MODEL_CACHE": str(api_settings.model_cache),
        "LOOKALIKE_PORT": str(port),
        "LOOKALIKE_HOST": "127.0.0.1",
    }
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, str(root / "app.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.3)
        else:
            raise AssertionError("server did not become ready")
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
    finally:
        proc.terminate()
        proc.wait(timeout=20)
