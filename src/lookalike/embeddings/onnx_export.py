"""Export a spec's trunk to ONNX once and keep it, keyed by the weights it was made from.

Importing this module is cheap: torch is imported only when a file has to be exported
(the first use of a spec in a model folder, and training), never to find one that is
already there.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.models.specs import ModelSpec, file_digest

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
OPSET = 17


def onnx_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the exported trunk of ``spec``'s installed weights lives, exported on first
    use (``lite0-trunk-579344248a93-opset17.onnx``)."""
    path = cache_dir / f"{trunk_stem(spec)}.onnx"
    if not path.exists():
        export_trunk(spec, path)
    return path


def trunk_stem(spec: ModelSpec) -> str:
    """The name every trunk file of ``spec``'s installed weights starts with: spec,
    weights digest and opset (``lite0-trunk-579344248a93-opset17``)."""
    return f"{spec.name}-trunk-{file_digest(spec.weights_path)[:12]}-opset{OPSET}"


def export_trunk(spec: ModelSpec, path: Path) -> None:
    """Export the feature trunk of ``spec``'s shipped weights."""
    from lookalike.embeddings.backbone import FeatureMap, load_classifier

    log.info("exporting the %s trunk to ONNX at %s", spec.architecture, path)
    export_model(FeatureMap(load_classifier(spec)), path, spec.input_size)


def export_model(model: torch.nn.Module, path: Path, input_size: int) -> None:
    """Export ``model`` (``input_size`` square images in, ``features`` out) with a dynamic
    batch axis; write-then-rename so a crash never leaves a half-written model behind."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dummy = torch.zeros(2, 3, input_size, input_size)
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
