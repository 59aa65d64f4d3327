"""The fine-tuning network: the frozen front of a base model (EfficientNet-Lite0 or
-Lite2), a trainable tail (its last MBConv block(s) and head convolution) and a
projection to the embedding."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lookalike.embeddings.backbone import load_classifier
from lookalike.models.specs import ModelSpec


class Front(nn.Module):
    """Stem and the first blocks: frozen, run once per image to cache activations."""

    def __init__(self, classifier: Any, cut: int) -> None:
        super().__init__()
        self.net = classifier
        self.cut = cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net: Any = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in list(net._blocks)[: self.cut]:
            x = block(x)
        return x


class Tail(nn.Module):
    """The trainable part: last blocks + head conv + pooling + projection (+ L2)."""

    def __init__(self, classifier: Any, cut: int, feature_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(list(classifier._blocks)[cut:])
        self.conv_head = classifier._conv_head
        self.bn = classifier._bn1
        self.act = classifier._swish
        self.projection = nn.Linear(feature_dim, embedding_dim)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The head activations (1280 x 7 x 7 for lite0); before training, exactly the
        pretrained model's (what the base embedder pools)."""
        for block in self.blocks:
            x = block(x)
        maps: torch.Tensor = self.act(self.bn(self.conv_head(x)))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection(self.feature_maps(x).mean(dim=(2, 3)))
        return nn.functional.normalize(x, dim=1)


class FineTuned(nn.Module):
    """Front and tail together: image batch in, embeddings out (what is exported)."""

    def __init__(self, front: Front, tail: Tail) -> None:
        super().__init__()
        self.front = front
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.tail(self.front(x))
        return out


def build(spec: ModelSpec, embedding_dim: int, unfrozen_blocks: int) -> tuple[Front, Tail]:
    """A fresh front/tail pair on ``spec``'s shipped ImageNet weights."""
    classifier: Any = load_classifier(spec)
    cut = len(classifier._blocks) - unfrozen_blocks
    front = Front(classifier, cut).eval()
    tail = Tail(classifier, cut, spec.feature_dim, embedding_dim)
    for p in front.parameters():
        p.requires_grad_(False)
    # The front holds the whole classifier, tail modules included: unfreeze those again
    # (before this, only the projection trained; SMVS photo R@1 0.330 -> 0.517 with it).
    for p in tail.parameters():
        p.requires_grad_(True)
    return front, tail


class ProxyAnchorLoss(nn.Module):
    """Proxy-Anchor (Kim et al., CVPR 2020): one learned proxy per class; each proxy pulls
    its class's embeddings and pushes the others away, weighted by hardness."""

    def __init__(self, classes: int, dim: int, margin: float = 0.1, alpha: float = 32.0) -> None:
        super().__init__()
        self.proxies = nn.Parameter(torch.randn(classes, dim) * (2.0 / dim) ** 0.5)
        self.margin = margin
        self.alpha = alpha

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        proxies = nn.functional.normalize(self.proxies, dim=1)
        cos = embeddings @ proxies.T  # B x C
        positive = nn.functional.one_hot(labels, proxies.shape[0]).bool()
        pos_exp = torch.exp(-self.alpha * (cos - self.margin)).masked_fill(~positive, 0)
        neg_exp = torch.exp(self.alpha * (cos + self.margin)).masked_fill(positive, 0)
        with_pos = positive.any(dim=0)
        pos_term = torch.log1p(pos_exp.sum(dim=0))[with_pos].sum() / with_pos.sum().clamp(min=1)
        neg_term = torch.log1p(neg_exp.sum(dim=0)).sum() / proxies.shape[0]
        return pos_term + neg_term
