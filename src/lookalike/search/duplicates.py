"""Duplicates and near-duplicates: groups of products whose photos are the same picture,
or nearly so (re-encoded, resized, cropped by about a tenth, mirrored, a small colour
shift).

Three steps, each measured on the dev set's photos and synthetic edits of 150 of them
(docs/evaluation.md, "Duplicates"; ``python -m benchmarks.duplicates``):

1. **Candidates**: every product's nearest neighbours in the product index (a batched
   k-NN of the stored global vectors; an IVF index past 20,000 products, so it is never
   all pairs), kept when their cosine reaches the threshold. These edits barely move the
   global vector: the median cosine to the original is 0.96 (resized to 50-80%) to
   0.99 (colour), and a mirrored photo stays at 0.93 or more, as average pooling forgets left
   and right.
2. **Verification**: the cosine alone mixes near-duplicates with other products shot the
   same way: two lipstick shades from one studio template reach 0.999, the same model in
   two pairs of jeans 0.96; at 0.88, 2,313 of the calibration catalog's 4,544 candidate
   pairs are different photos, and grouping them all chains them into large groups
   (pairwise precision 0.05). So each candidate pair's pictures are compared
   (:func:`picture_difference`): aligned at 48 px (either orientation, any scale from
   0.84 to 1.19 and any shift), then the share of the product's pixels that differ by
   more than a small colour shift decides (precision 0.992, recall 0.993).
3. **Groups**: union-find over the confirmed pairs, most alike first (a maximum spanning
   forest: a group's ``similarity`` is its weakest link). Byte-identical images (same
   sha256) are always a group, compared or not.

Verdicts depend only on the two images' bytes, so a caller may keep them between runs
(``verdicts``, keyed by the two sha256): after a deletion, the next run costs the k-NN
and the few pairs that a changed group needs compared anew.

Search results use the same decision (search/grouping.py): :func:`judge` compares two
products' photos through a :class:`PictureCache` and the same verdicts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.cache import BoundedCache
from lookalike.images.preprocess import BACKGROUND_MIN
from lookalike.index.base import ProductIndex
from lookalike.index.vector_index import all_build_threads
from lookalike.store.catalog import CatalogStore, ProductData

# The cosine a pair of stored vectors needs to be compared at all. On the dev set with
# synthetic edits (docs/evaluation.md): at 0.88, 98.7% of the copies resized to 50-80%
# and 99.3% of the 10% crops are grouped with their original, and every re-encode,
# mirror and colour shift; 0.85 finds one more of each (99.3% and 100%) for 2.4 times
# the comparisons (7,237 instead of 3,012 for 3,696 products).
DEFAULT_THRESHOLD = 0.88
# Below this, nearly every candidate is another product (at 0.80: 8 candidate pairs a
# product on the dev set, 93% of them different photos) and the comparisons' cost grows
# with them, for copies edited more than "nearly the same" covers.
MIN_THRESHOLD = 0.8

# Neighbours asked of the index per product; a product whose last neighbour still
# reaches the threshold is asked again for 4x as many, up to MAX_NEIGHBOURS (a group
# larger than that is still joined: every member links to hundreds of the others).
NEIGHBOURS = 8
MAX_NEIGHBOURS = 512

# The picture comparison. 48 px on the shorter side: 64 px separated no better and took
# 1.7 times as long. Alignment is searched on the grey picture at half that size over COARSE
# scales, both orientations and both ways round (which picture is the crop of which),
# then refined at full size over FINE steps around the best scale.
SIDE = 48
MAX_ASPECT = 4  # a longer side beyond 4x the shorter is scaled down further
COARSE = np.exp(np.linspace(np.log(0.84), np.log(1.19), 11))
FINE = np.exp(np.linspace(-0.03, 0.03, 5))
INNER = 0.8  # the middle of one picture (each side) is searched for in the other
# After a 3x3 blur, a pixel differs when a channel moves by more than this: JPEG at
# quality 35, a saturation change of 20% and a per-channel gamma of 0.9-1.1 stay under
# it; the same garment in another colour, another print on a T-shirt do not.
COLOUR_TOLERANCE = 32
# The same picture: at most this share of the product's pixels (not the white
# background) differ. The 752 edited copies against their original at 0.88: 99% at or
# under 0.038, the worst 0.056 (a crop, which still joins its group through the other
# copies); the 2,313 pairs of different photos: median 0.49, 95% over 0.16, and 18 at
# or under 0.05, most of them one studio shot with only the product's shade changed.
MAX_DIFFERING = 0.05
# Pictures kept while one connected component of candidates is compared (a component
# of 4,096 different photos: about 60 MB).
PICTURE_CACHE = 4096

#: A product's photo as RGB pixels (at least SIDE px on the shorter side; larger is
#: fine), or None when it cannot be read.
ReadPicture = Callable[[ProductData], np.ndarray | None]


@dataclass(frozen=True)
class DuplicateGroup:
    """Products whose photos are the same picture or nearly (by product id: the oldest
    first). ``similarity``: the cosine of the group's weakest link (1.0 when every image
    is byte-identical, ``identical``)."""

    products: tuple[ProductData, ...]
    similarity: float
    identical: bool


@dataclass(frozen=True)
class Duplicates:
    """The groups (largest first, then the most alike), and what the run looked at:
    ``candidates`` pairs reached the threshold, of which ``compared`` had their pictures
    compared (the others were already joined, or their verdict known); ``unreadable``:
    the SKUs whose photo could not be read (their pairs are left out)."""

    groups: tuple[DuplicateGroup, ...]
    threshold: float
    products: int
    candidates: int
    compared: int
    unreadable: tuple[str, ...] = ()


class UnionFind:
    """Disjoint sets of product ids (path halving, union by size)."""

    def __init__(self) -> None:
        self._parent: dict[int, int] = {}
        self._size: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self._parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; False when they were one set already."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self._size.get(ra, 1) < self._size.get(rb, 1):
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] = self._size.get(ra, 1) + self._size.get(rb, 1)
        return True

    def groups(self) -> list[list[int]]:
        """Every set of two or more, each sorted."""
        sets: dict[int, list[int]] = {}
        for x in list(self._parent):
            sets.setdefault(self.find(x), []).append(x)
        return [sorted(s) for s in sets.values() if len(s) > 1]


def candidate_pairs(
    index: ProductIndex,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    threshold: float,
    neighbours: int = NEIGHBOURS,
) -> list[tuple[float, int, int]]:
    """Pairs ``(cosine, a, b)`` with ``a < b`` whose vectors are at least ``threshold``
    alike, most alike first: each vector of ``chunks`` (ids, vectors; the stored ones)
    asks the index for its nearest neighbours. Work grows with the catalog times the
    neighbours, not with its square."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    total = len(index)
    for ids, vectors in chunks:
        todo = np.arange(len(ids))
        want = min(neighbours + 1, total)  # +1: the product itself comes back
        while len(todo) and want > 0:
            scores, hits = index.search(np.ascontiguousarray(vectors[todo]), want)
            rows = np.repeat(ids[todo], scores.shape[1])
            cols, sims = hits.ravel(), scores.ravel()
            keep = (cols >= 0) & (sims >= threshold) & (cols != rows)
            found.append((np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep], sims[keep]))
            # Rows whose every neighbour reached the threshold may have more beyond.
            full = (scores[:, -1] >= threshold) & (hits[:, -1] >= 0)
            if want >= min(total, MAX_NEIGHBOURS + 1):
                break
            todo, want = todo[full], min(want * 4, total, MAX_NEIGHBOURS + 1)
    if not found:
        return []
    a, b, s = (np.concatenate(parts) for parts in zip(*found, strict=True))
    # Each pair once (both ends find it), at its best score.
    order = np.lexsort((-s, b, a))
    a, b, s = a[order], b[order], s[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, s = a[first], b[first], s[first]
    best = np.lexsort((b, a, -s))
    return [(float(s[i]), int(a[i]), int(b[i])) for i in best]


@dataclass(frozen=True)
class Picture:
    """A photo at comparison size: RGB with SIDE px on its shorter side, its grey, and
    the grey at half size (and mirrored) for the coarse alignment, with the middle of
    that at each COARSE scale (``coarse[mirrored][i]``; None when under 4 px): the
    templates a comparison looks for, made once per picture, not once per pair."""

    rgb: np.ndarray
    gray: np.ndarray
    small: np.ndarray
    small_mirrored: np.ndarray
    coarse: tuple[tuple[np.ndarray | None, ...], tuple[np.ndarray | None, ...]]

    @classmethod
    def of(cls, pixels: np.ndarray) -> Picture:
        """From RGB pixels (H x W x 3, uint8) of any size."""
        h, w = pixels.shape[:2]
        scale = min(SIDE / min(h, w), MAX_ASPECT * SIDE / max(h, w))
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        rgb = cv2.resize(np.ascontiguousarray(pixels), size, interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        half = (max(1, size[0] // 2), max(1, size[1] // 2))
        small = cv2.resize(gray, half, interpolation=cv2.INTER_AREA)
        mirrored = np.ascontiguousarray(small[:, ::-1])
        coarse = tuple(
            tuple(_template(grey, float(s)) for s in COARSE) for grey in (small, mirrored)
        )
        return cls(rgb, gray, small, mirrored, (coarse[0], coarse[1]))


def _window(shape: tuple[int, ...], scale: float) -> tuple[int, int, int, int]:
    """(height, width) of a picture scaled by ``scale``, and of its middle part."""
    h, w = max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
    return h, w, round(h * INNER), round(w * INNER)


def _template(x: np.ndarray, scale: float) -> np.ndarray | None:
    """The middle of ``x`` scaled by ``scale``; None when it is under 4 px."""
    h, w, th, tw = _window(x.shape, scale)
    if th < 4 or tw < 4:
        return None
    scaled = cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA)
    top, left = (h - th) // 2, (w - tw) // 2
    return scaled[top : top + th, left : left + tw]


def _match(x: np.ndarray, y: np.ndarray, scale: float) -> tuple[float, tuple[int, int]]:
    """Where the middle of ``x`` scaled by ``scale`` fits best in ``y`` (grey pictures):
    the normalised correlation there and its top-left corner."""
    return _locate(_template(x, scale), y)


def _locate(template: np.ndarray | None, y: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Where ``template`` fits best in ``y``: the normalised correlation there and its
    top-left corner; -2.0 when there is no template or it is larger than ``y``."""
    if template is None:
        return -2.0, (0, 0)
    th, tw = template.shape[:2]
    if th > y.shape[0] or tw > y.shape[1]:
        return -2.0, (0, 0)
    result = cv2.matchTemplate(y, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, corner = cv2.minMaxLoc(result)
    if not np.isfinite(best):  # a flat middle (a blank picture): no shift is better
        return -1.0, ((y.shape[1] - tw) // 2, (y.shape[0] - th) // 2)
    return float(best), (int(corner[0]), int(corner[1]))


def picture_difference(a: Picture, b: Picture) -> float:
    """The share of the product's pixels (those not white in both) that differ between
    two pictures once aligned: 0.0 for the same picture, 0.04 or less for 99% of the
    edited copies measured, about 0.5 for different photos of alike products, 1.0 when
    they cannot be aligned at all."""
    coarse: tuple[float, Picture, Picture, bool, float] | None = None
    for x, y in ((a, b), (b, a)):
        for mirrored in (False, True):
            for scale, template in zip(COARSE, x.coarse[mirrored], strict=True):
                score, _ = _locate(template, y.small)
                if score > -2.0 and (coarse is None or score > coarse[0]):
                    coarse = (score, x, y, mirrored, scale)
    if coarse is None:
        return 1.0
    _, x, y, mirrored, around = coarse
    rgb = np.ascontiguousarray(x.rgb[:, ::-1]) if mirrored else x.rgb
    grey = np.ascontiguousarray(x.gray[:, ::-1]) if mirrored else x.gray
    fine: tuple[float, float, tuple[int, int]] | None = None
    for scale in around * FINE:
        score, corner = _match(grey, y.gray, scale)
        if score > -2.0 and (fine is None or score > fine[0]):
            fine = (score, scale, corner)
    if fine is None:
        return 1.0
    _, scale, (left, top) = fine
    h, w, th, tw = _window(rgb.shape, scale)
    scaled = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    y0, x0 = (h - th) // 2, (w - tw) // 2
    p = cv2.GaussianBlur(scaled[y0 : y0 + th, x0 : x0 + tw], (3, 3), 0).astype(np.int16)
    q = cv2.GaussianBlur(y.rgb[top : top + th, left : left + tw], (3, 3), 0).astype(np.int16)
    product = (p.min(axis=2) < BACKGROUND_MIN) | (q.min(axis=2) < BACKGROUND_MIN)
    if product.mean() < 0.01:  # (nearly) blank pictures: compare all of them
        product[:] = True
    differ = np.abs(p - q).max(axis=2) > COLOUR_TOLERANCE
    return float(differ[product].mean())


def same_picture(a: Picture, b: Picture) -> bool:
    """True when two pictures are the same photo, or an edited copy of it."""
    return picture_difference(a, b) <= MAX_DIFFERING


def picture_of(read: ReadPicture, product: ProductData) -> Picture | None:
    """A product's picture, or None when its photo cannot be read."""
    pixels = read(product)
    try:
        return None if pixels is None else Picture.of(pixels)
    except (cv2.error, ValueError):  # pixels no picture can be made of
        return None


class PictureCache:
    """The pictures of the last ``size`` photos asked for, by sha256, for callers that
    compare the same products again and again (search results: search/grouping.py).
    Safe to share between threads; a photo read twice at once is only wasted work."""

    def __init__(self, read: ReadPicture, size: int) -> None:
        self.read = read
        # An unreadable photo is kept too (as None): it stays unreadable.
        self._pictures: BoundedCache[str, Picture | None] = BoundedCache(size)

    def __call__(self, product: ProductData) -> Picture | None:
        sha = product.image_sha256
        found = self._pictures.read_through([sha], lambda _: {sha: picture_of(self.read, product)})
        return found[sha]


def judge(
    a: ProductData,
    b: ProductData,
    picture: Callable[[ProductData], Picture | None],
    verdicts: MutableMapping[tuple[str, str], bool],
) -> bool | None:
    """Whether two products' photos are the same picture: byte-identical images without a
    look, a verdict ``verdicts`` knows (kept by the two sha256), else their pictures
    compared (:func:`same_picture`) and the verdict kept. None when either photo cannot
    be read."""
    if a.image_sha256 == b.image_sha256:
        return True
    key = verdict_key(a, b)
    same = verdicts.get(key)
    if same is None:
        x, y = picture(a), picture(b)
        if x is None or y is None:
            return None
        same = verdicts[key] = same_picture(x, y)
    return same


class DuplicateFinder:
    """Finds the duplicate groups of one catalog: the store (products, stored vectors,
    shared images), the product index of ``model_version``, and how to read a photo."""

    def __init__(
        self,
        store: CatalogStore,
        index: ProductIndex,
        model_version: str,
        read: ReadPicture,
        verdicts: MutableMapping[tuple[str, str], bool] | None = None,
        workers: int = 0,
    ) -> None:
        self.store = store
        self.index = index
        self.model_version = model_version
        self.read = read
        self.verdicts: MutableMapping[tuple[str, str], bool] = {} if verdicts is None else verdicts
        self.workers = workers or min(8, os.cpu_count() or 1)

    def find(self, threshold: float = DEFAULT_THRESHOLD) -> Duplicates:
        """The duplicate groups at ``threshold`` (a cosine, MIN_THRESHOLD to 1)."""
        if not MIN_THRESHOLD <= threshold <= 1.0:
            raise ValueError(f"threshold must be between {MIN_THRESHOLD} and 1, not {threshold}")
        sets = UnionFind()
        joined: list[tuple[float, int, int]] = []  # the links that joined two sets
        for ids in self.store.shared_images():
            for other in ids[1:].tolist():
                if sets.union(int(ids[0]), other):
                    joined.append((1.0, int(ids[0]), other))
        count = len(self.index)
        if count > 1:
            # The whole catalog's k-NN is a batch job, like a build: FAISS on every core.
            with all_build_threads():
                pairs = candidate_pairs(
                    self.index, self.store.iter_vectors(self.model_version), threshold
                )
        else:
            pairs = []
        compared, unreadable = self._confirm(pairs, sets, joined)
        groups = self._groups(sets, joined)
        return Duplicates(
            tuple(groups),
            threshold,
            self.store.count(),
            len(pairs),
            compared,
            tuple(sorted(unreadable)),
        )

    def _confirm(
        self,
        pairs: Sequence[tuple[float, int, int]],
        sets: UnionFind,
        joined: list[tuple[float, int, int]],
    ) -> tuple[int, set[str]]:
        """Compare the pictures of candidate pairs and join those that show the same
        picture. The candidate graph's connected components are independent: they run in
        parallel, each one in order, most alike first, skipping the pairs its earlier
        links joined already (a catalog of 30 copies of one photo: 29 comparisons, not
        435). Returns how many pairs were compared and the unreadable SKUs."""
        products = self.store.by_ids(sorted({i for _, a, b in pairs for i in (a, b)}))
        components = UnionFind()
        for _, a, b in pairs:
            components.union(a, b)
        work: dict[int, list[tuple[float, ProductData, ProductData]]] = {}
        for score, a, b in pairs:
            pa, pb = products.get(a), products.get(b)
            if pa is not None and pb is not None:  # not deleted meanwhile
                work.setdefault(components.find(a), []).append((score, pa, pb))
        tasks = sorted(work.values(), key=len, reverse=True)  # the longest start first
        # The byte-identical sets each product belongs to, read before the threads start
        # (``sets`` changes below while they run).
        roots = {i: sets.find(i) for i in products}
        compared, unreadable = 0, set()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="duplicates") as pool:
            for links, count, unread in pool.map(lambda t: self._component(t, roots), tasks):
                for score, a, b in links:
                    if sets.union(a, b):
                        joined.append((score, a, b))
                compared += count
                unreadable |= unread
        return compared, unreadable

    def _component(
        self, pairs: list[tuple[float, ProductData, ProductData]], roots: dict[int, int]
    ) -> tuple[list[tuple[float, int, int]], int, set[str]]:
        """One connected component's pairs, in order: the links that join products (not
        in one byte-identical set already: ``roots``), the comparisons made, and the SKUs
        whose photo could not be read."""
        sets = UnionFind()
        links: list[tuple[float, int, int]] = []
        pictures = PictureCache(self.read, PICTURE_CACHE)  # each read once per component
        unreadable: set[str] = set()
        compared = 0
        for score, pa, pb in pairs:
            assert pa.id is not None and pb.id is not None
            a, b = roots[pa.id], roots[pb.id]
            if sets.find(a) == sets.find(b):
                continue  # a stronger link joined them already
            known = verdict_key(pa, pb) in self.verdicts
            same = judge(pa, pb, pictures, self.verdicts)
            if same is None:
                unreadable.update(p.sku for p in (pa, pb) if pictures(p) is None)
                continue
            compared += not known
            if same:
                sets.union(a, b)
                links.append((score, pa.id, pb.id))
        return links, compared, unreadable

    def _groups(
        self, sets: UnionFind, joined: list[tuple[float, int, int]]
    ) -> list[DuplicateGroup]:
        members = sets.groups()
        products = self.store.by_ids([i for group in members for i in group])
        weakest: dict[int, float] = {}
        for score, a, _ in joined:
            root = sets.find(a)
            weakest[root] = min(weakest.get(root, 1.0), score)
        groups = []
        for ids in members:
            found = tuple(products[i] for i in ids if i in products)
            if len(found) < 2:
                continue  # deleted while the run went on
            identical = len({p.image_sha256 for p in found}) == 1
            similarity = 1.0 if identical else weakest.get(sets.find(ids[0]), 1.0)
            groups.append(DuplicateGroup(found, round(similarity, 5), identical))
        groups.sort(key=lambda g: (-len(g.products), -g.similarity, g.products[0].id or 0))
        return groups


def verdict_key(a: ProductData, b: ProductData) -> tuple[str, str]:
    """A pair's verdict depends on the two images' bytes only."""
    x, y = a.image_sha256, b.image_sha256
    return (x, y) if x <= y else (y, x)
