"""The training curve as a PNG (Pillow only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

_METRICS = [  # (validation key, legend, colour)
    ("map@r", "MAP@R", "#2e9e4f"),
    ("precision@10", "Precision@10", "#e0a030"),
    ("instance_r@1", "instance R@1", "#c0392b"),
]


def training_curve(history: list[Any], baseline: dict[str, Any], path: Path) -> None:
    """Loss (left) and validation MAP@R / Precision@10 / instance R@1 per epoch (right,
    those measured), with the pretrained model's values as dashed reference lines."""
    width, height, pad = 900, 340, 50
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    epochs = [h.epoch for h in history]
    # Only the metrics this run measured: no category ones for instance-only training
    # on a catalog without categories.
    shown = [m for m in _METRICS if history[0].val.get(m[0]) is not None]
    panels = [
        ("training loss", [[h.loss for h in history]], ["#3b6fd1"], []),
        (
            "validation (dashed: pretrained)",
            [[h.val[key] for h in history] for key, _, _ in shown],
            [colour for _, _, colour in shown],
            [baseline[key] for key, _, _ in shown],
        ),
    ]
    panel_w = (width - 3 * pad) // 2
    for n, (title, series, colours, refs) in enumerate(panels):
        x0, y0, y1 = pad + n * (panel_w + pad), pad, height - pad
        values = [v for s in series for v in s] + list(refs)
        lo, hi = min(values), max(values)
        hi = hi if hi > lo else lo + 1
        lo -= 0.05 * (hi - lo)
        hi += 0.05 * (hi - lo)
        draw.rectangle([x0, y0, x0 + panel_w, y1], outline="#999999")
        draw.text((x0, y0 - 18), title, fill="black", font=font)
        draw.text((x0 - 40, y0 - 6), f"{hi:.2f}", fill="#555555", font=font)
        draw.text((x0 - 40, y1 - 6), f"{lo:.2f}", fill="#555555", font=font)

        def xy(
            i: int,
            v: float,
            x0: int = x0,
            y0: int = y0,
            y1: int = y1,
            lo: float = lo,
            hi: float = hi,
        ) -> tuple[float, float]:
            fx = (i / max(1, len(epochs) - 1)) * panel_w
            return x0 + fx, y1 - (v - lo) / (hi - lo) * (y1 - y0)

        for ref, colour in zip(refs, colours, strict=False):
            for i in range(0, panel_w, 12):
                y = xy(0, ref)[1]
                draw.line([x0 + i, y, x0 + min(i + 6, panel_w), y], fill=colour, width=1)
        for s, colour in zip(series, colours, strict=True):
            points = [xy(i, v) for i, v in enumerate(s)]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            for px, py in points:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((x0, y1 + 8), f"epochs 1..{len(epochs)}", fill="black", font=font)
        if n == 1:
            for k, (_, label, colour) in enumerate(shown):
                draw.text((x0 + 110 + 100 * k, y1 + 8), label, fill=colour, font=font)
    img.save(path)
