"""Two-stage search for a photo: candidates, geometric verification, exact vs similar.

1. Candidates: the products nearest the photo's global vector (filters applied inside the
   index) and the products its local descriptors vote for (matching/descriptor_index).
2. Verification: each candidate's stored local features are matched to the photo's and a
   homography is fitted (matching/verify). A candidate that passes, and whose catalog
   image looks like the photo between the matched points (matching/appearance), is an
   *exact* match.
3. Results: exact matches first (most inliers first); then products verified with as
   many inliers but not exact (off-centre, or only a part matched: often another product
   in the same photo, or the product on a crowded shelf); then similar products. When the
   photographed product was found, "similar" means similar to *that product* (its clean
   catalog vector): a better query than a cluttered photo. Otherwise the photo's own
   vector is the query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from lookalike.index.vector_index import VectorIndex
from lookalike.matching.appearance import compared_size, structure
from lookalike.matching.descriptor_index import DescriptorIndex
from lookalike.matching.features import FEATURE_VERSION, LocalFeatures
from lookalike.matching.verify import Query, Verification, verify
from lookalike.search.searcher import Filters, Match, Searcher, SearchHit
from lookalike.store.catalog import CatalogStore, ProductData

log = logging.getLogger(__name__)

#: A catalog product's image as RGB pixels of the given (width, height), or None when it
#: cannot be read.
CatalogPixels = Callable[[ProductData, tuple[int, int]], np.ndarray | None]


@dataclass(frozen=True)
class VerifyParams:
    """How many candidates are verified, and what makes a match exact."""

    local_candidates: int = 8
    global_candidates: int = 4
    min_inliers: int = 15
    min_coverage: float = 0.3
    # Candidates with fewer votes are not verified: on SMVS the photographed product got
    # >= 2 votes in every photo (>= 4 in 99%) and the others 1 (median), so this skips
    # about 2 in 3 of the hopeless verifications and none of the right ones (3 would
    # lose 0.75% of them).
    min_votes: int = 2
    # The appearance check (matching/appearance.py): right SMVS matches >= 0.47.
    min_structure: float = 0.4
    # The photo's strongest keypoints that vote (all of them are verified): 600 of 1,000
    # gave the same SMVS R@1 and exact recall at 10k products, in 147 instead of 161 ms.
    vote_keypoints: int = 600


class PhotoSearcher:
    """Finds the photographed product (if the catalog has it) and similar products."""

    def __init__(
        self,
        store: CatalogStore,
        index: VectorIndex,
        local_index: DescriptorIndex | None,
        model_version: str,
        params: VerifyParams | None = None,
        catalog_pixels: CatalogPixels | None = None,
    ) -> None:
        self.store = store
        self.catalog_pixels = catalog_pixels
        self.searcher = Searcher(store, index)
        self.local_index = local_index
        self.model_version = model_version
        self.params = params or VerifyParams()

    def search(
        self,
        vector: np.ndarray,
        features: LocalFeatures | None,
        k: int,
        filters: Filters | None = None,
    ) -> list[SearchHit]:
        """Top ``k`` results for one photo: exact matches, then similar products."""
        p = self.params
        allowed = self.searcher.allowed_ids(filters)  # read once for every step below
        hits = self.searcher.search(vector, max(k, p.global_candidates), filters, allowed=allowed)
        if k <= 0 or features is None or len(features) == 0 or self.local_index is None:
            return hits[:k]
        checks = self._verify(Query.of(features), hits, allowed)
        ranked = sorted(
            (pid for pid, v in checks.items() if v.inliers >= p.min_inliers),
            key=lambda pid: -checks[pid].inliers,
        )
        products = self.store.by_ids(ranked)
        exact = [
            pid
            for pid in ranked
            if checks[pid].is_exact(p.min_inliers, p.min_coverage)
            and self._looks_alike(features, products.get(pid), checks[pid])
        ]
        verified = exact + [pid for pid in ranked if pid not in exact]
        # Each verified product's vector, read once: its score, and the anchor of the
        # similar products when it is the first exact match.
        vectors = {pid: self.store.vector(pid, self.model_version) for pid in verified}
        out: list[SearchHit] = []
        seen: set[str] = set()  # byte-identical images under other SKUs are shown once
        for pid in verified:
            product = products.get(pid)
            if product is None or product.image_sha256 in seen or len(out) >= k:
                continue
            seen.add(product.image_sha256)
            own = vectors[pid]
            score = float(np.dot(vector, own)) if own is not None else 0.0
            match: Match = "exact" if pid in exact else "similar"
            out.append(SearchHit(product, score, match, checks[pid].inliers))
        anchor = vectors[exact[0]] if exact else None
        if anchor is not None:
            hits = self.searcher.search(anchor, k + len(verified), filters, allowed=allowed)
        for hit in hits:
            if len(out) >= k:
                break
            if hit.product.image_sha256 in seen:
                continue
            seen.add(hit.product.image_sha256)
            check = checks.get(hit.product.id or -1)
            out.append(replace(hit, inliers=check.inliers) if check is not None else hit)
        return out

    def _looks_alike(
        self, features: LocalFeatures, product: ProductData | None, check: Verification
    ) -> bool:
        """The appearance check of a geometric match; True (geometry decides) when either
        picture is not at hand."""
        if features.pixels is None or product is None or self.catalog_pixels is None:
            return True
        catalog = self.catalog_pixels(product, compared_size(check.frame))
        if catalog is None:
            log.debug("no image for %s: its match is judged by geometry alone", product.sku)
            return True
        alike = structure(features.pixels, catalog, check)
        return alike is None or alike >= self.params.min_structure

    def _verify(
        self, query: Query, hits: list[SearchHit], allowed: np.ndarray | None
    ) -> dict[int, Verification]:
        assert self.local_index is not None
        p = self.params
        votes = self.local_index.votes(
            query.rootsift[: p.vote_keypoints], 4 * (p.local_candidates + p.global_candidates)
        )
        voted = [v.product_id for v in votes if v.votes >= p.min_votes]
        if allowed is not None:
            permitted = set(allowed.tolist())
            voted = [pid for pid in voted if pid in permitted]
        # The global nearest are verified too when the photo's descriptors back them.
        backed = set(voted)
        nearest = [h.product.id for h in hits[: p.global_candidates] if h.product.id in backed]
        candidates = list(dict.fromkeys(voted[: p.local_candidates] + nearest))
        stored = self.store.local_features(candidates, FEATURE_VERSION)
        return {
            pid: verify(query, LocalFeatures.from_bytes(data), p.min_inliers)
            for pid, data in stored.items()
        }
