"""``lookalike evaluate``: leave-one-out quality of one or more model configurations on
the catalog, written as JSON + Markdown with a PNG grid of sample queries."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from lookalike.embeddings.embedder import EmbedderConfig
from lookalike.embeddings.pipeline import embed_stream
from lookalike.engine import Engine
from lookalike.errors import CatalogFileError
from lookalike.evaluation.metrics import KS, EvalResult, leave_one_out
from lookalike.images.loader import load_image, read_image_bytes
from lookalike.images.preprocess import INPUT_SIZE
from lookalike.store.catalog import ProductData

GRID_QUERIES = 8
GRID_RESULTS = 6
THUMB = 112


@dataclass
class Labeled:
    products: list[ProductData]
    categories: list[str]
    colors: list[str | None]


def load_labels(
    engine: Engine, labels_csv: Path | None, only_skus: set[str] | None = None
) -> Labeled:
    """Products with a category: from the catalog, or from a CSV (``sku``/``id``,
    ``category``, optional ``color``) that overrides it."""
    products = engine.all_products()
    if only_skus is not None:
        products = [p for p in products if p.sku in only_skus]
    overrides: dict[str, dict[str, str]] = {}
    if labels_csv is not None:
        try:
            with labels_csv.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise CatalogFileError(f"{labels_csv}: {exc.strerror}") from None
        key = next((c for c in ("sku", "id") if rows and c in rows[0]), None)
        if key is None or "category" not in rows[0]:
            raise CatalogFileError(f"{labels_csv}: needs columns 'sku' (or 'id') and 'category'")
        overrides = {r[key]: r for r in rows}
    kept, cats, colors = [], [], []
    for p in products:
        row = overrides.get(p.sku)
        category = row.get("category") if row else p.category
        color = (row.get("color") if row else None) or p.attributes.get("color")
        if category:
            kept.append(p)
            cats.append(category)
            colors.append(str(color) if color else None)
    return Labeled(kept, cats, colors)


def evaluate(
    engine: Engine,
    out_dir: Path,
    configs: list[str] | None = None,
    labels_csv: Path | None = None,
    folds: int = 1,
    progress: Callable[[int], None] | None = None,
    only_skus: set[str] | None = None,
) -> dict[str, Any]:
    """Evaluate the catalog's own embeddings (or each named configuration, embedding the
    catalog images afresh without touching the stored catalog) and write the report.
    ``only_skus`` restricts it to those products (e.g. a model's validation split)."""
    labeled = load_labels(engine, labels_csv, only_skus)
    if len(labeled.products) < 2:
        raise CatalogFileError("need at least two products with a category to evaluate")
    out_dir.mkdir(parents=True, exist_ok=True)
    named = [(n, resolve_config(engine, n)) for n in configs] if configs else []
    runs = named or [(engine.model_config.version, engine.model_config)]
    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "products": len(labeled.products),
        "categories": len(set(labeled.categories)),
        "folds": folds,
        "configs": {},
    }
    for name, config in runs:
        vectors = config_vectors(engine, labeled.products, config, progress)
        result = leave_one_out(
            vectors, labeled.categories, labeled.colors, [p.image_sha256 for p in labeled.products]
        )
        entry: dict[str, Any] = {
            "overall": result.overall.as_dict(),
            "per_category": {c: s.as_dict() for c, s in result.per_category.items()},
        }
        if folds > 1:
            entry["folds"] = [
                _fold(vectors, labeled, i, folds).overall.as_dict() for i in range(folds)
            ]
        grid = out_dir / f"grid-{_slug(name)}.png"
        draw_grid(result, labeled, grid)
        entry["grid"] = grid.name
        report["configs"][name] = entry
    draw_comparison(report, out_dir / "metrics.png")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "report.md").write_text(markdown(report))
    return report


def resolve_config(engine: Engine, name: str) -> EmbedderConfig:
    """A configuration by name: ``trim-gap-c0.1``-style, ``colorhist``, a model version
    (``lite2/trim-gap-c0.1``) or a fine-tuned version (``ft-...``, as it was trained)."""
    return EmbedderConfig.resolve(name, engine.settings.model_dir)


def config_vectors(
    engine: Engine,
    products: list[ProductData],
    config: EmbedderConfig,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embeddings of ``products`` under ``config``: the stored ones when the catalog uses
    that config, else computed afresh from the product images (nothing is stored)."""
    if config.version == engine.model_config.version:
        stored = [engine.stored_vector(p.id or -1, config.version) for p in products]
        if all(v is not None for v in stored):
            if progress:
                progress(len(products))
            return np.stack([v for v in stored if v is not None])
    from lookalike.embeddings.embedder import create_embedder

    embedder = create_embedder(engine.settings, config)
    limits = engine.limits

    def load(p: ProductData) -> Any:
        data = read_image_bytes(Path(p.image_path), limits.max_bytes)
        return load_image(
            data, p.image_path, max_pixels=limits.max_pixels, target_size=INPUT_SIZE * 2
        )

    out = np.zeros((len(products), config.dim), dtype=np.float32)
    position = {id(p): i for i, p in enumerate(products)}
    for res in embed_stream(embedder, products, load, batch_size=engine.settings.batch_size):
        if progress:
            progress(1)
        if res.vector is None:
            raise CatalogFileError(f"cannot evaluate: {res.error}")
        out[position[id(res.item)]] = res.vector
    return out


def _fold(vectors: np.ndarray, labeled: Labeled, fold: int, folds: int) -> EvalResult:
    """Leave-one-out inside one of ``folds`` disjoint parts of the catalog (split by SKU
    hash): a check that a difference between configurations is not one lucky split."""
    idx = [
        i
        for i, p in enumerate(labeled.products)
        if int(hashlib.sha1(p.sku.encode()).hexdigest(), 16) % folds == fold
    ]
    return leave_one_out(
        vectors[idx],
        [labeled.categories[i] for i in idx],
        [labeled.colors[i] for i in idx],
        [labeled.products[i].image_sha256 for i in idx],
    )


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one comparison table, then per-category tables."""
    cols = [*(f"precision@{k}" for k in KS), "map@r", "color_match@10"]
    lines = [
        "# Retrieval evaluation",
        "",
        f"{report['products']} labeled products in {report['categories']} categories, "
        f"leave-one-out, relevant = same category. Created {report['created']}.",
        "",
        "![metrics per configuration](metrics.png)",
        "",
        "| config | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, entry in report["configs"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(entry["overall"][c]) for c in cols) + " |")
        for i, fold in enumerate(entry.get("folds", [])):
            lines.append(f"| {name} (fold {i})| " + " | ".join(_fmt(fold[c]) for c in cols) + " |")
    for name, entry in report["configs"].items():
        lines += ["", f"## {name}", "", f"![sample queries]({entry['grid']})", ""]
        lines += ["| category | queries | " + " | ".join(cols) + " |"]
        lines += ["|---|---|" + "---|" * len(cols)]
        for cat, s in sorted(entry["per_category"].items(), key=lambda kv: -kv[1]["queries"]):
            lines.append(
                f"| {cat} | {s['queries']} | " + " | ".join(_fmt(s[c]) for c in cols) + " |"
            )
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)


def draw_grid(result: EvalResult, labeled: Labeled, path: Path) -> None:
    """A PNG: sample queries (left) and their top results, framed green when the result
    shares the query's category and red when it does not."""
    rng = np.random.default_rng(0)
    scored = [q for q in result.queries if not np.isnan(q.map_at_r)]
    picks = [
        scored[i]
        for i in sorted(rng.choice(len(scored), min(GRID_QUERIES, len(scored)), replace=False))
    ]
    pad, label_h = 6, 16
    cell = THUMB + pad
    width = pad + cell * (GRID_RESULTS + 1) + pad
    height = pad + (cell + label_h) * len(picks)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=11)
    for row, q in enumerate(picks):
        y = pad + row * (cell + label_h)
        items = [(q.index, "#3b6fd1")] + [
            (n, "#2e9e4f" if labeled.categories[n] == q.category else "#d13b3b")
            for n in q.neighbors[:GRID_RESULTS]
        ]
        for col, (pos, colour) in enumerate(items):
            x = pad + col * cell + (pad if col else 0)
            canvas.paste(thumbnail(labeled.products[pos].image_path), (x, y))
            draw.rectangle([x - 2, y - 2, x + THUMB + 1, y + THUMB + 1], outline=colour, width=3)
            draw.text((x, y + THUMB + 3), labeled.categories[pos][:18], fill="black", font=font)
    canvas.save(path)


def thumbnail(path: str | Path | None, size: int = THUMB) -> Image.Image:
    """A square grid cell of a picture, upright and padded white; light grey when there
    is no picture, darker grey when it cannot be read."""
    if path is None:
        return Image.new("RGB", (size, size), "#eeeeee")
    try:
        with Image.open(path) as im:
            upright = ImageOps.exif_transpose(im).convert("RGB")
            return ImageOps.pad(upright, (size, size), color="white")
    except OSError:
        return Image.new("RGB", (size, size), "#cccccc")


CHART_METRICS = (
    ("precision@1", "#3b6fd1"),
    ("precision@10", "#5fa8e8"),
    ("map@r", "#2e9e4f"),
    ("color_match@10", "#e0a030"),
)


def draw_comparison(report: dict[str, Any], path: Path) -> None:
    """A PNG bar chart: one group of bars per configuration, one bar per metric."""
    configs = list(report["configs"].items())
    bar_w, gap, group_gap = 26, 4, 40
    group_w = len(CHART_METRICS) * (bar_w + gap) + group_gap
    left, top, plot_h, bottom = 50, 40, 260, 70
    width = left + group_w * len(configs) + 20
    canvas = Image.new("RGB", (max(width, 480), top + plot_h + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    draw.text(
        (left, 10), f"leave-one-out on {report['products']} products", fill="black", font=font
    )
    for tick in range(0, 11, 2):  # y axis 0..1
        y = top + plot_h - tick / 10 * plot_h
        draw.line([left - 4, y, canvas.width - 10, y], fill="#e5e5e5")
        draw.text((8, y - 7), f"{tick / 10:.1f}", fill="#555555", font=font)
    for g, (name, entry) in enumerate(configs):
        x0 = left + g * group_w + group_gap // 2
        for m, (metric, colour) in enumerate(CHART_METRICS):
            value = entry["overall"].get(metric) or 0.0
            x = x0 + m * (bar_w + gap)
            y = top + plot_h - value * plot_h
            draw.rectangle([x, y, x + bar_w, top + plot_h], fill=colour)
            draw.text((x, y - 14), f"{value:.2f}"[1:], fill="black", font=font)
        draw.text((x0, top + plot_h + 6), name[:24], fill="black", font=font)
    ly = top + plot_h + 30
    for m, (metric, colour) in enumerate(CHART_METRICS):
        lx = left + m * 120
        draw.rectangle([lx, ly, lx + 12, ly + 12], fill=colour)
        draw.text((lx + 16, ly - 1), metric, fill="black", font=font)
    canvas.save(path)
