"""Each spec's shipped ImageNet weights load strictly and behave as a trained network
should, on the input size and scaling its spec gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from lookalike.embeddings.backbone import load_classifier
from lookalike.images.preprocess import model_input, to_square
from lookalike.models import SPECS, ModelSpec

CAT_CLASSES = set(range(281, 286))  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian
STATE_KEYS = {"lite0": 296, "lite2": 386}  # tensors in each weights file


# Quantized specs share their float spec's weights (tests/embeddings/test_quantize.py).
@pytest.fixture(scope="module", params=sorted(n for n, s in SPECS.items() if not s.quantizes))
def spec(request: pytest.FixtureRequest) -> ModelSpec:
    return SPECS[request.param]


@pytest.fixture(scope="module")
def classifier(spec: ModelSpec) -> torch.nn.Module:
    return load_classifier(spec)


def _batch(spec: ModelSpec, *arrays: np.ndarray) -> np.ndarray:
    squares = [
        to_square(Image.fromarray(a).convert("RGB"), "crop", spec.input_size) for a in arrays
    ]
    return model_input(squares, spec.input_mean, spec.input_std)


def test_weights_load_strictly(spec: ModelSpec, classifier: torch.nn.Module) -> None:
    # load_classifier uses strict=True; this pins the parameter count of the file too.
    assert len(classifier.state_dict()) == STATE_KEYS[spec.name]
    assert not classifier.training


def test_classifies_a_real_cat_photo(spec: ModelSpec, classifier: torch.nn.Module) -> None:
    with torch.no_grad():
        logits = classifier(torch.from_numpy(_batch(spec, skdata.chelsea())))
    top5 = set(logits.topk(5).indices[0].tolist())
    assert top5 & CAT_CLASSES, f"no cat class in top 5: {top5}"
    assert int(logits.argmax()) in CAT_CLASSES


def _batchnorm_mismatch(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Mean KL divergence between each BatchNorm layer's input statistics on ``x`` and
    the running statistics the network was trained with (lower = inputs as in training)."""
    kls: list[float] = []

    def hook(mod: torch.nn.BatchNorm2d, inp: tuple[torch.Tensor], _out: torch.Tensor) -> None:
        i = inp[0]
        mu, var = i.mean((0, 2, 3)), i.var((0, 2, 3)).clamp_min(1e-3)
        assert mod.running_mean is not None and mod.running_var is not None
        rm, rv = mod.running_mean, mod.running_var.clamp_min(1e-3)
        kls.append(float((0.5 * (torch.log(rv / var) + (var + (mu - rm) ** 2) / rv - 1)).mean()))

    hooks = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return float(np.mean(kls))


def test_input_scaling_is_the_tensorflow_one(spec: ModelSpec, classifier: torch.nn.Module) -> None:
    """These are converted TF weights: the spec's (x - 127) / 128 must fit the BatchNorm
    statistics better than the ImageNet mean/std that the weights package's README shows."""
    assert (spec.input_mean, spec.input_std) == (127.0, 128.0)
    photos = [skdata.chelsea(), skdata.astronaut(), skdata.coffee(), skdata.rocket()]
    tf_scaled = torch.from_numpy(_batch(spec, *photos))
    raw = tf_scaled * 128 + 127
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    imagenet_scaled = (raw / 255 - mean) / std
    tf_kl = _batchnorm_mismatch(classifier, tf_scaled)
    imagenet_kl = _batchnorm_mismatch(classifier, imagenet_scaled)
    assert tf_kl < 0.7 * imagenet_kl, (tf_kl, imagenet_kl)
