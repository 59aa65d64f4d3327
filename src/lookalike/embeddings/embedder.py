"""The embedding model: one abstract class, one production inference session (ONNX
Runtime) and a PyTorch eager session (for the naive baseline and for tests).

Importing this module imports no torch: the runtime path (engine, API, CLI) runs on ONNX
Runtime, and torch is loaded only to export a missing ONNX file or by TorchEmbedder.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.config import Pooling, Preprocessing, Settings
from lookalike.embeddings.aspects import AspectLayout, colour
from lookalike.embeddings.aspects.colour import ColourSpace
from lookalike.embeddings.aspects.texture import texture_descriptor
from lookalike.embeddings.onnx_export import onnx_model_path
from lookalike.embeddings.pooling import l2_normalize, pool
from lookalike.embeddings.quantize import int8_model_path
from lookalike.images.loader import LoadedImage
from lookalike.images.preprocess import model_input, to_square
from lookalike.models import (
    DEFAULT_NETWORK,
    ModelRegistry,
    Network,
    UnknownModelError,
    resolve_network,
)

if TYPE_CHECKING:
    import onnxruntime
    import torch

_WEIGHT = r"(0(?:\.\d+)?|1(?:\.0+)?)"
_SPEC = re.compile(rf"^(trim|pad|crop)-(gap|gem)-(c|lab){_WEIGHT}(?:-t{_WEIGHT})?$")
# A config name's colour tag: "c" the HSV histogram (catalogs embedded before the CIELAB
# one), "lab" the CIELAB one (embeddings/aspects/colour.py).
_COLOUR_TAG: dict[ColourSpace, str] = {"hsv": "c", "lab": "lab"}


@dataclass(frozen=True)
class EmbedderConfig:
    """What defines an embedding. Two catalogs embedded with equal configs (and weights)
    are comparable; anything else is a different model version."""

    preprocessing: Preprocessing = "trim"
    pooling: Pooling = "gap"
    color_weight: float = 0.09
    network: Network = DEFAULT_NETWORK
    texture_weight: float = 0.0
    colour_space: ColourSpace = "lab"

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbedderConfig:
        """The config the settings name (``LOOKALIKE_MODEL``, preprocessing, ...)."""
        config = cls(
            settings.preprocessing,
            settings.pooling,
            settings.color_weight,
            texture_weight=settings.texture_weight,
            colour_space=settings.colour_space,
        )
        try:
            return config.with_model(settings.model, settings.model_dir)
        except UnknownModelError as exc:
            raise UnknownModelError(f"LOOKALIKE_MODEL={settings.model}: {exc}") from None

    def with_model(self, model: str, model_dir: Path) -> EmbedderConfig:
        """This config on another network: a base one (``lite0``, ``lite2``) or a
        registered fine-tuned one, which pools inside. Raises UnknownModelError (a
        KeyError) for anything else."""
        network = resolve_network(model, model_dir)
        if network.finetuned:  # it pools inside: no activation map, so no texture part
            return replace(self, network=network, pooling="gap", texture_weight=0.0)
        return replace(self, network=network)

    @classmethod
    def from_version(cls, version: str, model_dir: Path) -> EmbedderConfig:
        """The config that produced embeddings recorded under ``version``
        (``lite0@57934424/trim-gap-c0.1``; the digest may be left out)."""
        head, _, name = version.partition("/")
        return cls.parse(name).with_model(head.split("@")[0], model_dir)

    @classmethod
    def resolve(
        cls, name: str, model_dir: Path, current: EmbedderConfig | None = None
    ) -> EmbedderConfig:
        """A configuration by any of its names: a model version (``lite2/trim-gap-c0.1``,
        with or without the weights digest), a config name alone (``trim-gap-c0.1``,
        ``colorhist``: on ``current``'s base network, a float catalog staying float; on the
        default one without it or for a fine-tuned ``current``), a fine-tuned version
        (``ft-...``: as it was trained) or a base model (``lite2``: ``current``'s
        preprocessing on it)."""
        if "/" in name:
            return cls.from_version(name, model_dir)
        if name == "colorhist" or _SPEC.match(name):
            parsed = cls.parse(name)
            if current is None or current.network.finetuned:
                return parsed
            return replace(parsed, network=current.network)
        if name.startswith("ft-"):
            card = ModelRegistry(model_dir).get(name).card
            return cls.parse(card["config_name"]).with_model(name, model_dir)
        try:
            return (current or cls()).with_model(name, model_dir)
        except UnknownModelError as exc:
            raise UnknownModelError(
                f"{exc}; or a configuration such as trim-gap-c0.1 or colorhist"
            ) from None

    @classmethod
    def parse(cls, spec: str) -> EmbedderConfig:
        """Parse ``trim-gap-lab0.1`` style names: geometry, pooling, the colour
        descriptor (``lab``, or ``c`` for the HSV one) and its share, optionally
        ``-t<share>`` for texture; ``colorhist`` is the colour-only (HSV) baseline."""
        if spec == "colorhist":
            return cls("trim", "gap", 1.0, colour_space="hsv")
        match = _SPEC.match(spec)
        if not match:
            raise ValueError(
                f"bad embedder spec {spec!r}: expected (trim|pad|crop)-(gap|gem)-(lab|c)"
                "<weight 0..1>[-t<weight 0..1>], e.g. trim-gap-lab0.1, or 'colorhist'"
            )
        pre, pooling, tag, weight, tex = match.groups()
        if float(weight) + float(tex or 0) > 1:
            raise ValueError(f"bad embedder spec {spec!r}: colour and texture shares exceed 1")
        space: ColourSpace = "hsv" if tag == "c" else "lab"
        return cls(
            pre,  # type: ignore[arg-type]
            pooling,  # type: ignore[arg-type]
            float(weight),
            texture_weight=float(tex or 0),
            colour_space=space,
        )

    @property
    def name(self) -> str:
        if self.color_weight >= 1.0 and self.colour_space == "hsv":
            return "colorhist"
        tag = _COLOUR_TAG[self.colour_space]
        name = f"{self.preprocessing}-{self.pooling}-{tag}{self.color_weight:g}"
        return f"{name}-t{self.texture_weight:g}" if self.texture_weight > 0 else name

    @property
    def version(self) -> str:
        """Model version recorded with every stored embedding:
        ``<model>@<weights sha256[:8]>/<config name>``, or ``ft-.../<config name>``."""
        return f"{self.network.version}/{self.name}"

    @property
    def shape_weight(self) -> float:
        """The CNN features' share: what colour and texture leave."""
        return max(0.0, 1.0 - self.color_weight - self.texture_weight)

    @property
    def uses_cnn(self) -> bool:
        return self.shape_weight > 0 or self.texture_weight > 0

    @property
    def layout(self) -> AspectLayout:
        """Where each aspect lies in this config's vectors (embeddings/aspects)."""
        return AspectLayout.of(
            {
                "shape": self.shape_weight,
                "colour": self.color_weight,
                "texture": self.texture_weight,
            },
            {
                "shape": self.network.dim,
                "colour": colour.DESCRIPTORS[self.colour_space][0],
                "texture": self.network.spec.feature_dim,
            },
        )

    @property
    def dim(self) -> int:
        return self.layout.parts[-1].stop


class Embedder(ABC):
    """Turns pictures into unit-length vectors whose dot product is their similarity:
    ``shape share * cosine(CNN features) + colour share * colour-histogram overlap +
    texture share * texture cosine`` (embeddings/aspects)."""

    def __init__(self, config: EmbedderConfig) -> None:
        self.config = config

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def dim(self) -> int:
        return self.config.dim

    def prepare(self, image: LoadedImage) -> PreparedImage:
        """All per-image work before the model: geometry, scaling, colour and texture
        descriptors. Safe to call from worker threads, so it overlaps with inference."""
        config = self.config
        spec = config.network.spec
        square = to_square(image.pixels, config.preprocessing, spec.input_size)
        return PreparedImage(
            model_input([square], spec.input_mean, spec.input_std)[0] if config.uses_cnn else None,
            colour.DESCRIPTORS[config.colour_space][1](square) if config.color_weight > 0 else None,
        )

    def embed_prepared(self, batch: list[PreparedImage]) -> np.ndarray:
        """Embed prepared images as one batch: N x dim float32, rows of unit length."""
        config = self.config
        parts = []
        if config.uses_cnn:
            x = np.stack([p.tensor for p in batch if p.tensor is not None])
            maps = self.feature_maps(x)
            if config.shape_weight > 0:
                parts.append(np.sqrt(config.shape_weight) * pool(maps, config.pooling))
        if config.color_weight > 0:
            colours = np.stack([p.color for p in batch if p.color is not None])
            parts.append(np.sqrt(config.color_weight) * colours)
        if config.texture_weight > 0:  # from the same activations (a base network's)
            parts.append(np.sqrt(config.texture_weight) * texture_descriptor(maps))
        return l2_normalize(np.concatenate(parts, axis=1))

    def embed_images(self, images: list[LoadedImage]) -> np.ndarray:
        """Embed decoded pictures as one batch."""
        return self.embed_prepared([self.prepare(img) for img in images])

    @abstractmethod
    def feature_maps(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an N x 3 x S x S input (S: the spec's input size): its last
        activations (base model: N x 1280 x 7 x 7 for lite0), or N x D embeddings
        (fine-tuned models pool and project inside)."""


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the model: its input tensor (3 x S x S) and colour part."""

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
    """PyTorch eager session of the same base network (slow on CPU; the naive baseline)."""

    def __init__(self, config: EmbedderConfig, device: str = "cpu") -> None:
        super().__init__(config)
        import torch

        from lookalike.embeddings.backbone import FeatureMap, load_classifier

        if config.network.finetuned or config.network.spec.quantizes:
            raise ValueError(
                "TorchEmbedder runs float base networks only; fine-tuned and int8 ones are ONNX"
            )
        self._torch = torch
        self._device = torch.device(device)
        classifier = load_classifier(config.network.spec)
        self.model: torch.nn.Module = FeatureMap(classifier).to(self._device).eval()

    def feature_maps(self, batch: np.ndarray) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(batch)).to(self._device)
        with self._torch.inference_mode():
            out: np.ndarray = self.model(x).cpu().numpy()
        return out


def create_embedder(settings: Settings, config: EmbedderConfig | None = None) -> Embedder:
    """The production embedder for ``config`` (default: the one the settings name)."""
    config = config or EmbedderConfig.from_settings(settings)
    model_path = model_file(config, settings.model_dir) or Path()
    return OnnxEmbedder(config, model_path, settings.onnx_threads)


def model_file(config: EmbedderConfig, model_dir: Path) -> Path | None:
    """The ONNX file ``config`` runs (exported into ``model_dir`` on first use); None for
    a colour-only config."""
    network = config.network
    if not config.uses_cnn:
        return None
    if network.onnx_file is not None:  # fine-tuned: exported by training
        return network.onnx_file
    if network.spec.quantizes:
        return int8_model_path(network.spec, model_dir)
    return onnx_model_path(network.spec, model_dir)
