"""The aspects of "looks alike" a shopper can weigh: shape, colour and texture.

A stored vector is the concatenation of one unit-length part per aspect, each scaled by
the square root of its stored share (``shape`` = the CNN features, ``colour`` =
:mod:`.colour`, ``texture`` = :mod:`.texture`), so the dot product of two vectors is the
shares' weighted sum of the parts' cosines. :class:`AspectLayout` says where each part
lies; search (``search/aspects.py``) rescales a query's parts to weigh the aspects
differently without touching the stored vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Aspect = Literal["shape", "colour", "texture"]
ASPECTS: tuple[Aspect, ...] = ("shape", "colour", "texture")


@dataclass(frozen=True)
class Part:
    """One aspect's slice of a stored vector and the share it was stored with."""

    aspect: Aspect
    start: int
    stop: int
    share: float


@dataclass(frozen=True)
class AspectLayout:
    """Where each aspect's part lies in a model version's vectors. An aspect stored with
    share 0 has no part: it cannot be weighed in that catalog."""

    parts: tuple[Part, ...]

    @classmethod
    def of(cls, shares: dict[Aspect, float], dims: dict[Aspect, int]) -> AspectLayout:
        """The layout of vectors made of ``dims[a]``-long parts stored with ``shares[a]``
        (in :data:`ASPECTS` order, parts with a zero share left out)."""
        parts, start = [], 0
        for aspect in ASPECTS:
            if shares.get(aspect, 0.0) > 0:
                parts.append(Part(aspect, start, start + dims[aspect], shares[aspect]))
                start += dims[aspect]
        return cls(tuple(parts))

    @property
    def aspects(self) -> tuple[Aspect, ...]:
        return tuple(p.aspect for p in self.parts)

    @property
    def shares(self) -> dict[Aspect, float]:
        """The stored shares: the weights a query has when it gives none."""
        return {p.aspect: p.share for p in self.parts}

    def part(self, vector: np.ndarray, aspect: Aspect) -> np.ndarray | None:
        """``aspect``'s part of ``vector`` (or of each row of a matrix), unscaled to unit
        length; None when this layout has no such part."""
        for p in self.parts:
            if p.aspect == aspect:
                out: np.ndarray = np.asarray(vector[..., p.start : p.stop]) / np.sqrt(p.share)
                return out
        return None
