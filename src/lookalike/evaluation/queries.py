"""``lookalike evaluate --queries Q.csv``: photo -> catalog retrieval, the way shoppers use it.

Each row of the queries file is a photo and the SKU it shows (``image`` and ``sku``
columns, or ``file``/``path`` and ``expected_sku``/``product_id``), optionally a
``group`` (or ``device``) to report by and a ``category`` for the similar-product check.
A query whose SKU is not in the catalog is an *open-set* query: the right answer is that
no result claims an exact match, and its similar products should still share its
category. Photos are searched one at a time, as a shopper would, so the latencies are
single-query latencies.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lookalike.engine import Engine
from lookalike.errors import CatalogFileError
from lookalike.evaluation.report import thumbnail

GRID_ROWS = 24
THUMB = 160
KS = (1, 5, 10)


@dataclass(frozen=True)
class PhotoQuery:
    image: Path
    sku: str
    group: str = ""
    category: str | None = None


@dataclass
class QueryOutcome:
    """What one photo query returned."""

    image: str
    sku: str
    group: str
    in_catalog: bool
    rank: int | None  # 1-based rank of the expected SKU, None if not in the results
    top: str | None
    top_match: str | None
    exact_skus: list[str] = field(default_factory=list)  # exact results and their listings
    first_exact: list[str] = field(default_factory=list)  # the first one and its listings
    category_hits: list[bool] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def read_queries(path: Path) -> list[PhotoQuery]:
    """Read a queries CSV; relative image paths are relative to the file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise CatalogFileError(f"{path}: {exc.strerror}") from None
    if not rows:
        raise CatalogFileError(f"{path}: no queries")
    cols = rows[0].keys()
    image = next((c for c in ("image", "file", "path") if c in cols), None)
    sku = next((c for c in ("sku", "expected_sku", "product_id") if c in cols), None)
    if image is None or sku is None:
        raise CatalogFileError(f"{path}: needs an image column (image/file/path) and sku")
    group = next((c for c in ("group", "device") if c in cols), None)
    out = []
    for row in rows:
        img = Path(row[image])
        out.append(
            PhotoQuery(
                img if img.is_absolute() else path.parent / img,
                row[sku],
                row[group] if group else "",
                row.get("category") or None,
            )
        )
    return out


def evaluate_queries(
    engine: Engine,
    queries: list[PhotoQuery],
    out_dir: Path,
    k: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Search every photo, score the answers, write report.json, report.md and a PNG
    grid of the failures (query, expected product, first result)."""
    advance = progress or (lambda n: None)
    catalog = engine.products(sorted({q.sku for q in queries}))
    outcomes = []
    for q in queries:
        start = time.perf_counter()
        (result,) = engine.search_files([q.image], k)
        seconds = time.perf_counter() - start
        skus = [h.product.sku for h in result.hits]
        # A result stands for its listings too (the same photo under other SKUs): the
        # photographed product found as a listing of the first result is found first.
        listed = [[h.product.sku, *(p.sku for p in h.listings)] for h in result.hits]
        rank = next((i + 1 for i, group in enumerate(listed) if q.sku in group), None)
        exact = [group for h, group in zip(result.hits, listed, strict=True) if h.match == "exact"]
        expected_category = q.category or (catalog[q.sku].category if q.sku in catalog else None)
        outcomes.append(
            QueryOutcome(
                str(q.image),
                q.sku,
                q.group,
                q.sku in catalog,
                rank,
                skus[0] if skus else None,
                result.hits[0].match if result.hits else None,
                [sku for group in exact for sku in group],
                exact[0] if exact else [],
                [h.product.category == expected_category for h in result.hits]
                if expected_category
                else [],
                seconds,
                result.error,
            )
        )
        advance(1)
    report = summarise(outcomes, k)
    report["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["catalog_products"] = engine.product_count()
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = [o for o in outcomes if o.in_catalog and o.rank != 1] + [
        o for o in outcomes if not o.in_catalog and o.exact_skus
    ]
    if failures:
        draw_failures(engine, failures[:GRID_ROWS], out_dir / "failures.png")
        report["failure_grid"] = "failures.png"
    report["queries"] = [asdict(o) for o in outcomes]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(markdown(report))
    return report


def summarise(outcomes: list[QueryOutcome], k: int = 10) -> dict[str, Any]:
    """Recall@k overall and per group, exact-match precision/recall, open-set false
    exact claims, category agreement of the results, latency."""
    known = [o for o in outcomes if o.in_catalog]
    unknown = [o for o in outcomes if not o.in_catalog]
    report: dict[str, Any] = {"queries": len(outcomes), "k": k}
    report["overall"] = _recall(known)
    groups = sorted({o.group for o in known if o.group})
    report["per_group"] = {g: _recall([o for o in known if o.group == g]) for g in groups}
    claimed = [o for o in known if o.exact_skus]
    report["exact"] = {
        "claimed": len(claimed),
        "precision": _share(o.sku in o.first_exact for o in claimed),
        "recall": _share(o.sku in o.exact_skus for o in known),
    }
    report["open_set"] = {
        "queries": len(unknown),
        "false_exact_rate": _share(bool(o.exact_skus) for o in unknown),
    }
    for name, subset in (("in_catalog", known), ("open_set", unknown)):
        scored = [o for o in subset if o.category_hits]
        report.setdefault("category", {})[name] = {
            "queries": len(scored),
            "category@1": _share(o.category_hits[0] for o in scored),
            "category@10": _mean([np.mean(o.category_hits[:10]) for o in scored]),
        }
    times = np.array([o.seconds for o in outcomes]) * 1000
    report["latency_ms"] = (
        {
            "p50": round(float(np.percentile(times, 50)), 1),
            "p99": round(float(np.percentile(times, 99)), 1),
        }
        if len(times)
        else {}
    )
    report["errors"] = [{"image": o.image, "error": o.error} for o in outcomes if o.error]
    return report


def _recall(outcomes: list[QueryOutcome]) -> dict[str, Any]:
    return {"queries": len(outcomes)} | {
        f"recall@{n}": _share(o.rank is not None and o.rank <= n for o in outcomes) for n in KS
    }


def _share(flags: Any) -> float | None:
    values = [bool(f) for f in flags]
    return round(sum(values) / len(values), 4) if values else None


def _mean(values: list[Any]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        f"# Photo queries: {report['queries']} photos, {report['catalog_products']} products",
        "",
        "| group | queries | R@1 | R@5 | R@10 |",
        "|---|---|---|---|---|",
    ]
    rows = [("all", report["overall"]), *report["per_group"].items()]
    for name, r in rows:
        cells = [_fmt(r[f"recall@{n}"]) for n in KS]
        lines.append(f"| {name} | {r['queries']} | " + " | ".join(cells) + " |")
    ex, op = report["exact"], report["open_set"]
    lines += [
        "",
        f"Exact matches: claimed for {ex['claimed']} photos, precision {_fmt(ex['precision'])}, "
        f"recall {_fmt(ex['recall'])}.",
        f"Open set (product not in the catalog): {op['queries']} photos, "
        f"false exact claims {_fmt(op['false_exact_rate'])}.",
    ]
    for name, c in report["category"].items():
        if c["queries"]:
            lines.append(
                f"Category agreement, {name}: category@1 {_fmt(c['category@1'])}, "
                f"category@10 {_fmt(c['category@10'])} ({c['queries']} photos)."
            )
    if report["latency_ms"]:
        lat = report["latency_ms"]
        lines.append(f"Latency per photo: p50 {lat['p50']} ms, p99 {lat['p99']} ms.")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def draw_failures(engine: Engine, failures: list[QueryOutcome], path: Path) -> None:
    """A PNG, one row per failed query: the photo, the expected product (if it is in the
    catalog) and the first result, labelled exact/similar."""
    products = engine.products(
        sorted({o.sku for o in failures} | {o.top for o in failures if o.top})
    )
    pad, label_h = 8, 30
    width = pad + 3 * (THUMB + pad)
    height = pad + len(failures) * (THUMB + label_h + pad)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=11)
    for row, o in enumerate(failures):
        y = pad + row * (THUMB + label_h + pad)
        expected = products.get(o.sku)
        top = products.get(o.top) if o.top else None
        cells = [
            (o.image, f"photo ({o.group})" if o.group else "photo"),
            (expected.image_path if expected else None, f"expected {o.sku}"[:26]),
            (top.image_path if top else None, f"1st: {o.top} ({o.top_match})"[:26]),
        ]
        for col, (image, label) in enumerate(cells):
            x = pad + col * (THUMB + pad)
            canvas.paste(thumbnail(image, THUMB), (x, y))
            draw.text((x, y + THUMB + 3), label, fill="black", font=font)
            if col == 1 and o.rank:
                draw.text((x, y + THUMB + 15), f"at rank {o.rank}", fill="#d13b3b", font=font)
    canvas.save(path)
