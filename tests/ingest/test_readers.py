from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from lookalike.errors import CatalogFileError
from lookalike.ingest.readers import read_catalog
from lookalike.store.models import Product


def _max_length(column: str) -> int:
    """The length of one of Product's string columns."""
    kind = Product.__table__.c[column].type
    assert isinstance(kind, sa.String) and kind.length is not None
    return kind.length


def test_csv_with_all_fields_and_extra_metadata(tmp_path: Path) -> None:
    (tmp_path / "cat.csv").write_text(
        "sku,image,title,category,price,currency,url,color\n"
        'A1,img/a.jpg,Red shoe,Shoes,"1,299.50",EUR,https://shop/a,Red\n'
        "B2,/abs/b.png,,Bags,,,,\n"
    )
    read = read_catalog(tmp_path / "cat.csv")
    assert not read.errors
    a, b = read.records
    assert a.sku == "A1" and a.image == tmp_path / "img/a.jpg"  # relative to the CSV
    assert a.price == 1299.5 and a.currency == "EUR" and a.attributes == {"color": "Red"}
    assert b.image == Path("/abs/b.png") and b.title is None and b.price is None


def test_csv_column_aliases(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("id,file,category\n7,images/7.jpg,Watches\n")
    (rec,) = read_catalog(tmp_path / "labels.csv").records
    assert rec.sku == "7" and rec.category == "Watches"


def test_csv_missing_required_column_names_it(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("sku,title\nA,x\n")
    with pytest.raises(
        CatalogFileError, match=r"missing required column 'image'.*found: sku, title"
    ):
        read_catalog(tmp_path / "bad.csv")


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "sku,image,price\nA,a.jpg,12\n,b.jpg,1\nC,c.jpg,cheap\nA,d.jpg,3\nE,https://x/e.jpg,1\n"
    )
    read = read_catalog(tmp_path / "c.csv")
    assert [r.sku for r in read.records] == ["A"]
    reasons = {e.source.rsplit(":", 1)[1]: e.reason for e in read.errors}
    assert "empty 'sku'" in reasons["3"]
    assert "not a number" in reasons["4"]
    assert "duplicate SKU" in reasons["5"]
    assert "URLs" in reasons["6"]


def test_jsonl_with_a_broken_line(tmp_path: Path) -> None:
    lines = [json.dumps({"sku": "A", "image": "a.jpg", "price": 5, "tags": ["x"]}), "{oops", ""]
    (tmp_path / "c.jsonl").write_text("\n".join(lines))
    read = read_catalog(tmp_path / "c.jsonl")
    assert [r.sku for r in read.records] == ["A"]
    assert read.records[0].attributes == {"tags": ["x"]}
    assert read.errors[0].source.endswith(":2") and "invalid JSON" in read.errors[0].reason


def test_folder_categories_and_skus(tmp_path: Path) -> None:
    for rel in (
        "Shoes/red.jpg",
        "Shoes/sub/blue.png",
        "loose.webp",
        "Bags/notes.txt",
        ".hidden/x.jpg",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    records = {r.sku: r for r in read_catalog(tmp_path).records}
    assert set(records) == {"Shoes/red", "Shoes/sub/blue", "loose"}
    assert records["Shoes/sub/blue"].category == "Shoes"
    assert records["loose"].category is None


def test_missing_or_unknown_catalog(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="no such file"):
        read_catalog(tmp_path / "nope.csv")
    (tmp_path / "c.xlsx").write_bytes(b"")
    with pytest.raises(CatalogFileError, match="unknown catalog type"):
        read_catalog(tmp_path / "c.xlsx")


def test_rows_a_database_cannot_hold_are_row_errors(tmp_path: Path) -> None:
    # Issue #12 D4: PostgreSQL refused these rows and failed the whole ingest with them,
    # SQLite stored them. The limits are the ORM columns' lengths.
    limit = {name: _max_length(name) for name in ("sku", "category", "currency")}
    rows = {
        "good": {"sku": "ok", "category": "c" * limit["category"], "currency": "EUR"},
        "long sku": {"sku": "s" * (limit["sku"] + 1)},
        "long category": {"sku": "b1", "category": "c" * (limit["category"] + 1)},
        "long currency": {"sku": "b2", "currency": "E" * (limit["currency"] + 1)},
        "NUL sku": {"sku": "b\x003"},
        "NUL title": {"sku": "b4", "title": "a\x00b"},
        "NUL image": {"sku": "b5", "image": "a\x00.jpg"},
    }
    (tmp_path / "c.jsonl").write_text(
        "\n".join(json.dumps({"image": "a.jpg", **row}) for row in rows.values())
    )
    with (tmp_path / "c.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["sku", "image", "title", "category", "currency"])
        w.writeheader()
        w.writerows({"image": "a.jpg", **row} for row in rows.values())
    for name in ("c.jsonl", "c.csv"):
        read = read_catalog(tmp_path / name)
        assert [r.sku for r in read.records] == ["ok"], name
        reasons = [e.reason for e in read.errors]
        assert len(reasons) == len(rows) - 1, reasons
        assert f"'sku' is {limit['sku'] + 1} characters long" in reasons[0]
        assert f"at most {limit['sku']}" in reasons[0]
        assert "'category'" in reasons[1] and "'currency'" in reasons[2]
        assert all("NUL" in r for r in reasons[3:]), reasons
        assert "'title'" in reasons[4] and "'image'" in reasons[5]


def test_folder_skus_too_long_for_the_database_are_row_errors(tmp_path: Path) -> None:
    limit = _max_length("sku")
    deep = tmp_path / ("d" * 200) / ("e" * 200) / "x.jpg"  # SKU: the path, 400+ characters
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"")
    (tmp_path / "ok.jpg").write_bytes(b"")
    read = read_catalog(tmp_path)
    assert [r.sku for r in read.records] == ["ok"]
    (error,) = read.errors
    assert error.source == str(deep) and f"at most {limit}" in error.reason
