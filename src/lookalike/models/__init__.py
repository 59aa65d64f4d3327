"""Which model: the specs of the base networks, the fine-tuned versions made from them,
and the one place a model name is resolved. Runtime-safe: imports no torch."""

from lookalike.models.finetuned import ModelRegistry, RegisteredModel
from lookalike.models.network import DEFAULT_NETWORK, Network, resolve_network
from lookalike.models.specs import (
    DEFAULT_MODEL,
    SPECS,
    ModelSpec,
    UnknownModelError,
    get_spec,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_NETWORK",
    "SPECS",
    "ModelRegistry",
    "ModelSpec",
    "Network",
    "RegisteredModel",
    "UnknownModelError",
    "get_spec",
    "resolve_network",
]
