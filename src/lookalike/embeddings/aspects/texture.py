"""The texture descriptor: how each of the network's last feature channels varies over
the product (second-order statistics, as in Gatys et al.'s texture representation,
its diagonal): square-rooted channel standard deviations over the spatial positions.

It costs nothing beyond the model call (the activations are already there) and needs
the activation map, so it exists for the base networks only (a fine-tuned network pools
inside). Measured on the fashion dev set (docs/evaluation.md "Aspects"): ranked alone it
finds the query's pattern (striped, checked, printed, solid; from titles) as often as the
shape part does (pattern@10 0.395 vs 0.397): what it adds on this set is small, which
is why texture is not part of the default blend. Stronger texture features measured so
far need a mid-level layer's output (Gram matrix of block 10, +0.04 pattern@10) and a
projection fitted on the catalog.
"""

from __future__ import annotations

import numpy as np

from lookalike.embeddings.pooling import l2_normalize


def texture_descriptor(feature_maps: np.ndarray) -> np.ndarray:
    """N x C x H x W activations to N x C unit texture vectors."""
    flat = feature_maps.reshape(feature_maps.shape[0], feature_maps.shape[1], -1)
    return l2_normalize(np.sqrt(flat.astype(np.float32).std(axis=2)))
