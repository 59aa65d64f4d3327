"""A model name resolved, in one place: ``lite0``, ``lite2`` or ``ft-...`` -> the network
that makes the CNN part of an embedding, its input and its version string."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookalike.models.finetuned import ModelRegistry
from lookalike.models.specs import DEFAULT_MODEL, SPECS, ModelSpec, get_spec


@dataclass(frozen=True)
class Network:
    """What a model name stands for. A base network outputs its last activations
    (``dim`` x h x w, pooled by the embedder); a fine-tuned one pools and projects
    inside (``dim`` wide) and takes its base's input."""

    name: str  # lite0-int8, lite0, lite2 or ft-...
    spec: ModelSpec  # the base network: input size and scaling
    dim: int
    onnx_file: Path | None = None  # a fine-tuned version's own export; None for a base

    @classmethod
    def base(cls, spec: ModelSpec) -> Network:
        """A base network as its spec gives it."""
        return cls(spec.name, spec, spec.feature_dim)

    @property
    def finetuned(self) -> bool:
        return self.onnx_file is not None

    @property
    def version(self) -> str:
        """The model part of the embedding version: ``lite0@<weights sha256[:8]>`` or the
        fine-tuned version (whose card names its base and weights)."""
        return self.name if self.finetuned else self.spec.version


DEFAULT_NETWORK = Network.base(SPECS[DEFAULT_MODEL])


def resolve_network(name: str, model_dir: Path) -> Network:
    """The network ``name`` stands for: a spec, or a fine-tuned version registered under
    ``model_dir``. Raises :class:`~lookalike.models.specs.UnknownModelError`, listing the
    choices, for anything else."""
    if not name.startswith("ft-"):
        return Network.base(get_spec(name))
    model = ModelRegistry(model_dir).get(name)
    return Network(name, get_spec(model.base), int(model.card["embedding_dim"]), model.onnx_path)
