"""The embedding model: one abstract class, one production inference session (ONNX
Runtime) and a PyTorch eager session (for the naive baseline and for training)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.config import Pooling, Preprocessing, Settings
from lookalike.embeddings import color
from lookalike.embeddings.backbone import FEATURE_DIM, weights_digest
from lookalike.embeddings.pooling import l2_normalize, pool
from lookalike.images.loader import LoadedImage
from lookalike.images.preprocess import model_input, to_square
from lookalike.training.registry import BASE_MODEL, ModelRegistry

if TYPE_CHECKING:
    import onnxruntime
    import torch

_SPEC = re.compile(r"^(trim|pad|crop)-(gap|gem)-c(0(?:\.\d+)?|1(?:\.0+)?)$")


@dataclass(frozen=True)
class EmbedderConfig:
    """What defines an embedding. Two catalogs embedded with equal configs (and weights)
    are comparable; anything else is a different model version."""

    preprocessing: Preprocessing = "trim"
    pooling: Pooling = "gap"
    color_weight: float = 0.1
    model: str = BASE_MODEL  # or a fine-tuned version from the registry
    cnn_dim: int = FEATURE_DIM

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbedderConfig:
        config = cls(settings.preprocessing, settings.pooling, settings.color_weight)
        return config.with_model(settings.model, settings.model_dir)

    def with_model(self, model: str, model_dir: Path) -> EmbedderConfig:
        """This config on another network: the base one or a registered fine-tuned one
        (whose embedding size its card gives). Raises KeyError for unknown versions."""
        if model == BASE_MODEL:
            return replace(self, model=BASE_MODEL, cnn_dim=FEATURE_DIM)
        card = ModelRegistry(model_dir / "registry").get(model).card
        return replace(self, model=model, pooling="gap", cnn_dim=int(card["embedding_dim"]))

    @classmethod
    def from_version(cls, version: str, model_dir: Path) -> EmbedderConfig:
        """The config that produced embeddings recorded under ``version``."""
        head, _, name = version.partition("/")
        return cls.parse(name).with_model(head.split("@")[0], model_dir)

    @classmethod
    def parse(cls, spec: str) -> EmbedderConfig:
        """Parse ``trim-gap-c0.1`` style names; ``colorhist`` is the colour-only baseline."""
        if spec == "colorhist":
            return cls("trim", "gap", 1.0)
        match = _SPEC.match(spec)
        if not match:
            raise ValueError(
                f"bad embedder spec {spec!r}: expected (trim|pad|crop)-(gap|gem)-c<weight 0..1>, "
                "e.g. trim-gap-c0.1, or 'colorhist'"
            )
        pre, pooling, weight = match.groups()
        return cls(pre, pooling, float(weight))  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        if self.color_weight >= 1.0:
            return "colorhist"
        return f"{self.preprocessing}-{self.pooling}-c{self.color_weight:g}"

    @property
    def version(self) -> str:
        """Model version recorded with every stored embedding."""
        if self.model == BASE_MODEL:
            return f"{BASE_MODEL}@{weights_digest()[:8]}/{self.name}"
        return f"{self.model}/{self.name}"

    @property
    def uses_cnn(self) -> bool:
        return self.color_weight < 1.0

    @property
    def dim(self) -> int:
        return (self.cnn_dim if self.uses_cnn else 0) + (color.DIM if self.color_weight > 0 else 0)


class Embedder(ABC):
    """Turns pictures into unit-length vectors whose dot product is their similarity:
    ``(1 - w) * cosine(CNN features) + w * colour-histogram overlap``."""

    def __init__(self, config: EmbedderConfig) -> None:
        self.config = config

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def dim(self) -> int:
        return self.config.dim

    def prepare(self, image: LoadedImage) -> PreparedImage:
        """All per-image work before the model: geometry, scaling, colour histogram.
        Safe to call from worker threads, so it overlaps with inference."""
        square = to_square(image.pixels, self.config.preprocessing)
        return PreparedImage(
            model_input([square])[0] if self.config.uses_cnn else None,
            color.color_descriptor(square) if self.config.color_weight > 0 else None,
        )

    def embed_prepared(self, batch: list[PreparedImage]) -> np.ndarray:
        """Embed prepared images as one batch: N x dim float32, rows of unit length."""
        w = self.config.color_weight
        parts = []
        if self.config.uses_cnn:
            x = np.stack([p.tensor for p in batch if p.tensor is not None])
            parts.append(np.sqrt(1.0 - w) * pool(self.feature_maps(x), self.config.pooling))
        if w > 0:
            parts.append(np.sqrt(w) * np.stack([p.color for p in batch if p.color is not None]))
        return l2_normalize(np.concatenate(parts, axis=1))

    def embed_images(self, images: list[LoadedImage]) -> np.ndarray:
        """Embed decoded pictures as one batch."""
        return self.embed_prepared([self.prepare(img) for img in images])

    @abstractmethod
    def feature_maps(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an N x 3 x 224 x 224 input: N x 1280 x 7 x 7 activations
        (base model), or N x D embeddings (fine-tuned models pool and project inside)."""


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the model: its input tensor (3 x 224 x 224) and colour part."""

    tensor: np.ndarray | None
    color: np.ndarray | None


class OnnxEmbedder(Embedder):
    """Production session: the exported trunk on ONNX Runtime, batched."""

    def __init__(self, config: EmbedderConfig, model_path: Path, threads: int) -> None:
        super().__init__(config)
        self._session: onnxruntime.InferenceSession | None = None
        if config.uses_cnn:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Idle ORT threads would spin and starve request handling and image decoding
            # on small machines (measured: 54 -> see docs/benchmarks.md core-ms/request).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(
                str(model_path), opts, providers=["CPUExecutionProvider"]
            )

    def feature_maps(self, batch: np.ndarray) -> np.ndarray:
        assert self._session is not None, "colour-only embedder has no CNN"
        out = self._session.run(["features"], {"images": np.ascontiguousarray(batch)})[0]
        return np.asarray(out)


class TorchEmbedder(Embedder):
    """PyTorch eager session of the same network (slow on CPU; the naive baseline)."""

    def __init__(self, config: EmbedderConfig, device: str = "cpu") -> None:
        super().__init__(config)
        import torch

        from lookalike.embeddings.backbone import FeatureMap, load_classifier

        self._torch = torch
        self._device = torch.device(device)
        self.model: torch.nn.Module = FeatureMap(load_classifier()).to(self._device).eval()

    def feature_maps(self, batch: np.ndarray) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(batch)).to(self._device)
        with self._torch.inference_mode():
            out: np.ndarray = self.model(x).cpu().numpy()
        return out


def create_embedder(settings: Settings, config: EmbedderConfig | None = None) -> Embedder:
    """The production embedder for ``config`` (default: the one the settings name)."""
    from lookalike.embeddings.onnx_export import onnx_model_path

    config = config or EmbedderConfig.from_settings(settings)
    if not config.uses_cnn:
        model_path = Path()
    elif config.model == BASE_MODEL:
        model_path = onnx_model_path(settings.model_dir)
    else:
        model_path = ModelRegistry(settings.model_dir / "registry").get(config.model).onnx_path
    return OnnxEmbedder(config, model_path, settings.onnx_threads)
