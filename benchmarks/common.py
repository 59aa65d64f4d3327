"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import csv
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = (
    Path(os.environ.get("LOOKALIKE_DATASETS", REPO.parent / "shared" / "datasets"))
    / "fashion-products-dev"
)


def dev_rows() -> list[dict[str, str]]:
    """The dev set's label rows (exits with a message when the data set is absent)."""
    return label_rows(DATASET)


def label_rows(folder: Path) -> list[dict[str, str]]:
    """A data set's ``labels.csv`` rows (exits with a message when it is absent)."""
    labels = folder / "labels.csv"
    if not labels.exists():
        raise SystemExit(f"data set not found at {folder}; set LOOKALIKE_DATASETS")
    with labels.open(newline="") as f:
        return list(csv.DictReader(f))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
