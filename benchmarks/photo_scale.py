"""Phone photo search as the catalog grows: latency, R@1 and memory at each size.

    python -m benchmarks.photo_scale [--home DIR] [--sizes 10000,30000,100000]
                                     [--queries 100] [--plot docs/img/photo-scale.png]

The catalog: the 100 SMVS covers, the 2,946 fashion dev products, then augmented copies
of dev photos (benchmarks/photo_search.py) up to each size in turn; it grows in place, so
each step ingests only the new copies (and rebuilds the descriptor index when the catalog
grew by more than a quarter, as any ingest does). After each step: ``--queries`` SMVS
phone photos (evenly over the four phones) searched one at a time through
``Engine.search_files``, both paths alternating (global vector only, and the two-stage
search); p50/p99, R@1, the descriptor index's lists, RAM and build time. Each step's line
is printed as soon as it is measured; the plot is redrawn after each.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from benchmarks.common import DATASET, machine
from benchmarks.photo_search import augmented_copies, measure
from benchmarks.smvs import smvs_catalog, smvs_queries, smvs_rows
from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.evaluation.queries import PhotoQuery
from lookalike.ingest.readers import CatalogRecord, read_catalog


def catalog_and_queries(queries: int) -> tuple[list[CatalogRecord], list[PhotoQuery]]:
    """The real catalog every size starts from (the 100 SMVS covers, then the 2,946
    fashion dev products) and ``queries`` SMVS phone photos, evenly over the four phones."""
    rows = smvs_rows()
    base = smvs_catalog(rows) + read_catalog(DATASET / "labels.csv").records
    return base, smvs_queries(rows)[:: max(1, 400 // queries)][:queries]


def plot(steps: list[dict[str, Any]], out: Path) -> None:
    """Latency (left) and R@1 (right) against the catalog size (log scale), with Pillow.
    Steps with ``synthetic`` products (benchmarks/photo_scale_synthetic.py) are drawn as
    hollow points joined by dashed lines."""
    width, height, pad = 900, 360, 60
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    sizes = [math.log10(s["products"]) for s in steps]
    lo_x, hi_x = min(sizes) - 0.1, max(sizes) + 0.1
    panel_w = (width - 3 * pad) // 2
    series = [  # (panel, path, key, colour, label)
        (0, "two_stage", "p50_ms", "#c0392b", "two-stage p50"),
        (0, "two_stage", "p99_ms", "#e59866", "two-stage p99"),
        (0, "global", "p50_ms", "#2e6fd1", "global only p50"),
        (0, "global", "p99_ms", "#85a9e8", "global only p99"),
        (1, "two_stage", "r1", "#c0392b", "two-stage R@1"),
        (1, "global", "r1", "#2e6fd1", "global only R@1"),
    ]
    if all("votes" in s for s in steps):  # benchmarks/photo_scale_synthetic.py times it
        series.insert(2, (0, "votes", "votes_p50_ms", "#7d3c98", "votes stage alone p50"))
    for panel, (title, top, refs) in enumerate(
        [
            ("ms per photo, one at a time (dotted: 150 / 400 ms)", 0.0, [150.0, 400.0]),
            ("R@1, SMVS phone photos", 1.0, []),
        ]
    ):
        x0, y0, y1 = pad + panel * (panel_w + pad), pad, height - pad
        hi = max([top, *refs] + [s[p][k] for q, p, k, _, _ in series if q == panel for s in steps])
        hi *= 1.05

        def xy(size: float, v: float, x0: int = x0, y0: int = y0, y1: int = y1,
               hi: float = hi) -> tuple[float, float]:  # fmt: skip
            return x0 + (size - lo_x) / (hi_x - lo_x) * panel_w, y1 - v / hi * (y1 - y0)

        draw.rectangle([x0, y0, x0 + panel_w, y1], outline="#999999")
        draw.text((x0, y0 - 18), title, fill="black", font=font)
        draw.text(
            (x0 - 45, y0 - 6), f"{hi:.0f}" if hi > 2 else f"{hi:.2f}", fill="#555555", font=font
        )
        draw.text((x0 - 20, y1 - 6), "0", fill="#555555", font=font)
        for ref in refs:
            y = xy(lo_x, ref)[1]
            for i in range(0, panel_w, 10):
                draw.line([x0 + i, y, x0 + min(i + 4, panel_w), y], fill="#777777")
        for size, s in zip(sizes, steps, strict=True):
            x = xy(size, 0)[0]
            n = s["products"]
            label = f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1000:.0f}k"
            draw.text((x - 15, y1 + 6), label, fill="black", font=font)
        row = 0
        for q, path, key, colour, label in series:
            if q != panel:
                continue
            points = [xy(size, s[path][key]) for size, s in zip(sizes, steps, strict=True)]
            made = [bool(s.get("synthetic")) for s in steps]
            for a, b, dashed in zip(points, points[1:], made[1:], strict=False):
                if not dashed:
                    draw.line([a, b], fill=colour, width=2)
                    continue
                length = math.dist(a, b)
                for i in range(0, int(length), 10):
                    f, g = i / length, min(i + 5, length) / length
                    draw.line(
                        [(a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])),
                         (a[0] + g * (b[0] - a[0]), a[1] + g * (b[1] - a[1]))],
                        fill=colour, width=2,
                    )  # fmt: skip
            for (px, py), hollow in zip(points, made, strict=True):
                box = [px - 3, py - 3, px + 3, py + 3]
                draw.ellipse(box, fill="white" if hollow else colour, outline=colour, width=2)
            # Legend above the latency lines (near 0), below the R@1 lines (above 0.3).
            ly = y0 + 6 if panel == 0 else y1 - 40
            draw.text((x0 + 8, ly + 14 * row), label, fill=colour, font=font)
            row += 1
    synthetic = any(s.get("synthetic") for s in steps)
    note = " - hollow, dashed: synthetic distractors" if synthetic else ""
    draw.text(
        (pad, height - 22), f"products (log scale) - {machine()}{note}", fill="black", font=font
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="catalog folder to grow or reuse")
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        settings = Settings(home=home, _env_file=None)
        base, queries = catalog_and_queries(args.queries)
        print(f"machine: {machine()}", flush=True)
        steps: list[dict[str, Any]] = []
        for size in sizes:
            engine = Engine(settings)
            records = base + augmented_copies(home / "augmented", max(0, size - len(base)))
            start = time.perf_counter()
            summary = engine.ingest(records)
            ingest_s = time.perf_counter() - start
            global_only = Engine(settings.model_copy(update={"local_features": False}))
            step: dict[str, Any] = dict(measure(engine, global_only, queries))
            index = engine.local_index
            assert index is not None
            m = index.manifest
            products = engine.product_count()
            step.update(
                products=products,
                descriptors=m.descriptors,
                nlist=m.nlist,
                ram_kb_per_product=round(index.memory_bytes() / products / 1024, 2),
                ingest_s=round(ingest_s, 1),
                embedded=summary.embedded,
            )
            steps.append(step)
            print(json.dumps(step), flush=True)
            if args.plot:
                plot(steps, args.plot)
            engine.close()
            global_only.close()


if __name__ == "__main__":
    main()
