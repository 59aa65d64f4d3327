"""The front end's component tests (Vitest), run as part of the one pytest run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"


def test_vitest_component_tests_pass() -> None:
    if not (WEB / "node_modules").is_dir() or shutil.which("npx") is None:
        reason = "web/node_modules missing (run `make web`) or Node.js not installed"
        if os.environ.get("LOOKALIKE_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        ["npx", "vitest", "run", "--reporter=dot"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "true", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
