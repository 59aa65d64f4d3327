"""Weigh shape, colour and texture per query, and say how alike each result is in each.

Stored vectors hold one unit part per aspect scaled by the square root of its stored
share s (embeddings/aspects). Scaling a query's part by ``w / sqrt(s)`` makes the inner
product with every stored vector exactly ``sum(w * cosine of that aspect)``: any
weighting is one ordinary index search, with no re-embedding and nothing stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from lookalike.embeddings.aspects import ASPECTS, Aspect, AspectLayout, colour
from lookalike.errors import AspectError
from lookalike.index.base import MIN_ALIGNMENT
from lookalike.search.searcher import SearchHit

# Each weight lies in 0..1 (CLI, API and the web client's sliders share these bounds).
MIN_WEIGHT, MAX_WEIGHT = 0.0, 1.0


@dataclass(frozen=True)
class AspectWeights:
    """How much each aspect counts, 0..1; None = its share in the stored vectors (the
    default blend). Only the ratios matter."""

    shape: float | None = None
    colour: float | None = None
    texture: float | None = None

    @property
    def given(self) -> bool:
        return any(getattr(self, a) is not None for a in ASPECTS)

    def resolve(self, layout: AspectLayout) -> dict[Aspect, float]:
        """The weights summing to 1 over the aspects ``layout`` has. Raises AspectError
        for a weight on an aspect the layout lacks, or when every weight is 0."""
        shares = layout.shares
        weights: dict[Aspect, float] = {}
        for aspect in ASPECTS:
            value = getattr(self, aspect)
            if aspect not in shares:
                if value:
                    raise AspectError(
                        f"this catalog's vectors have no {aspect} part (embedded without "
                        f"it): set LOOKALIKE_{'COLOR' if aspect == 'colour' else aspect.upper()}"
                        "_WEIGHT above 0 and re-embed (`lookalike reembed`) to weigh it"
                    )
                continue
            weights[aspect] = shares[aspect] if value is None else float(value)
        total = sum(weights.values())
        if total <= 0:
            raise AspectError("at least one aspect weight must be above 0")
        return {a: w / total for a, w in weights.items()}


def needs_exhaustive(original: np.ndarray, weighted: np.ndarray) -> bool:
    """Whether a query reweighted from ``original`` to ``weighted`` must be searched
    exhaustively (see MIN_ALIGNMENT)."""
    denominator = float(np.linalg.norm(original) * np.linalg.norm(weighted))
    return denominator > 0 and float(original @ weighted) / denominator < MIN_ALIGNMENT


def reweighs(weights: AspectWeights, layout: AspectLayout) -> bool:
    """Whether ``weights`` ask for another blend than the one ``layout``'s vectors were
    stored with (``{"texture": 0}`` on a catalog without texture does not)."""
    if not weights.given:
        return False
    resolved, shares = weights.resolve(layout), layout.shares
    return any(abs(resolved[a] - shares[a]) > 1e-6 for a in shares)


def weighted_query(vector: np.ndarray, layout: AspectLayout, weights: AspectWeights) -> np.ndarray:
    """``vector`` (a query or a product's stored vector) rescaled so that its inner
    product with a stored vector is the ``weights``' sum of the aspects' cosines. Not unit
    length: the searcher normalises it and scales the scores back. Given no weights, the
    vector as it is (today's blend, bit for bit)."""
    if not weights.given:
        return vector
    resolved = weights.resolve(layout)
    out = np.zeros_like(vector, dtype=np.float32)
    for p in layout.parts:
        part = vector[p.start : p.stop]
        norm = float(np.linalg.norm(part))
        if norm > 0:
            out[p.start : p.stop] = part * (resolved[p.aspect] / (norm * np.sqrt(p.share)))
    return out


def similarities(query: np.ndarray, other: np.ndarray, layout: AspectLayout) -> dict[str, float]:
    """Each aspect's cosine between two vectors of ``layout``."""
    out: dict[str, float] = {}
    for p in layout.parts:
        a, b = query[p.start : p.stop], other[p.start : p.stop]
        denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
        out[p.aspect] = round(float(np.dot(a, b)) / denominator, 4) if denominator > 0 else 0.0
    return out


def palette(vector: np.ndarray, layout: AspectLayout) -> list[tuple[str, float]]:
    """The dominant colours (``#rrggbb``, share) a vector's colour part describes; empty
    when its layout has no colour part."""
    part = layout.part(vector, "colour")
    return [] if part is None else colour.swatches(part)


@lru_cache(maxsize=4096)
def _stored_palette(part: bytes) -> tuple[tuple[str, float], ...]:
    """A stored vector's colour part's swatches, kept: every answer shows its results'
    (0.08 ms each), and the same products keep coming back."""
    return tuple(colour.swatches(np.frombuffer(part, dtype=np.float32)))


def explain(
    hits: list[SearchHit],
    references: list[np.ndarray],
    vectors: dict[int, np.ndarray],
    layout: AspectLayout,
) -> list[SearchHit]:
    """The hits with their per-aspect similarities to their reference (the vector each
    was ranked against) and their dominant colours; a hit whose vector is missing stays
    as it is."""
    out = []
    for hit, reference in zip(hits, references, strict=True):
        vector = vectors.get(hit.product.id or -1)
        if vector is not None:
            part = layout.part(vector, "colour")
            hit = replace(
                hit,
                aspects=similarities(reference, vector, layout),
                colours=()
                if part is None
                else _stored_palette(np.ascontiguousarray(part, dtype=np.float32).tobytes()),
            )
        out.append(hit)
    return out
