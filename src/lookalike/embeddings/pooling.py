"""Pool a N x C x H x W activation map into L2-normalised N x C vectors."""

from __future__ import annotations

import numpy as np

from lookalike.config import Pooling

GEM_P = 3.0  # Radenović et al. 2018: p=3 is their fixed default for off-the-shelf features


def pool(features: np.ndarray, method: Pooling) -> np.ndarray:
    """Global average pooling (``gap``) or generalised-mean pooling (``gem``), then L2.
    Already pooled N x D input (a fine-tuned model's embedding) is only normalised."""
    if features.ndim == 2:
        return l2_normalize(features)
    flat = features.reshape(features.shape[0], features.shape[1], -1).astype(np.float32)
    if method == "gem":
        # ReLU6 activations are >= 0; the clip only guards against -0.0 round-off.
        np.clip(flat, 1e-6, None, out=flat)
        vec = np.power(np.mean(np.power(flat, GEM_P), axis=2), 1.0 / GEM_P)
    else:
        vec = flat.mean(axis=2)
    return l2_normalize(vec)


def l2_normalize(vec: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    out: np.ndarray = (vec / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
