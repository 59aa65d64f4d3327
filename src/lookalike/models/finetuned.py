"""Fine-tuned versions under ``MODEL_DIR/registry/<version>/`` (``lookalike train``).

Each version folder holds ``head.pt`` (trained weights), ``model.onnx`` (the whole
network, image in, embedding out), ``card.json`` (data, parameters, metrics, date, the
base model it was trained from) and ``curve.png`` (the training curve).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.models.specs import UnknownModelError, choices

_VERSION = re.compile(r"^ft-\d{8}-\d{6}-[0-9a-f]{6}$")


@dataclass(frozen=True)
class RegisteredModel:
    """One fine-tuned version: its folder and its card."""

    version: str
    folder: Path
    card: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def base(self) -> str:
        """The spec it was trained from: the head of the card's ``base_model`` version
        (``lite2@9656183e/trim-gap-c0.1`` -> ``lite2``; every card has one)."""
        return str(self.card["base_model"]).split("@")[0]


class ModelRegistry:
    """The fine-tuned versions kept in a model folder (``Settings.model_dir``)."""

    def __init__(self, model_dir: Path) -> None:
        self.root = model_dir / "registry"

    def folder(self, version: str) -> Path:
        """Where ``version`` lives (or will)."""
        if not _VERSION.match(version):
            raise UnknownModelError(f"unknown model {version!r}; {choices()}")
        return self.root / version

    def get(self, version: str) -> RegisteredModel:
        """A registered version; :class:`UnknownModelError` when there is none."""
        folder = self.folder(version)
        card = folder / "card.json"
        if not card.exists() or not (folder / "model.onnx").exists():
            raise UnknownModelError(f"no fine-tuned model {version!r} in {self.root}")
        return RegisteredModel(version, folder, json.loads(card.read_text()))

    def list(self) -> list[RegisteredModel]:
        """Every complete version, oldest first."""
        if not self.root.exists():
            return []
        found = []
        for folder in sorted(self.root.iterdir()):
            try:
                found.append(self.get(folder.name))
            except UnknownModelError:
                continue  # an unfinished or foreign folder
        return found
