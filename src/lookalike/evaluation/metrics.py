"""Leave-one-out retrieval metrics on a labeled catalog.

Every labeled product is a query against all the others (itself and byte-identical
copies of its image excluded). "Relevant" means "same category". Metrics:
Precision@k, and MAP@R from Musgrave et al., "A Metric Learning Reality Check" (2020):
R is the number of other products in the query's category, and
MAP@R = 1/R * sum_{i<=R} P(i) * rel(i). Colour match@10 is the share of the top 10 that
carry the query's colour label, where colours are known.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

KS = (1, 5, 10)


@dataclass
class QueryResult:
    index: int
    category: str
    precision: dict[int, float]
    map_at_r: float
    color_match: float | None
    neighbors: list[int]  # top 10, catalog positions


@dataclass
class Summary:
    queries: int
    precision: dict[int, float]
    map_at_r: float
    color_match: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"queries": self.queries}
        out.update({f"precision@{k}": round(v, 4) for k, v in self.precision.items()})
        out["map@r"] = round(self.map_at_r, 4)
        out["color_match@10"] = None if self.color_match is None else round(self.color_match, 4)
        return out


@dataclass
class EvalResult:
    overall: Summary
    per_category: dict[str, Summary]
    queries: list[QueryResult] = field(repr=False)


def leave_one_out(
    vectors: np.ndarray,
    categories: list[str],
    colors: list[str | None] | None = None,
    duplicate_keys: list[str] | None = None,
    chunk: int = 512,
) -> EvalResult:
    """Evaluate unit-length ``vectors`` (N x d) by leave-one-out retrieval."""
    n = len(categories)
    if vectors.shape[0] != n:
        raise ValueError("one category per vector is needed")
    cats = np.asarray(categories, dtype=object)
    _, cat_ids = np.unique(cats, return_inverse=True)
    counts = np.bincount(cat_ids)
    dup_ids = _codes(duplicate_keys) if duplicate_keys else np.arange(n)
    color_arr = np.asarray(colors, dtype=object) if colors else None
    depth = int(min(n - 1, max(max(KS), int(counts.max()) - 1 + 8)))
    results: list[QueryResult] = []
    vec = np.ascontiguousarray(vectors, dtype=np.float32)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        sims = vec[rows] @ vec.T
        # Exclude the query and byte-identical copies of its image.
        same_image = dup_ids[rows][:, None] == dup_ids[None, :]
        sims[same_image] = -np.inf
        top = np.argpartition(-sims, depth - 1, axis=1)[:, :depth]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        ranked = np.take_along_axis(top, order, axis=1)
        for local, (row, ranking) in enumerate(zip(rows, ranked, strict=True)):
            ranking = ranking[np.isfinite(sims[local, ranking])]  # drop excluded items
            results.append(_score(int(row), ranking, cat_ids, counts, dup_ids, cats, color_arr))
    scored = [r for r in results if not np.isnan(r.map_at_r)]
    by_cat: dict[str, list[QueryResult]] = defaultdict(list)
    for r in scored:
        by_cat[r.category].append(r)
    return EvalResult(
        overall=_summarise(scored),
        per_category={c: _summarise(rs) for c, rs in sorted(by_cat.items())},
        queries=results,
    )


def _codes(keys: list[str]) -> np.ndarray:
    _, codes = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    return codes


def _score(
    row: int,
    ranking: np.ndarray,
    cat_ids: np.ndarray,
    counts: np.ndarray,
    dup_ids: np.ndarray,
    cats: np.ndarray,
    colors: np.ndarray | None,
) -> QueryResult:
    own = cat_ids[row]
    # Other products of the same category, not counting copies of the query image.
    same_dup = (dup_ids == dup_ids[row]) & (cat_ids == own)
    r = int(counts[own] - same_dup.sum())
    rel = cat_ids[ranking] == own
    precision = {k: float(rel[:k].sum()) / k for k in KS}
    if r > 0:
        hits = rel[:r]
        cum = np.cumsum(hits)
        map_r = float((cum / np.arange(1, r + 1) * hits).sum() / r)
    else:
        map_r = float("nan")  # a category of one has nothing to find
    color_match = None
    if colors is not None and colors[row]:
        top = colors[ranking[:10]]
        color_match = float(np.mean(top == colors[row]))
    return QueryResult(row, str(cats[row]), precision, map_r, color_match, ranking[:10].tolist())


def _summarise(results: list[QueryResult]) -> Summary:
    if not results:
        return Summary(0, dict.fromkeys(KS, 0.0), 0.0, None)
    colors = [r.color_match for r in results if r.color_match is not None]
    return Summary(
        queries=len(results),
        precision={k: float(np.mean([r.precision[k] for r in results])) for k in KS},
        map_at_r=float(np.mean([r.map_at_r for r in results])),
        color_match=float(np.mean(colors)) if colors else None,
    )
