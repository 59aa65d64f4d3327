"""The web client's types are generated from the API's schema: neither committed file may
drift from the code (regenerate both with `npm run generate-api` in web/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lookalike.api.openapi_export import render

WEB = Path(__file__).resolve().parents[2] / "web"
REGENERATE = "regenerate with `npm run generate-api` in web/ and commit the result"


def test_committed_openapi_schema_is_the_apps() -> None:
    committed = (WEB / "openapi.json").read_text()
    assert render() == committed, f"web/openapi.json differs from the API's schema: {REGENERATE}"


def test_committed_typescript_is_generated_from_the_schema() -> None:
    generator = WEB / "node_modules" / ".bin" / "openapi-typescript"
    if not generator.exists() or shutil.which("npm") is None:
        reason = "web/node_modules missing (run `make web`) or Node.js not installed"
        if os.environ.get("LOOKALIKE_REQUIRE_BROWSER"):  # CI: the web checks must run
            pytest.fail(reason)
        pytest.skip(reason)
    # The package.json script, so the generator's options have one definition.
    result = subprocess.run(
        ["npm", "run", "--silent", "api-types"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    committed = (WEB / "src" / "lib" / "api-schema.ts").read_text()
    assert result.stdout == committed, f"web/src/lib/api-schema.ts is out of date: {REGENERATE}"


def test_every_schema_reference_resolves() -> None:
    """A reference to an unregistered model breaks /docs and the code generator."""
    schema = json.loads(render())
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', render()))
    assert "SearchRequest" in refs
    assert refs <= set(schema["components"]["schemas"])
