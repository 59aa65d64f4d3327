"""Export the trunk to ONNX once and keep it, keyed by the weights it was made from."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from lookalike.embeddings.backbone import FeatureMap, load_classifier, weights_digest
from lookalike.images.preprocess import INPUT_SIZE

log = logging.getLogger(__name__)
OPSET = 17


def onnx_model_path(cache_dir: Path) -> Path:
    """Where the exported trunk for the installed weights lives (exported on first use)."""
    path = cache_dir / f"lite0-trunk-{weights_digest()[:12]}-opset{OPSET}.onnx"
    if not path.exists():
        export_trunk(path)
    return path


def export_trunk(path: Path) -> None:
    """Export the feature trunk of the shipped weights."""
    log.info("exporting EfficientNet-Lite0 trunk to ONNX at %s", path)
    export_model(FeatureMap(load_classifier()), path)


def export_model(model: torch.nn.Module, path: Path) -> None:
    """Export ``model`` (images in, ``features`` out) with a dynamic batch axis;
    write-then-rename so a crash never leaves a half-written model behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dummy = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (dummy,),
                tmp,
                input_names=["images"],
                output_names=["features"],
                dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
