"""Do the aspects mean what they say? Leave-one-out on the fashion dev set for each
aspect alone and the default blend, the P@10 vs colour@10 frontier as the colour weight
moves, and one round of a simulated shopper's "more / less like this".

    python -m benchmarks.aspects [--home DIR] [--baseline trim-gap-c0.1] [--plot PNG]

The catalog is ingested into ``--home`` (a temporary folder by default) with the current
settings; ``--baseline`` names a configuration whose vectors are computed beside it
(main's default, for the frontier's "before"). Every figure is given for the whole set
and for its two halves (split by SKU hash, as ``lookalike evaluate --folds 2``).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmarks.common import DATASET, machine
from lookalike.config import Settings
from lookalike.embeddings.aspects import AspectLayout
from lookalike.embeddings.embedder import EmbedderConfig
from lookalike.engine import Engine
from lookalike.evaluation.aspects import (
    Labels,
    aspect_metrics,
    pattern_of,
    simulated_feedback,
    weighed,
)
from lookalike.evaluation.report import config_vectors
from lookalike.ingest.readers import read_catalog
from lookalike.search.aspects import AspectWeights

SETTINGS: dict[str, AspectWeights] = {
    "default blend": AspectWeights(),
    "shape only": AspectWeights(1, 0, 0),
    "colour only": AspectWeights(0, 1, 0),
    "texture only": AspectWeights(0, 0, 1),
}
METRICS = ("p@10", "map@r", "colour@10", "pattern@10")
COLOURS = ("#888888", "#2e6fd1", "#c0392b")
COLOUR_STEPS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--baseline", default="trim-gap-c0.1", help="config to compare with")
    parser.add_argument("--plot", type=Path, default=Path("docs/img/aspects-frontier.png"))
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="lk-aspects-"))
    engine = Engine(Settings(home=home))
    engine.ingest(read_catalog(DATASET / "labels.csv").records)
    products = [p for p in engine.all_products() if p.category]
    labels = Labels(
        [p.category or "" for p in products],
        [p.attributes.get("color") or None for p in products],
        [pattern_of(p.title) for p in products],
        [p.image_sha256 for p in products],
    )
    halves = [
        [
            i
            for i, p in enumerate(products)
            if int(hashlib.sha1(p.sku.encode()).hexdigest(), 16) % 2 == h
        ]
        for h in (0, 1)
    ]
    current = engine.model_config
    baseline = EmbedderConfig.resolve(args.baseline, engine.settings.model_dir)
    print(
        f"{machine()}; {len(products)} products; current {current.name}, baseline {baseline.name}"
    )
    vectors = config_vectors(engine, products, current)
    base_vectors = config_vectors(engine, products, baseline)

    def measured(
        vecs: np.ndarray, layout: AspectLayout, weights: AspectWeights
    ) -> list[dict[str, float]]:
        w = weighed(vecs, layout, weights)
        return [aspect_metrics(w, labels)] + [
            aspect_metrics(w[idx], _subset(labels, idx)) for idx in halves
        ]

    print("\n| config | weights | " + " | ".join(f"{m} (A / B)" for m in METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for name, config, vecs in (("baseline", baseline, base_vectors), ("current", current, vectors)):
        for label, weights in SETTINGS.items():
            try:
                rows = measured(vecs, config.layout, weights)
            except ValueError:  # an aspect this config lacks
                continue
            print(
                f"| {name} {config.name} | {label} | "
                + " | ".join(_cell(rows, m) for m in METRICS)
                + " |"
            )

    frontier = {
        name: [measured(vecs, config.layout, AspectWeights(1 - c, c, 0))[0] for c in COLOUR_STEPS]
        for name, config, vecs in (
            (f"baseline {baseline.name}", baseline, base_vectors),
            (f"current {current.name}", current, vectors),
        )
    }
    defaults = {
        f"baseline {baseline.name}": aspect_metrics(
            weighed(base_vectors, baseline.layout, AspectWeights()), labels
        ),
        f"current {current.name}": aspect_metrics(
            weighed(vectors, current.layout, AspectWeights()), labels
        ),
    }
    _plot(frontier, defaults, args.plot)
    print(f"\nfrontier (colour weight {COLOUR_STEPS}, shape the rest, texture 0) -> {args.plot}")
    for name, points in frontier.items():
        print(f"  {name}: " + ", ".join(f"{p['p@10']:.3f}/{p['colour@10']:.3f}" for p in points))

    default = weighed(vectors, current.layout, AspectWeights())
    print("\nsimulated shopper, one round (same-category P@10 before -> after):")
    for part, idx in (
        ("whole", list(range(len(products)))),
        ("half A", halves[0]),
        ("half B", halves[1]),
    ):
        fb = simulated_feedback(default[idx], _subset(labels, idx))
        print(f"  {part}: {fb['p@10 before']:.3f} -> {fb['p@10 after']:.3f}")
    engine.close()


def _subset(labels: Labels, idx: list[int]) -> Labels:
    return Labels(
        [labels.categories[i] for i in idx],
        [labels.colours[i] for i in idx],
        [labels.patterns[i] for i in idx],
        [labels.duplicate_keys[i] for i in idx],
    )


def _cell(rows: list[dict[str, float]], metric: str) -> str:
    whole, a, b = (r[metric] for r in rows)
    return f"{whole:.3f} ({a:.3f} / {b:.3f})"


def _plot(
    frontier: dict[str, list[dict[str, float]]],
    defaults: dict[str, dict[str, float]],
    path: Path,
) -> None:
    """P@10 against colour@10 along each config's colour-weight sweep, the default blend
    as a star (Pillow, as the other plots)."""
    width, height, pad = 720, 480, 70
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    points = [p for line in frontier.values() for p in line]
    x_lo = min(p["colour@10"] for p in points) - 0.02
    x_hi = max(p["colour@10"] for p in points) + 0.02
    y_lo, y_hi = 0.0, max(p["p@10"] for p in points) + 0.05

    def xy(p: dict[str, float]) -> tuple[float, float]:
        x = pad + (p["colour@10"] - x_lo) / (x_hi - x_lo) * (width - 2 * pad)
        return x, height - pad - (p["p@10"] - y_lo) / (y_hi - y_lo) * (height - 2 * pad)

    draw.rectangle([pad, pad, width - pad, height - pad], outline="#999999")
    for v in (0.2, 0.4, 0.6):
        if y_lo < v < y_hi:
            y = xy({"colour@10": x_lo, "p@10": v})[1]
            draw.line([pad, y, width - pad, y], fill="#eeeeee")
            draw.text((pad - 30, y - 6), f"{v:.1f}", fill="#555555", font=font)
    for v in (0.2, 0.3, 0.4, 0.5, 0.6):
        if x_lo < v < x_hi:
            x = xy({"colour@10": v, "p@10": y_lo})[0]
            draw.line([x, pad, x, height - pad], fill="#eeeeee")
            draw.text((x - 10, height - pad + 6), f"{v:.1f}", fill="#555555", font=font)
    for row, ((name, line), colour) in enumerate(zip(frontier.items(), COLOURS, strict=False)):
        xys = [xy(p) for p in line]
        draw.line(xys, fill=colour, width=2)
        for c, (x, y) in zip(COLOUR_STEPS, xys, strict=True):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            if c in (0.0, 0.1, 0.3, 1.0):
                draw.text((x + 5, y - 14), f"c={c:g}", fill=colour, font=font)
        sx, sy = xy(defaults[name])
        draw.regular_polygon((sx, sy, 9), 5, fill=colour, outline="black")
        draw.text(
            (pad + 10, height - pad - 40 + 16 * row),  # bottom left: the curves run along the top
            f"{name} (star: default blend)",
            fill=colour,
            font=font,
        )
    draw.text(
        (pad, 20),
        "colour weight c from 0 to 1 (shape 1 - c): the frontier",
        fill="black",
        font=font,
    )
    draw.text(
        (width // 2 - 120, height - 30),
        "colour@10 (share of the top 10 in the query's colour)",
        fill="black",
        font=font,
    )
    draw.text((8, pad - 24), "same-category P@10", fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


if __name__ == "__main__":
    main()
