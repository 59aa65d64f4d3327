"""Do the aspects mean what they say? Leave-one-out on a labeled catalog per aspect
weighting, and a simulated shopper giving "more / less like this" feedback.

Labels: ``category`` (shape), ``color`` (colour), and a pattern read from the title
(texture, :func:`pattern_of`). Metrics: same-category P@10 and MAP@R, colour@10 and
pattern@10 (the share of the top 10 with the query's label, over queries that have one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lookalike.embeddings.aspects import AspectLayout
from lookalike.evaluation.metrics import leave_one_out
from lookalike.search.aspects import AspectWeights
from lookalike.search.feedback import rocchio

# A title's pattern, first matching rule first; a title matching none has no label. On
# the fashion dev set 565 of 2,946 titles get one: printed 257, striped 107, solid 101,
# checked 100 (docs/evaluation.md "Aspects").
PATTERN_RULES: tuple[tuple[str, str], ...] = (
    ("printed", r"\bfloral|\bflowers?\b"),  # floral prints: too few (13) for a class
    ("checked", r"\bchecks?\b|\bchecked\b|\bplaids?\b"),
    ("striped", r"\bstripes?\b|\bstriped\b"),
    ("printed", r"\bprint(ed|s)?\b|\bgraphics?\b|\blogo\b"),
    ("solid", r"\bsolid\b|\bplain\b"),
)


def pattern_of(title: str | None) -> str | None:
    """The pattern a product title names (striped, checked, printed, solid), or None;
    a title naming both stripes and checks is ambiguous: None."""
    text = (title or "").lower()
    found = [name for name, rule in PATTERN_RULES if re.search(rule, text)]
    if not found or ("checked" in found and "striped" in found):
        return None
    return found[0]


@dataclass(frozen=True)
class Labels:
    """The labels of a catalog's products, in the order of its vectors."""

    categories: list[str]
    colours: list[str | None]
    patterns: list[str | None]
    duplicate_keys: list[str]  # equal for byte-identical images: never each other's result


def weighed(vectors: np.ndarray, layout: AspectLayout, weights: AspectWeights) -> np.ndarray:
    """Stored vectors rescaled so that their inner products are the ``weights``' sum of
    aspect cosines (each part at unit length times the square root of its weight): what
    a weighted query's search computes, in a form leave-one-out can use."""
    resolved = weights.resolve(layout)
    out = np.zeros_like(vectors, dtype=np.float32)
    for p in layout.parts:
        part = vectors[:, p.start : p.stop]
        norms = np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
        out[:, p.start : p.stop] = part / norms * np.sqrt(resolved[p.aspect])
    return out


def aspect_metrics(vectors: np.ndarray, labels: Labels) -> dict[str, float]:
    """P@10, MAP@R, colour@10 and pattern@10 of leave-one-out retrieval with (weighed,
    unit) ``vectors``."""
    result = leave_one_out(vectors, labels.categories, labels.colours, labels.duplicate_keys)
    patterns = np.asarray(labels.patterns, dtype=object)
    shares = [
        float(np.mean(patterns[q.neighbors] == patterns[q.index]))
        for q in result.queries
        if patterns[q.index] is not None
    ]
    return {
        "p@10": result.overall.precision[10],
        "map@r": result.overall.map_at_r,
        "colour@10": result.overall.color_match or 0.0,
        "pattern@10": float(np.mean(shares)) if shares else 0.0,
    }


def simulated_feedback(vectors: np.ndarray, labels: Labels, k: int = 10) -> dict[str, float]:
    """One round of a simulated shopper: for every query, the top ``k``'s same-category
    results are marked "more like this" and the others "less like this" (at most k
    marks, as the API allows); same-category P@k before and after (the "less" ones are
    never shown again, as in search). ``vectors``: weighed, unit."""
    cats = np.asarray(labels.categories, dtype=object)
    _, dup = np.unique(np.asarray(labels.duplicate_keys, dtype=object), return_inverse=True)
    before, after = [], []
    for i in range(len(vectors)):
        sims = vectors @ vectors[i]
        sims[dup == dup[i]] = -np.inf
        top = np.argsort(-sims)[:k]
        relevant = cats[top] == cats[i]
        before.append(float(relevant.mean()))
        refined = rocchio(vectors[i], vectors[top[relevant]], vectors[top[~relevant]])
        again = vectors @ refined
        again[dup == dup[i]] = -np.inf
        again[top[~relevant]] = -np.inf
        after.append(float(np.mean(cats[np.argsort(-again)[:k]] == cats[i])))
    return {"p@10 before": float(np.mean(before)), "p@10 after": float(np.mean(after))}
