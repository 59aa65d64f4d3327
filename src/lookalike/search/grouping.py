"""Listings of one photo as one search result: when several results show the same
picture (byte-identical, or a re-encoded, resized, cropped, mirrored or recoloured copy
under another SKU), the best-ranked one is the result and the others its ``listings``,
so that k results are k distinct photos.

The decision is the duplicates tool's (search/duplicates.py), applied to the ranked
results instead of the whole catalog: two results are compared when their stored
vectors reach its threshold's cosine (0.88), and are the same photo when their pictures
say so (:func:`~lookalike.search.duplicates.judge`). Byte-identical images are folded by
the searchers already (searcher.py, photo.py), for free.

Cost: the results are walked in rank order and each one is compared only with the
members of the groups above it that reach the threshold, most alike first, stopping at
the first that shows the same picture, and only until k groups are full. Pictures are
kept by sha256 (a :class:`~lookalike.search.duplicates.PictureCache`) and verdicts by
the two sha256 (the engine shares them with its duplicate runs), so a result set seen
before costs a few dictionary lookups. Measured in docs/evaluation.md, "Duplicates".
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence

import numpy as np

from lookalike.search.duplicates import DEFAULT_THRESHOLD, Picture, judge
from lookalike.search.searcher import SearchHit
from lookalike.store.catalog import CatalogStore, ProductData


def candidates(k: int) -> int:
    """How many results to rank for ``k`` groups: a few more than ``k``, so that folding
    listings into their group seldom leaves fewer than ``k`` (then the caller asks for
    twice as many: :func:`grouped`)."""
    return k + k // 2 + 4


class ListingGrouper:
    """Groups the listings of one photo among ranked results of one catalog: its store
    (the products' stored vectors of ``model_version``), the pictures and the verdicts
    kept between searches."""

    def __init__(
        self,
        store: CatalogStore,
        model_version: str,
        picture: Callable[[ProductData], Picture | None],
        verdicts: MutableMapping[tuple[str, str], bool],
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.store = store
        self.model_version = model_version
        self.picture = picture
        self.verdicts = verdicts
        self.threshold = threshold

    def group(self, hits: Sequence[SearchHit], k: int) -> list[SearchHit]:
        """The first ``k`` groups of ``hits`` (best first), each the best-ranked hit with
        the others among its listings, in rank order."""
        if k <= 0:
            return []
        if len(hits) < 2:
            return list(hits[:k])
        ids = [h.product.id for h in hits]
        stored = self.store.vectors([i for i in ids if i is not None], self.model_version)
        vectors = [stored.get(i) if i is not None else None for i in ids]
        out: list[SearchHit] = []
        members: list[tuple[int, int]] = []  # (hit, its group in out) for every grouped hit
        for i, hit in enumerate(hits):
            if len(out) == k:
                break
            group = self._group_of(i, hits, vectors, members)
            if group is None:
                members.append((i, len(out)))
                out.append(hit)
            else:
                members.append((i, group))
                out[group] = out[group].with_listings(hit)
        return out

    def same_listing(self, a: int, b: int) -> bool:
        """Whether products ``a`` and ``b`` (ids) are listings of one photo: their stored
        vectors reach the threshold's cosine and their pictures say so (the photo
        search asks this of products its matches are ambiguous between)."""
        vectors = self.store.vectors([a, b], self.model_version)
        if a not in vectors or b not in vectors:
            return False
        if float(np.dot(vectors[a], vectors[b])) < self.threshold:
            return False
        products = self.store.by_ids([a, b])
        if a not in products or b not in products:
            return False
        return bool(judge(products[a], products[b], self.picture, self.verdicts))

    def _group_of(
        self,
        i: int,
        hits: Sequence[SearchHit],
        vectors: list[np.ndarray | None],
        members: list[tuple[int, int]],
    ) -> int | None:
        """The group (its place in the answer) whose photo hit ``i`` shows, if any: the
        members whose stored vectors reach the threshold's cosine with its own (as the
        index scores them) are compared, most alike first, up to the first same one."""
        own = vectors[i]
        if own is None:
            return None
        near = []
        for j, group in members:
            other = vectors[j]
            # One dot product at a time: a matrix product goes to BLAS threads, which
            # wait for cores the model's and the index's threads hold (70 ms, not 0.02).
            alike = float(np.dot(own, other)) if other is not None else -1.0
            if alike >= self.threshold:
                near.append((alike, j, group))
        product = hits[i].product
        for _, j, group in sorted(near, key=lambda t: -t[0]):
            if judge(hits[j].product, product, self.picture, self.verdicts):
                return group
        return None


def grouped(
    search: Callable[[int], list[SearchHit]], k: int, grouper: ListingGrouper
) -> list[SearchHit]:
    """``k`` results of distinct photos: ``search(n)`` ranks n candidates (fewer when the
    catalog or the filters have no more), which are grouped; when folding listings left
    fewer than ``k`` groups and there may be more candidates, twice as many are ranked."""
    want = candidates(k)
    while True:
        hits = search(want)
        out = grouper.group(hits, k)
        if len(out) >= k or len(hits) < want:
            return out
        want *= 2
