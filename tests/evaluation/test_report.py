from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lookalike.config import Settings
from lookalike.engine import Engine
from lookalike.evaluation.report import evaluate
from lookalike.ingest.readers import read_catalog

pytestmark = pytest.mark.dataset


def test_report_compares_configs_with_grid(
    settings: Settings, slice_catalog: Path, tmp_path: Path
) -> None:
    engine = Engine(settings)
    engine.ingest(read_catalog(slice_catalog).records)
    out = tmp_path / "report"
    report = evaluate(engine, out, ["trim-gap-c0.1", "colorhist"], folds=2)
    engine.close()
    saved = json.loads((out / "report.json").read_text())
    assert saved["products"] == 200 and set(saved["configs"]) == {"trim-gap-c0.1", "colorhist"}
    cnn, colour = (saved["configs"][c]["overall"] for c in ("trim-gap-c0.1", "colorhist"))
    # The CNN must beat a colour histogram on category retrieval, and the histogram must
    # match colours at least as often: otherwise something is broken.
    assert cnn["precision@10"] > colour["precision@10"] + 0.2
    assert cnn["map@r"] > colour["map@r"]
    assert colour["color_match@10"] >= cnn["color_match@10"] - 0.02
    assert len(saved["configs"]["colorhist"]["folds"]) == 2
    md = (out / "report.md").read_text()
    assert "| config | precision@1 | precision@5 | precision@10 | map@r |" in md
    assert f"| trim-gap-c0.1 | {cnn['precision@1']:.3f} | " in md
    assert Image.open(out / "metrics.png").width >= 480
    grid = Image.open(out / report["configs"]["trim-gap-c0.1"]["grid"])
    assert grid.width > 500 and grid.height > 500
