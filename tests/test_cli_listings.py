"""``lookalike search``: the listings of one photo as one result, in the table and in
``--json``; ``--no-group-listings`` shows each on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from lookalike.cli import app
from tests.conftest import write_catalog

pytestmark = pytest.mark.dataset


def test_search_shows_copies_of_a_photo_as_one_result(
    tmp_path: Path,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
) -> None:
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOKALIKE_MODEL_CACHE", str(model_cache))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    rows = dataset_rows[:5]
    catalog = write_catalog(tmp_path / "catalog.csv", dataset, rows)
    with Image.open(dataset / rows[2]["file"]) as photo:
        ImageOps.mirror(photo.convert("RGB")).save(tmp_path / "mirrored.jpg", quality=60)
    with catalog.open("a") as f:
        f.write(f"copy-1,{tmp_path / 'mirrored.jpg'},A mirrored copy,,,,\n")
    code, out = run("ingest", str(catalog))
    assert code == 0, out
    query = str(dataset / rows[2]["file"])
    group = {rows[2]["id"], "copy-1"}

    code, out = run("search", query, "-k", "3", "--json")
    assert code == 0, out
    results: list[dict[str, Any]] = json.loads(out)["results"]
    first = results[0]
    assert {first["product"]["sku"], *(p["sku"] for p in first["listings"])} == group
    assert set(first["listings"][0]) >= {"sku", "title", "price", "image_url"}
    assert len(results) == 3 and not group & {r["product"]["sku"] for r in results[1:]}

    code, out = run("search", query, "-k", "3")
    assert code == 0 and "same photo" in out, out
    other = (group - {first["product"]["sku"]}).pop()
    assert other in out

    code, out = run("search", query, "-k", "3", "--json", "--no-group-listings")
    assert code == 0, out
    results = json.loads(out)["results"]
    assert group <= {r["product"]["sku"] for r in results}
    assert all(r["listings"] == [] for r in results)
    code, out = run("search", query, "-k", "3", "--no-group-listings")
    assert code == 0 and "same photo" not in out, out

    # "More like this" takes the same switch: ungrouped, the copy is a result of its own.
    code, out = run("similar", rows[2]["id"], "-k", "2", "--json", "--no-group-listings")
    assert code == 0, out
    assert "copy-1" in {r["product"]["sku"] for r in json.loads(out)["results"]}
