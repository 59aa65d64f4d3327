"""The command line, end to end, on the 200-image slice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from typer.testing import CliRunner

from lookalike import cli
from lookalike.api.schemas import DuplicateGroup, SearchResult
from lookalike.cli import app
from tests.conftest import write_catalog

pytestmark = pytest.mark.dataset


class Run(Protocol):
    """The ``run`` fixture: the CLI's exit code and output for these arguments."""

    def __call__(self, *args: str) -> tuple[int, str]: ...


@pytest.fixture
def run(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOKALIKE_MODEL_CACHE", str(model_cache))
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    return invoke


def test_full_cycle(
    run: Run, slice_catalog: Path, dataset: Path, dataset_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    code, out = run("ingest", str(slice_catalog))
    assert code == 0, out
    assert "added" in out and "200" in out
    code, out = run("ingest", str(slice_catalog))  # again: nothing new, and it says so
    assert code == 0 and "nothing to embed (200 unchanged)" in out, out

    query = dataset / dataset_rows[3]["file"]
    code, out = run(
        "search", str(query), str(dataset / dataset_rows[4]["file"]), "-k", "4", "--json"
    )
    assert code == 0, out
    docs = [json.loads(line) for line in out.strip().splitlines()]
    assert [d["query"] for d in docs] == [str(query), str(dataset / dataset_rows[4]["file"])]
    first = docs[0]["results"][0]
    assert first["product"]["sku"] == dataset_rows[3]["id"] and first["match"] == "exact"
    # The API's document (api/schemas.SearchResult), the photo as its file.
    image = urlparse(SearchResult.model_validate(first).product.image_url)
    assert image.scheme == "file" and Path(url2pathname(image.path)).samefile(query)

    code, out = run("similar", dataset_rows[3]["id"], "-k", "3", "--json")
    assert code == 0 and len(json.loads(out)["results"]) == 3
    assert set(json.loads(out)["results"][0]["aspects"]) >= {"shape", "colour"}
    code, out = run(
        "similar", dataset_rows[3]["id"], "-k", "3", "--json", "--shape", "0", "--colour", "1"
    )
    assert code == 0, out
    results = json.loads(out)["results"]
    assert [r["score"] for r in results] == pytest.approx(
        [r["aspects"]["colour"] for r in results], abs=1e-3
    )
    code, out = run(
        "search", str(query), "--colour", "1", "--shape", "0", "--texture", "0", "--json"
    )
    assert code == 0 and json.loads(out)["results"][0]["colours"], out

    code, out = run("delete", dataset_rows[3]["id"], "nope")
    assert code == 1 and "deleted 1" in out and "not found" in out

    code, out = run("index", "check", "--json")
    assert code == 0, out
    check = json.loads(out)
    assert check["consistent"] and check["index_count"] == 199
    assert check["local"]["consistent"] and check["local"]["products"] == 199

    code, out = run("index", "rebuild", "--kind", "ivf")
    assert code == 0 and "ivf" in out

    code, out = run("stats", "--json")
    assert code == 0 and json.loads(out)["products"] == 199

    code, out = run("evaluate", "--report-dir", str(tmp_path / "rep"))
    assert code == 0, out
    assert (tmp_path / "rep" / "report.md").exists()

    # Photo queries: catalog photos (found, exact) plus the deleted product's (open set).
    queries = tmp_path / "queries.csv"
    lines = ["image,sku,group"] + [
        f"{dataset / r['file']},{r['id']},{'a' if i % 2 else 'b'}"
        for i, r in enumerate(dataset_rows[:8])
    ]
    queries.write_text("\n".join(lines) + "\n")
    code, out = run("evaluate", "--queries", str(queries), "--report-dir", str(tmp_path / "q"))
    assert code == 0, out
    report = json.loads((tmp_path / "q" / "report.json").read_text())
    assert report["overall"] == {"queries": 7, "recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0}
    assert set(report["per_group"]) == {"a", "b"}
    assert report["exact"]["precision"] == 1.0 and report["exact"]["recall"] == 1.0
    assert report["open_set"] == {"queries": 1, "false_exact_rate": 0.0}
    assert "R@1" in out

    (tmp_path / "noimage.csv").write_text("sku\nx\n")
    code, out = run("evaluate", "--queries", str(tmp_path / "noimage.csv"))
    assert code == 2 and "needs an image column" in out


def test_errors_are_plain_messages(run: Run, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("name\nx\n")
    code, out = run("ingest", str(tmp_path / "bad.csv"))
    assert code == 1 and "missing required column 'sku'" in out and "Traceback" not in out
    code, out = run("similar", "nope")
    assert code == 1 and "no product with SKU 'nope'" in out
    code, out = run("search", str(tmp_path / "missing.jpg"))
    assert code == 1 and "file not found" in out


def test_k_has_the_api_limits(run: Run, tmp_path: Path) -> None:
    from lookalike.api.schemas import SearchRequest
    from lookalike.search.searcher import DEFAULT_K, MAX_K

    field = SearchRequest.model_fields["k"]
    assert field.default == DEFAULT_K
    assert any(getattr(m, "le", None) == MAX_K for m in field.metadata)
    code, out = run("search", str(tmp_path / "any.jpg"), "-k", str(MAX_K + 1))
    assert code == 2 and str(MAX_K) in out  # refused by the CLI as by the API


def test_aspect_weights_have_the_api_limits(run: Run, tmp_path: Path) -> None:
    code, out = run("search", str(tmp_path / "any.jpg"), "--colour", "1.5")
    assert code == 2 and "less than or equal to 1" in out
    code, out = run("search", str(tmp_path / "any.jpg"), "--colour", "nan")
    assert code == 2 and "less than or equal to 1" in out  # NaN is refused as out of range
    code, out = run("similar", "any", "--shape", "0", "--colour", "0", "--texture", "0")
    assert code == 2 and "at least one aspect weight must be above 0" in out


def test_index_kind_is_for_the_faiss_backend(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_INDEX_BACKEND", "annoy")
    code, out = run("index", "rebuild", "--kind", "ivf")
    assert code == 2 and "--kind is for the faiss backend, not annoy" in out
    assert "Traceback" not in out


def test_duplicates_table_json_and_bounds(
    run: Run, dataset: Path, dataset_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    from PIL import Image, ImageOps

    from tests.conftest import write_catalog

    code, out = run("duplicates", "--json")  # an empty catalog: no groups, no error
    assert code == 0 and json.loads(out)["groups"] == [], out
    rows = dataset_rows[:4]
    catalog = write_catalog(tmp_path / "catalog.csv", dataset, rows)
    with Image.open(dataset / rows[0]["file"]) as photo:
        ImageOps.mirror(photo.convert("RGB")).save(tmp_path / "mirrored.jpg", quality=60)
    with catalog.open("a") as f:
        f.write(f"copy-1,{tmp_path / 'mirrored.jpg'},A mirrored copy,,,,\n")
    code, out = run("ingest", str(catalog))
    assert code == 0, out

    code, out = run("duplicates", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["products"] == 5 and report["threshold"] == 0.88
    assert [DuplicateGroup.model_validate(g) for g in report["groups"]]  # the API's document
    assert [[p["sku"] for p in g["products"]] for g in report["groups"]] == [
        [rows[0]["id"], "copy-1"]
    ]
    assert report["groups"][0]["identical"] is False
    code, out = run("duplicates")
    assert code == 0 and "1 duplicate group, 2 of 5 products" in out and "copy-1" in out
    for bad in ("0.5", "nan", "x"):  # refused by the CLI as by the API
        code, out = run("duplicates", "--threshold", bad)
        assert code == 2 and "threshold" in out and "Traceback" not in out, out


def test_catalog_text_that_looks_like_markup_is_printed_as_it_is(
    run: Run,
    dataset: Path,
    dataset_rows: list[dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rich reads "[...]" in printed text as markup: a title with "[/b]" made the search
    table fail (MarkupError), and "[red]" would have coloured it."""
    monkeypatch.setattr(cli.out, "width", 200)  # a table too narrow would wrap its cells
    rows = [
        {**dataset_rows[0], "id": "[red]sku[/red]", "title": "tee [/b] in [bold]red"},
        {**dataset_rows[1], "title": "shorts [/]", "category": "[i]Apparel"},
    ]
    catalog = write_catalog(tmp_path / "catalog.csv", dataset, rows)
    with catalog.open("a") as f:
        f.write("[/x]bad,missing/[/y].jpg,gone,,,,\n")
    code, out = run("ingest", str(catalog))
    assert code == 0, out
    assert "(sku [/x]bad): file not found" in out  # the failed row, named as it is
    code, out = run("search", str(dataset / dataset_rows[0]["file"]), "-k", "2")
    assert code == 0, out
    assert "[red]sku[/red]" in out and "tee [/b] in [bold]red" in out
    assert "shorts [/]" in out and "[i]Apparel" in out
    code, out = run("delete", "[/nope]")
    assert code == 1 and "[/nope]" in out
