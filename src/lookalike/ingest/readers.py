"""Read a catalog into records: a folder of images (sub-folders are categories), a CSV
file, or JSON Lines / JSON. Bad rows are reported with their line; good rows go on.
A row is bad, among other reasons, when a database could not hold its text
(store/fields.py): the same rows fail on SQLite and on PostgreSQL, each alone."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import CatalogFileError
from lookalike.store.fields import check_text

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
# Column names accepted for the two required fields, in order of preference.
SKU_COLUMNS = ("sku", "id", "product_id")
IMAGE_COLUMNS = ("image", "image_path", "file", "path")
KNOWN = ("title", "category", "price", "currency", "url")


@dataclass
class CatalogRecord:
    """One product to ingest. ``source`` says where it came from (file and line)."""

    sku: str
    image: Path
    source: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    currency: str | None = None
    url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    image_url: str | None = None  # set when the catalog gives an image URL (API imports)


@dataclass(frozen=True)
class RowError:
    source: str
    sku: str | None
    reason: str


@dataclass
class CatalogRead:
    records: list[CatalogRecord]
    errors: list[RowError]


def read_catalog(path: Path, *, allow_urls: bool = False) -> CatalogRead:
    """Read a folder, ``.csv``, ``.jsonl``/``.ndjson`` or ``.json`` catalog. With
    ``allow_urls`` an http(s) image becomes ``image_url`` for the caller to download."""
    if not path.exists():
        raise CatalogFileError(f"{path}: no such file or folder")
    if path.is_dir():
        return read_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, allow_urls)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return read_json(path, allow_urls)
    raise CatalogFileError(
        f"{path}: unknown catalog type {suffix!r} (use a folder, .csv or .jsonl)"
    )


def read_folder(root: Path) -> CatalogRead:
    """Every image below ``root``; the first sub-folder level is the category and the SKU is
    the path relative to ``root`` without its extension."""
    records = []
    errors = []
    for file in sorted(root.rglob("*")):
        if not file.is_file() or file.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        category = rel.parts[0] if len(rel.parts) > 1 else None
        sku = rel.with_suffix("").as_posix()
        try:  # deep folders make SKUs longer than the column
            check_text("sku", sku)
            check_text("category", category or "")
        except ValueError as exc:
            errors.append(RowError(str(file), sku, str(exc)))
            continue
        records.append(CatalogRecord(sku, file, str(file), title=file.stem, category=category))
    return CatalogRead(records, errors)


def read_csv(path: Path, allow_urls: bool = False) -> CatalogRead:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            sku_col, image_col = _required_columns(path, header)
            reader.fieldnames = header
            rows = [(f"{path}:{reader.line_num}", row) for row in reader]
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise CatalogFileError(f"{path}: malformed CSV: {exc}") from None
    return _records(path.parent, rows, sku_col, image_col, allow_urls)


def read_json(path: Path, allow_urls: bool = False) -> CatalogRead:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    errors: list[RowError] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogFileError(f"{path}: invalid JSON: {exc}") from None
        if not isinstance(data, list):
            raise CatalogFileError(f"{path}: expected a JSON array of product objects")
        items: Iterable[tuple[str, Any]] = ((f"{path}[{i}]", o) for i, o in enumerate(data))
    else:
        parsed = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                errors.append(RowError(f"{path}:{n}", None, f"invalid JSON: {exc.msg}"))
        items = parsed
    for source, obj in items:
        if isinstance(obj, dict):
            rows.append((source, obj))
        else:
            errors.append(RowError(source, None, "expected a JSON object"))
    keys = sorted({k for _, obj in rows for k in obj})
    if not rows and errors:
        return CatalogRead([], errors)
    sku_col, image_col = _required_columns(path, keys)
    result = _records(path.parent, rows, sku_col, image_col, allow_urls)
    result.errors[:0] = errors
    return result


def _required_columns(path: Path, columns: list[str]) -> tuple[str, str]:
    lower = {c.lower(): c for c in columns}
    found = []
    for field_name, accepted in (("sku", SKU_COLUMNS), ("image", IMAGE_COLUMNS)):
        name = next((lower[a] for a in accepted if a in lower), None)
        if name is None:
            raise CatalogFileError(
                f"{path}: missing required column {field_name!r} "
                f"(accepted names: {', '.join(accepted)}; found: {', '.join(columns) or 'none'})"
            )
        found.append(name)
    return found[0], found[1]


def _records(
    base: Path,
    rows: list[tuple[str, dict[str, Any]]],
    sku_col: str,
    image_col: str,
    allow_urls: bool,
) -> CatalogRead:
    records: list[CatalogRecord] = []
    errors: list[RowError] = []
    seen: dict[str, str] = {}
    for source, row in rows:
        try:
            record = _record(base, source, row, sku_col, image_col, allow_urls)
        except ValueError as exc:
            sku = str(row.get(sku_col) or "").strip() or None
            errors.append(RowError(source, sku, str(exc)))
            continue
        if record.sku in seen:
            errors.append(
                RowError(source, record.sku, f"duplicate SKU (first seen at {seen[record.sku]})")
            )
            continue
        seen[record.sku] = source
        records.append(record)
    return CatalogRead(records, errors)


def _record(
    base: Path,
    source: str,
    row: dict[str, Any],
    sku_col: str,
    image_col: str,
    allow_urls: bool,
) -> CatalogRecord:
    values = {str(k).strip(): v for k, v in row.items() if k is not None}
    sku = check_text("sku", _text(values.pop(sku_col, None)))
    image = check_text("image", _text(values.pop(image_col, None)))
    if not sku:
        raise ValueError(f"empty {sku_col!r}")
    if not image:
        raise ValueError(f"empty {image_col!r}")
    image_url = None
    if "://" in image:
        if not allow_urls:
            raise ValueError("image URLs are only accepted by API imports; give a file path")
        image_url, image_path = image, base
    else:
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = base / image_path
    lowered = {k.lower(): k for k in values}
    known = {
        name: check_text(name, _text(values.pop(lowered[name])))
        for name in KNOWN
        if name in lowered
    }
    price = None
    if known.get("price"):
        price = _price(str(known["price"]))
    attributes = {k: v for k, v in values.items() if v not in (None, "")}
    return CatalogRecord(
        sku=sku,
        image=image_path,
        source=source,
        title=known.get("title") or None,
        category=known.get("category") or None,
        price=price,
        currency=known.get("currency") or None,
        url=known.get("url") or None,
        attributes=attributes,
        image_url=image_url,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _price(text: str) -> float:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise ValueError(f"price {text!r} is not a number") from None
    if value < 0 or value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"price {text!r} is not a valid amount")
    return value
