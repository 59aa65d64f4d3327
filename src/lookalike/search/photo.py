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
   vector is the query, and the local evidence that fell short of a verified match still
   counts: products the photo's descriptors voted for rank higher (``vote_weight``). A
   small or distant product, a 3D or glossy one, gets a few votes but too few inliers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from lookalike.embeddings.aspects import AspectLayout
from lookalike.index.base import FilteringIndex, ProductIndex
from lookalike.matching.appearance import compare, compared_size
from lookalike.matching.descriptor_index import DescriptorIndex, SameListing
from lookalike.matching.features import FEATURE_VERSION, LocalFeatures
from lookalike.matching.verify import Query, Verification, verify
from lookalike.search.aspects import explain
from lookalike.search.feedback import Refinement
from lookalike.search.searcher import Filters, Match, Searcher, SearchHit, fold
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
    # Between studio-lit pictures: edited copies of fashion photos <= 0.002 of the matched
    # region in another colour, other SKUs in another colour 0.055 and more.
    max_recoloured: float = 0.05
    # The photo's strongest keypoints that vote (all of them are verified): 600 of 1,000
    # gave the same SMVS R@1 and exact recall at 10k products, in 147 instead of 161 ms.
    vote_keypoints: int = 600
    # Without an exact match, the photo's rerank_depth nearest products are re-ranked by
    # cosine + vote_weight x min(votes, FULL_VOTES) / FULL_VOTES. SMVS photos shrunk to
    # 200 px (the product small or far away: verification mostly fails): R@1 0.63 -> 0.88;
    # at 320 px 0.91 -> 0.97; full-size photos unchanged (verified); photos of absent
    # products: a DVD cover first 0.965 / 0.985 (0.96 / 0.975 without); fashion catalog
    # photos searched for other products: same-category P@10 0.669 either way
    # (docs/evaluation.md "Partial local evidence"). Voted products from beyond the
    # shortlist are not brought in: products with printed text collect stray votes (a
    # moisturiser got 8 from DVD photos), and let in they put fashion first for 5% of the
    # absent products' photos.
    vote_weight: float = 0.5
    rerank_depth: int = 100


# Votes at which local evidence counts in full: wrong candidates get 1 vote in 95% of
# SMVS photos and >= 10 in 0.3%; the photographed product >= 10 in 87% (200 px photos).
FULL_VOTES = 10


# Photos one query may combine (the API's query_ids).
MAX_PHOTOS = 5


#: Which of some products (ids) pass the search's filters.
Passing = Callable[[list[int]], set[int]]

#: How to look closer at parts of a photo: each region's local features, best bet first
#: (decoded again from the file when asked).
Zoom = Callable[[], Iterator[LocalFeatures]]


@dataclass(frozen=True)
class PhotoQuery:
    """One photo of a query: its local features (None when they are off) and, if the
    file holds finer detail, how to describe its regions closer up."""

    features: LocalFeatures | None
    zoom: Zoom | None = None


class _Matches(NamedTuple):
    """What a photo's local features found: its votes, the verifications, the verified
    products (most inliers first), the exact ones among them, and their rows."""

    votes: dict[int, int]
    checks: dict[int, Verification]
    ranked: list[int]
    exact: list[int]
    products: dict[int, ProductData]


class _References(NamedTuple):
    """What :meth:`PhotoSearcher.rank` ranked its results against: the photo's vector,
    the matched product's (``anchor``, when a product was found) and the ids ranked for
    the photo itself (the verified ones)."""

    photo: np.ndarray
    anchor: np.ndarray | None = None
    verified: frozenset[int | None] = frozenset()


class PhotoSearcher:
    """Finds the photographed product (if the catalog has it) and similar products."""

    def __init__(
        self,
        store: CatalogStore,
        index: ProductIndex,
        local_index: DescriptorIndex | None,
        model_version: str,
        layout: AspectLayout,
        params: VerifyParams | None = None,
        catalog_pixels: CatalogPixels | None = None,
        same_listing: SameListing | None = None,
    ) -> None:
        self.store = store
        self.same_listing = same_listing
        self.layout = layout
        self.catalog_pixels = catalog_pixels
        self.searcher = Searcher(store, index)
        self.local_index = local_index
        self.model_version = model_version
        self.params = params or VerifyParams()
        self._references = _References(np.zeros(0, np.float32))

    def rank(
        self,
        vector: np.ndarray,
        photos: Sequence[PhotoQuery],
        k: int,
        filters: Filters | None = None,
        refinement: Refinement | None = None,
    ) -> list[SearchHit]:
        """Top ``k`` results for a query of one or more photos of the same product (or
        of "things like these"), whose vectors combine into ``vector``: exact matches
        of any photo, then similar products. ``refinement`` (aspect weights, "more/less
        like this") shapes the similar products; which product a photo shows does not
        depend on it. :meth:`explained` then says how alike each result is in each
        aspect (search/aspects.py): for the results kept, once a caller has cut them
        (grouping listings cuts 19 candidates to 10)."""
        p = self.params
        refinement = refinement or Refinement()
        query = refinement.query(vector, self.layout)
        excluded = refinement.exclude_ids
        # The ids the filters let through, read once for every step below; none for an
        # index that applies the filters itself (the voted products alone are checked).
        filtering = isinstance(self.searcher.index, FilteringIndex)
        allowed = None if filtering else self.searcher.allowed_ids(filters)
        passing = self._passing(filters, allowed)
        described = [
            photo for photo in photos if photo.features is not None and len(photo.features) > 0
        ]
        local = bool(described) and self.local_index is not None
        # Which product the photo shows does not depend on the refinement (weights say
        # what else to show, marks which way to lean): a refined photo's candidates come
        # from its own vector, searched in the geometry the index was built for, and the
        # refined search runs once, after the matching: around the matched product or,
        # without one, the photo. A weighted one scans the part rows (index/parts.py):
        # run for both, it made a colour-only search at 100k 22% slower than the plain
        # one at p50, against 9% once (docs/benchmarks.md).
        refined = local and (refinement.reweighed or refinement.marked)
        if refined:
            hits = self.searcher.search(
                vector, p.global_candidates, filters, excluded, allowed=allowed
            )
        else:
            # The photo's rerank_depth nearest are re-ranked by its votes (below).
            depth = max(k, p.global_candidates, p.rerank_depth if local else 0)
            hits = self.searcher.search(
                query,
                depth,
                filters,
                excluded,
                allowed=allowed,
                exhaustive=refinement.exhaustive(vector, query),
            )
        if k <= 0 or not local:
            self._references = _References(vector)
            return hits[:k]
        found = _merged([self._match_photo(photo, hits, passing) for photo in described])
        votes, checks, ranked, exact, products = found
        # "Less like this" is never shown again, not even when the photo matches it.
        exact = [pid for pid in exact if pid not in excluded]
        verified = exact + [pid for pid in ranked if pid not in exact and pid not in excluded]
        # Each verified product's vector, read once: its score, and the anchor of the
        # similar products when it is the first exact match.
        vectors = self.store.vectors(verified, self.model_version)
        out: list[SearchHit] = []
        # Byte-identical images under other SKUs are shown once: the first one's listings.
        held: dict[str, int] = {}
        for pid in verified:
            product = products.get(pid)
            if product is None or len(out) >= k:
                continue
            own = vectors.get(pid)
            score = float(np.dot(query, own)) if own is not None else 0.0
            match: Match = "exact" if pid in exact else "similar"
            fold(out, held, SearchHit(product, score, match, checks[pid].inliers))
        anchor = vectors.get(exact[0]) if exact else None
        # The verified ones are ranked for the photo; the rest against the anchor.
        self._references = _References(vector, anchor, frozenset(h.product.id for h in out))
        if anchor is not None:
            anchored = refinement.query(anchor, self.layout)
            hits = self.searcher.search(
                anchored,
                k + len(verified),
                filters,
                excluded,
                allowed=allowed,
                exhaustive=refinement.exhaustive(anchor, anchored),
            )
        elif refined:
            # The votes are evidence of *this* product (its printed detail), which the
            # default blend ranks for. A shopper who weighed the aspects asked for
            # something else ("same colour"): their weighted score alone ranks.
            by_votes = not refinement.reweighed
            hits = self.searcher.search(
                query,
                max(k, p.rerank_depth) if by_votes else k + len(verified),
                filters,
                excluded,
                allowed=allowed,
                exhaustive=refinement.exhaustive(vector, query),
            )
            if by_votes:
                hits = self._with_votes(hits, votes)
        else:
            hits = self._with_votes(hits, votes)
        for hit in hits:
            if len(out) >= k:
                break
            check = checks.get(hit.product.id or -1)
            fold(out, held, replace(hit, inliers=check.inliers) if check is not None else hit)
        return out

    def explained(self, hits: list[SearchHit]) -> list[SearchHit]:
        """Hits of the last :meth:`rank` with their aspect similarities to what they were
        ranked against: the verified ones (and all, without a matched product) to the
        photo, the rest to the matched product."""
        ref = self._references
        ids = [h.product.id for h in hits if h.product.id is not None]
        vectors = self.store.vectors(ids, self.model_version)
        references = [
            ref.photo if ref.anchor is None or h.product.id in ref.verified else ref.anchor
            for h in hits
        ]
        return explain(hits, references, vectors, self.layout)

    def _passing(self, filters: Filters | None, allowed: np.ndarray | None) -> Passing | None:
        """Which products pass ``filters``: among the ``allowed`` ids when they were read,
        else by asking the database about those products alone; None without filters."""
        if filters is None or not filters.active:
            return None
        if allowed is not None:
            permitted = set(allowed.tolist())
            return lambda ids: permitted.intersection(ids)
        store, f = self.store, filters
        return lambda ids: set(store.filter_ids(f.category, f.min_price, f.max_price, ids).tolist())

    def _match_photo(
        self, photo: PhotoQuery, hits: list[SearchHit], passing: Passing | None
    ) -> _Matches:
        """What one photo's local features find; when that is no exact match, what its
        centre finds, looked at closer (if that finds one)."""
        assert photo.features is not None
        found = self._match(photo.features, hits, passing)
        if found.exact or photo.zoom is None:
            return found
        # Nothing matched the whole photo: the product may be small in it (on a shelf,
        # across the room). Its regions at a finer resolution get a second look, the
        # centre first, until one matches.
        for closer in photo.zoom():
            if len(closer) > 0:
                second = self._match(closer, hits, passing)
                if second.exact:
                    return second
        return found

    def _match(
        self, features: LocalFeatures, hits: list[SearchHit], passing: Passing | None
    ) -> _Matches:
        p = self.params
        votes, checks = self._verify(Query.of(features), hits, passing)
        ranked = sorted(
            (pid for pid, v in checks.items() if v.inliers >= p.min_inliers),
            key=lambda pid: -checks[pid].inliers,
        )
        # Verified products without a row (deleted since the indexes were read) are
        # neither shown nor the anchor of the similar products.
        products = self.store.by_ids(ranked)
        ranked = [pid for pid in ranked if pid in products]
        exact = [
            pid
            for pid in ranked
            if checks[pid].is_exact(p.min_inliers, p.min_coverage)
            and self._looks_alike(features, products[pid], checks[pid])
        ]
        return _Matches(votes, checks, ranked, exact, products)

    def _looks_alike(
        self, features: LocalFeatures, product: ProductData, check: Verification
    ) -> bool:
        """The appearance check of a geometric match; True (geometry decides) when either
        picture is not at hand."""
        if features.pixels is None or self.catalog_pixels is None:
            return True
        catalog = self.catalog_pixels(product, compared_size(check.frame))
        if catalog is None:
            log.debug("no image for %s: its match is judged by geometry alone", product.sku)
            return True
        seen = compare(features.pixels, catalog, check)
        return seen.alike(self.params.min_structure, self.params.max_recoloured)

    def _with_votes(self, hits: list[SearchHit], votes: dict[int, int]) -> list[SearchHit]:
        """The photo's nearest products ranked by cosine plus their share of the vote
        bonus."""
        p = self.params

        def fused(hit: SearchHit) -> float:
            n = votes.get(hit.product.id or -1, 0)
            return hit.score + p.vote_weight * min(n, FULL_VOTES) / FULL_VOTES

        return sorted(hits, key=fused, reverse=True)

    def _verify(
        self, query: Query, hits: list[SearchHit], passing: Passing | None
    ) -> tuple[dict[int, int], dict[int, Verification]]:
        """The photo's votes ({product id: votes}, filters applied) and the verification
        of the candidates they and the global vector suggest."""
        assert self.local_index is not None
        p = self.params
        found = self.local_index.votes(
            query.rootsift[: p.vote_keypoints],
            4 * (p.local_candidates + p.global_candidates),
            self.same_listing,
        )
        if passing is not None:
            permitted = passing([v.product_id for v in found])
            found = [v for v in found if v.product_id in permitted]
        votes = {v.product_id: v.votes for v in found}
        voted = [v.product_id for v in found if v.votes >= p.min_votes]
        # The global nearest are verified too when the photo's descriptors back them.
        backed = set(voted)
        nearest = [h.product.id for h in hits[: p.global_candidates] if h.product.id in backed]
        candidates = list(dict.fromkeys(voted[: p.local_candidates] + nearest))
        stored = self.store.local_features(candidates, FEATURE_VERSION)
        return votes, {
            pid: verify(query, LocalFeatures.from_bytes(data), p.min_inliers)
            for pid, data in stored.items()
        }


def _merged(found: list[_Matches]) -> _Matches:
    """Several photos' findings as one: votes added, each product's best verification,
    verified and exact products ranked by that verification's inliers."""
    if len(found) == 1:
        return found[0]
    votes: dict[int, int] = {}
    checks: dict[int, Verification] = {}
    products: dict[int, ProductData] = {}
    exact: set[int] = set()
    for f in found:
        for pid, n in f.votes.items():
            votes[pid] = votes.get(pid, 0) + n
        for pid, check in f.checks.items():
            if pid not in checks or check.inliers > checks[pid].inliers:
                checks[pid] = check
        products.update(f.products)
        exact.update(f.exact)
    ranked = sorted({pid for f in found for pid in f.ranked}, key=lambda pid: -checks[pid].inliers)
    return _Matches(votes, checks, ranked, [pid for pid in ranked if pid in exact], products)
