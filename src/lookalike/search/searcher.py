"""Turn index neighbours into product results: filters, exclusions, duplicate collapse."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from lookalike.index.base import FilteringIndex, ProductIndex
from lookalike.store.catalog import CatalogStore, ProductData


@dataclass(frozen=True)
class Filters:
    """Restrict results to a category and/or a price range (inclusive)."""

    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.category, self.min_price, self.max_price))


Match = Literal["exact", "similar"]

# How many results a search returns, for every entry point (CLI, API; the web app asks
# within them): one definition, so the limits cannot drift apart again.
DEFAULT_K = 12
MAX_K = 100


@dataclass(frozen=True)
class SearchHit:
    """One result: the product, its similarity to the query, and whether the photo shows
    this very product (``exact``, with the verification's inlier count) or a look-alike.
    ``inliers`` is None when the result was not verified. ``aspects`` (each aspect's
    similarity) and ``colours`` (the product's dominant colours, ``#rrggbb`` and share)
    explain the result (search/aspects.py). ``listings``: other products with the same
    photo, ranked lower and shown as part of this result (byte-identical images always;
    near-duplicates when grouped: search/grouping.py)."""

    product: ProductData
    score: float
    match: Match = "similar"
    inliers: int | None = None
    aspects: dict[str, float] | None = None
    colours: tuple[tuple[str, float], ...] = ()
    listings: tuple[ProductData, ...] = ()

    def with_listings(self, other: SearchHit) -> SearchHit:
        """This result with ``other`` (and its listings) among its listings, each product
        once."""
        shown = {self.product.id, *(p.id for p in self.listings)}
        new = [p for p in (other.product, *other.listings) if p.id not in shown]
        return replace(self, listings=(*self.listings, *new)) if new else self


class Searcher:
    """Finds the k most similar products for query vectors."""

    def __init__(self, store: CatalogStore, index: ProductIndex) -> None:
        self.store = store
        self.index = index

    def search(
        self,
        query: np.ndarray,
        k: int,
        filters: Filters | None = None,
        exclude_ids: frozenset[int] = frozenset(),
        exclude_sha256: frozenset[str] = frozenset(),
        allowed: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> list[SearchHit]:
        """Top ``k`` distinct-looking products for one query vector.

        Products with a byte-identical image are collapsed to the best-ranked one (the
        others its ``listings``). If
        filters, exclusions or collapsing thin the list, the search widens until ``k``
        results are found or the candidates run out: never silently fewer. An index that
        applies filters itself (:class:`FilteringIndex`, Milvus) gets ``filters`` and
        ``exclude_ids``; the others get the ids the filters let through: ``allowed`` (the
        :meth:`allowed_ids` of ``filters``, when the caller has them already) saves
        reading them from the database again. ``query`` may have any length (a query whose
        aspects were reweighted): the index sees it at unit length and the scores are
        scaled back, so they are its inner products with the products' vectors. Such a
        query should be ``exhaustive``: an approximate index's lists were made for the
        default blend (colour alone: recall@10 0.25 with IVF at 100k products).
        """
        if k <= 0:
            return []
        index = self.index
        norm = float(np.linalg.norm(query)) or 1.0
        q = np.ascontiguousarray(query.reshape(1, -1) / norm, dtype=np.float32)
        # An index that filters itself gets the filters and the exclusions: no id list is
        # read from the database or sent, and excluded ids never come back.
        pushdown = (
            index
            if isinstance(index, FilteringIndex)
            and (allowed is None or (filters is not None and filters.active))
            else None
        )
        if pushdown is not None:
            excluded = np.fromiter(exclude_ids, dtype=np.int64, count=len(exclude_ids))
            available, extra = len(pushdown), 0

            def nearest(n: int) -> tuple[np.ndarray, np.ndarray]:
                return pushdown.search_filtered(q, n, filters, excluded, exhaustive)

        else:
            if allowed is None:
                allowed = self.allowed_ids(filters)
            if allowed is not None:
                allowed = allowed[np.isin(allowed, list(exclude_ids), invert=True)]
                if len(allowed) == 0:
                    return []
            available = len(index) if allowed is None else len(allowed)
            extra = len(exclude_ids)

            def nearest(n: int) -> tuple[np.ndarray, np.ndarray]:
                return index.search(q, n, allowed, exhaustive)

        fetch = min(available, k + extra + 8)
        while True:
            scores, ids = nearest(fetch)
            hits = self._collect(scores[0], ids[0], k, exclude_ids, exclude_sha256, norm)
            # A filtering index that returns fewer than asked has no more that pass (it
            # never under-fills); the others' count of passing products is ``available``.
            exhausted = pushdown is not None and int((ids[0] >= 0).sum()) < fetch
            if len(hits) >= k or fetch >= available or exhausted:
                return hits
            fetch = min(available, fetch * 4)

    def allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        """The ids of the products ``filters`` let through; None when nothing is filtered."""
        if filters is None or not filters.active:
            return None
        return self.store.filter_ids(filters.category, filters.min_price, filters.max_price)

    def _collect(
        self,
        scores: np.ndarray,
        ids: np.ndarray,
        k: int,
        exclude_ids: frozenset[int],
        exclude_sha256: frozenset[str],
        scale: float = 1.0,
    ) -> list[SearchHit]:
        # Only real neighbours are scaled: a padding slot's score is the float minimum.
        valid = [(int(i), float(s) * scale) for i, s in zip(ids, scores, strict=True) if i >= 0]
        products = self.store.by_ids([i for i, _ in valid if i not in exclude_ids])
        held: dict[str, int] = {}  # each image's result
        hits: list[SearchHit] = []
        for pid, score in valid:
            product = products.get(pid)
            # A product deleted after the index answered is skipped, not shown.
            if product is None or product.image_sha256 in exclude_sha256:
                continue
            fold(hits, held, SearchHit(product, score))
            if len(hits) == k:
                break
        return hits


def fold(out: list[SearchHit], held: dict[str, int], hit: SearchHit) -> None:
    """Append ``hit`` to ``out``, or, when a result there has its image (``held``: each
    image's place in ``out``), add it to that result's listings."""
    at = held.get(hit.product.image_sha256)
    if at is None:
        held[hit.product.image_sha256] = len(out)
        out.append(hit)
    else:
        out[at] = out[at].with_listings(hit)
