"""The model registry: fine-tuned versions under ``HOME/models/registry/<version>/``.

Each version folder holds ``head.pt`` (trained weights), ``model.onnx`` (the whole
network, image in, embedding out), ``card.json`` (data, parameters, metrics, date) and
``curve.png`` (the training curve).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_MODEL = "lite0"
_VERSION = re.compile(r"^ft-\d{8}-\d{6}-[0-9a-f]{6}$")


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    folder: Path
    card: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.folder / "model.onnx"


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise KeyError(f"{version!r} is not a model version (ft-YYYYMMDD-HHMMSS-xxxxxx)")
        return self.root / version

    def get(self, version: str) -> RegisteredModel:
        folder = self.folder(version)
        card = folder / "card.json"
        if not card.exists() or not (folder / "model.onnx").exists():
            raise KeyError(f"no model {version!r} in {self.root}")
        return RegisteredModel(version, folder, json.loads(card.read_text()))

    def list(self) -> list[RegisteredModel]:
        if not self.root.exists():
            return []
        found = []
        for folder in sorted(self.root.iterdir()):
            try:
                found.append(self.get(folder.name))
            except KeyError:
                continue  # an unfinished or foreign folder
        return found
