"""The engine: one object that owns the store, the model session and the index, and
offers the catalog operations the CLI (and the API) expose."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.cache import BoundedCache
from lookalike.config import Settings
from lookalike.embeddings.aspects import AspectLayout
from lookalike.embeddings.embedder import Embedder, EmbedderConfig, create_embedder
from lookalike.errors import (
    FeedbackError,
    ImageError,
    ModelVersionError,
    ProductNotFoundError,
    UnknownCategoryError,
)
from lookalike.images.loader import LoadedImage, load_image, read_image_bytes
from lookalike.images.preprocess import INPUT_SIZE
from lookalike.images.query import CENTRE, closer_views, combine, query_views
from lookalike.index.base import ProductIndex
from lookalike.index.factory import create_backend
from lookalike.index.manager import IndexManager, SyncReport
from lookalike.ingest.pipeline import (
    ImageLimits,
    IngestSummary,
    RecordEmbedder,
    feature_blob,
    ingest_records,
)
from lookalike.ingest.readers import CatalogRecord
from lookalike.matching.descriptor_index import DescriptorIndex
from lookalike.matching.features import QUERY_MAX_SIDE, LocalFeatures, query_features
from lookalike.matching.manager import LocalIndexManager
from lookalike.search.aspects import AspectWeights, explain, reweighs
from lookalike.search.duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateFinder,
    Duplicates,
    PictureCache,
)
from lookalike.search.duplicates import SIDE as DUPLICATE_SIDE
from lookalike.search.feedback import MAX_FEEDBACK, Feedback, Refinement
from lookalike.search.grouping import ListingGrouper, grouped
from lookalike.search.photo import PhotoQuery, PhotoSearcher, VerifyParams, Zoom
from lookalike.search.searcher import Filters, Searcher, SearchHit
from lookalike.store.catalog import CatalogStore, ProductData
from lookalike.threads import limit_threads

log = logging.getLogger(__name__)

# A second look at a photo's centre is worth it when it shows the centre at least this much
# finer than the whole photo's features did (a 1,280 px photo: 1.67x).
ZOOM_MIN_GAIN = 1.25
# Duplicate runs kept (by catalog generation, model and threshold: the API pages through
# one), and picture verdicts kept between runs (two sha256 and a bool: about 250 bytes
# each; the dev set's 2,946 products have 1,574 candidate pairs at the default threshold).
DUPLICATE_RUNS = 4
DUPLICATE_VERDICTS = 200_000
# Pictures of search results kept for grouping the listings of one photo (about 14 KB
# each for a 3:4 photo).
LISTING_PICTURES = 1024
# Catalog pictures kept for the appearance check (at most 192 px a side: 110 KB each),
# by sha256 and size.
APPEARANCE_PICTURES = 256
PictureKey = tuple[str, tuple[int, int]]


@dataclass(frozen=True)
class SearchSession:
    """What one search uses, taken together: the model, its product index, and the
    local-feature index (None when local features are off)."""

    embedder: Embedder
    index: ProductIndex
    version: str
    local_index: DescriptorIndex | None = None

    @property
    def layout(self) -> AspectLayout:
        """Where the aspects lie in this version's vectors."""
        return self.embedder.config.layout


@dataclass(frozen=True)
class QueryResult:
    """The results for one query image."""

    query: str
    hits: list[SearchHit]
    error: str | None = None


class Engine:
    """Catalog operations on one home folder / database.

    The model and index load lazily, once, and are reused for every call. Queries are
    always embedded with the model version the catalog was embedded with, so a catalog
    never mixes versions.
    """

    def __init__(self, settings: Settings) -> None:
        # Searches run side by side, each on its share of the cores (threads.py).
        limit_threads(settings.onnx_threads)
        self.settings = settings
        self.store = CatalogStore(settings.resolved_database_url)
        self._lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._index: ProductIndex | None = None
        self._local: DescriptorIndex | None = None
        self._local_dirty = False
        self.last_sync: SyncReport | None = None
        self._generation = self.store.generation()
        self._own_changes = self.store.own_changes
        self._checked_at = time.monotonic()
        self._active: str | None = self.store.active_model_version()
        self._dirty = False  # index changed in memory, not yet saved
        self.limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)
        self._features_pool = ThreadPoolExecutor(1, thread_name_prefix="features")
        self._backend = create_backend(settings)  # one per engine: Milvus connects once
        self._duplicates_lock = threading.Lock()  # one run at a time; the next reuses it
        self._duplicate_runs: OrderedDict[tuple[int, str, float], Duplicates] = OrderedDict()
        self._verdicts: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._pictures = PictureCache(self._duplicate_picture, LISTING_PICTURES)
        self._appearances: BoundedCache[PictureKey, np.ndarray] = BoundedCache(APPEARANCE_PICTURES)

    # ---- model and index ---------------------------------------------------------------

    def session(self) -> SearchSession:
        """The embedder and index of one model version, taken together, so that a model
        switch (``reembed``) between embedding and searching cannot mix versions."""
        with self._lock:
            return SearchSession(
                self.embedder, self.index, self.model_config.version, self.local_index
            )

    @property
    def model_loaded(self) -> bool:
        return self._embedder is not None

    @property
    def index_size(self) -> int | None:
        """Products in the loaded index (None when it is not loaded yet)."""
        index = self._index
        return None if index is None else len(index)

    @property
    def model_config(self) -> EmbedderConfig:
        """The catalog's model (or, for an empty catalog, the one the settings name)."""
        active = self._active
        if active is None:
            return EmbedderConfig.from_settings(self.settings)
        return _config_for(active, self.settings.model_dir)

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None or self._embedder.config != self.model_config:
                self._embedder = create_embedder(self.settings, self.model_config)
            return self._embedder

    @property
    def index_manager(self) -> IndexManager:
        return self._manager(self.model_config)

    def _manager(self, config: EmbedderConfig) -> IndexManager:
        return IndexManager(
            self.store,
            self.settings.index_dir,
            config.version,
            config.dim,
            self._backend,
            config.layout if self.settings.part_scans else None,
        )

    @property
    def index(self) -> ProductIndex:
        with self._lock:
            if (
                self._index is None
                or self._index.manifest.model_version != self.model_config.version
            ):
                self._index, self.last_sync = self.index_manager.load()
            return self._index

    @property
    def local_manager(self) -> LocalIndexManager:
        return LocalIndexManager(self.store, self.settings.index_dir)

    @property
    def local_index(self) -> DescriptorIndex | None:
        """The local-feature index (loaded or rebuilt on first use); None when local
        features are switched off."""
        if not self.settings.local_features:
            return None
        with self._lock:
            if self._local is None:
                self._local, _ = self.local_manager.load()
            return self._local

    @property
    def verify_params(self) -> VerifyParams:
        s = self.settings
        return VerifyParams(
            s.verify_local_candidates,
            s.verify_global_candidates,
            s.exact_min_inliers,
            s.exact_min_coverage,
            s.verify_min_votes,
            s.exact_min_structure,
            s.exact_max_recoloured,
            vote_weight=s.vote_weight,
        )

    def refresh_if_stale(self, max_age_s: float = 0.0) -> bool:
        """Reload the index when another process changed the catalog (several server
        workers share one database). Skips the check if the last one is younger than
        ``max_age_s`` (this process's own writes are visible at once anyway). Returns
        True when a reload was scheduled."""
        now = time.monotonic()
        if now - self._checked_at < max_age_s:
            return False
        self._checked_at = now
        if self.store.generation() == self._generation:
            return False
        with self._lock:
            # Read again under the lock: a write of this process holds it from its commit
            # to its index update, so a difference now is another process's write.
            generation = self.store.generation()
            if generation == self._generation:
                return False
            self._save_dirty()
            self._index = None  # reloaded on next use: from disk if consistent, else rebuilt
            self._local = None
            self.store.forget_cached()
            self._generation = generation
            self._own_changes = self.store.own_changes
            self._active = self.store.active_model_version()
        return True

    def flush_index(self) -> None:
        """Save the index if single-product changes left it unsaved."""
        with self._lock:
            self._save_dirty()

    def _save_dirty(self) -> None:
        if self._dirty and self._index is not None:
            self._index.save(self.index_manager.folder)
            self._dirty = False
        if self._local_dirty and self._local is not None:
            self._local.save(self.local_manager.folder)
            self._local_dirty = False

    def _committed(self) -> None:
        self._count_own_writes()
        self._active = self.store.active_model_version()

    def _count_own_writes(self) -> None:
        """Move the generation this engine has seen by its own writes since it last looked
        (called under its lock, after them), and by nothing else: another process's write
        that came in between stays unseen, so the next staleness check reloads for it.
        (Adopting the catalog's counter as it stands would take that write as seen.)"""
        own = self.store.own_changes
        self._generation += own - self._own_changes
        self._own_changes = own

    # ---- ingest, update, delete --------------------------------------------------------

    def upsert_product(
        self,
        product: ProductData,
        vector: np.ndarray | None,
        features: LocalFeatures | None = None,
    ) -> ProductData:
        """Write one product (with its new vector and local features, or keeping its
        vector when ``None``); effective in search at once. The index files are saved
        later (flush_index)."""
        blob = feature_blob(features) if self.settings.local_features else None
        # One lock from the commit to the index update: a concurrent staleness check must
        # not see this write's generation before the live index has it (it would drop the
        # index and rebuild it from the database: issue #12, 46 rebuilds in 3 minutes).
        # The catalog's first vector also records its model version, a write of its own.
        with self._lock:
            if vector is not None and self.store.active_model_version() is None:
                self.store.set_active_model_version(self.model_config.version)
            (pid,) = self.store.upsert([(product, vector)], self.model_config.version, [blob])
            if vector is not None:
                self._index = self.index_manager.apply(
                    self.index, np.array([pid]), vector[None, :], np.empty(0, np.int64), save=False
                )
                self._dirty = True
            elif self._backend.keeps_fields:  # its copy of category and price, at once
                self.index_manager.update_fields(self.index, np.array([pid]))
            local = self.local_index
            if local is not None and features is not None:
                self._local = self.local_manager.apply(
                    local, {pid: features}, np.empty(0, np.int64), save=False
                )
                self._local_dirty = True
            self._committed()
        stored = self.store.get(product.sku)
        assert stored is not None
        return stored

    def ingest(
        self,
        records: list[CatalogRecord],
        progress: Callable[[int], None] | None = None,
        embed: RecordEmbedder | None = None,
    ) -> IngestSummary:
        """Add or update ``records`` (idempotent: unchanged products are skipped), always
        with the catalog's own model, so versions never mix; ``settings_conflict`` says when
        the settings name another model (``reembed`` switches). ``embed`` embeds elsewhere
        (a Ray cluster: ``lookalike.ingest.ray_ingest``); the writes stay here."""
        with self._lock:  # a write of its own, counted at once (as in upsert_product)
            if self.store.active_model_version() is None:
                self.store.set_active_model_version(
                    EmbedderConfig.from_settings(self.settings).version
                )
                self._committed()
            elif (conflict := self.settings_conflict()) is not None:
                log.warning(conflict)
        index = self.index
        manager = self.index_manager
        local = self.local_index
        # A large ingest (a new catalog, or one that grows by a quarter) rebuilds the
        # descriptor index from the database at the end: a quantizer trained on the new
        # catalog, and no interim index to grow. Smaller ones update it batch by batch.
        rebuild_local = local is not None and len(records) > len(local) / 4
        committed = [0]

        def on_commit(
            ids: np.ndarray, vectors: np.ndarray, features: list[LocalFeatures | None]
        ) -> None:
            # Under the engine's lock (commit_guard): the catalog's generation moves with
            # this process's own commit, so a staleness check in between does not take it
            # for another process's write and drop the indexes (an import beside searches
            # rebuilt them from the database once per batch).
            index.add(ids, vectors, manager.fields(ids))
            self._count_own_writes()
            committed[0] += len(ids)
            if local is not None and not rebuild_local:
                local.add(
                    (pid, f.rootsift())
                    for pid, f in zip(ids.tolist(), features, strict=True)
                    if f is not None
                )

        def on_metadata(ids: np.ndarray) -> None:
            # Under the engine's lock too, for the same reason as on_commit.
            manager.update_fields(index, ids)
            self._count_own_writes()

        try:
            return ingest_records(
                records,
                self.store,
                self.embedder,
                self.limits,
                on_commit=on_commit,
                progress=progress,
                batch_size=self.settings.batch_size,
                workers=self.settings.decode_workers,
                local_features=local is not None,
                embed=embed,
                commit_guard=self._lock,
                on_metadata=on_metadata,
            )
        finally:
            with self._lock:
                self._index = manager.apply(index, *_no_change(self.model_config.dim))
                self._dirty = False
                if rebuild_local and committed[0]:
                    self._local = self.local_manager.rebuild()
                elif local is not None and not rebuild_local:
                    # Already added above; apply() only saves (or rebuilds if outgrown).
                    self._local = self.local_manager.apply(local, {}, np.empty(0, np.int64))
                self._local_dirty = False
            self._committed()

    def delete(self, skus: Sequence[str], *, save: bool = True) -> dict[str, int]:
        """Delete products by SKU; returns those that existed (sku -> id)."""
        with self._lock:  # commit to index update, as in upsert_product
            deleted = self.store.delete(skus)
            if deleted:
                add_ids, add_vectors, _ = _no_change(self.model_config.dim)
                removed = np.fromiter(deleted.values(), dtype=np.int64)
                self._index = self.index_manager.apply(
                    self.index, add_ids, add_vectors, removed, save=save
                )
                self._dirty = not save
                local = self.local_index
                if local is not None:
                    self._local = self.local_manager.apply(local, {}, removed, save=save)
                    self._local_dirty = not save
            self._committed()
        return deleted

    def settings_conflict(self) -> str | None:
        """A message when the settings name another model than the catalog uses."""
        try:
            wanted = EmbedderConfig.from_settings(self.settings).version
        except KeyError as exc:
            return f"settings name an unknown model: {exc}"
        active = self._active
        if active is None or active == wanted:
            return None
        return (
            f"the catalog uses {active} but the settings ask for {wanted}; the catalog's model "
            "is used; run `lookalike reembed` to switch"
        )

    def reembed(
        self,
        progress: Callable[[int], None] | None = None,
        config: EmbedderConfig | None = None,
    ) -> IngestSummary:
        """Re-embed every product with ``config`` (default: the model the settings name),
        then make it the catalog's model. Searches use the old version until the switch."""
        wanted = config or EmbedderConfig.from_settings(self.settings)
        products = self.store.all_products()
        records = [
            CatalogRecord(
                p.sku,
                Path(p.image_path),
                p.image_path,
                p.title,
                p.category,
                p.price,
                p.currency,
                p.url,
                dict(p.attributes),
            )
            for p in products
        ]
        embedder = create_embedder(self.settings, wanted)
        summary = ingest_records(
            records,
            self.store,
            embedder,
            self.limits,
            on_commit=lambda ids, vecs, features: None,
            progress=progress,
            batch_size=self.settings.batch_size,
            workers=self.settings.decode_workers,
            local_features=False,  # they do not depend on the model; stored ones stay
        )
        new_index = self._manager(wanted).rebuild()
        with self._lock:  # the switch: readers see the old pair or the new one, never a mix
            old = self.store.active_model_version()
            self.store.set_active_model_version(wanted.version)
            self._embedder, self._index = embedder, new_index
            self._committed()
        if old and old != wanted.version:
            self.store.delete_embeddings(old)
        return summary

    # ---- search ------------------------------------------------------------------------

    def search_files(
        self,
        paths: Sequence[Path],
        k: int = 10,
        filters: Filters | None = None,
        weights: AspectWeights | None = None,
        feedback: Feedback | None = None,
        together: bool = False,
        group: bool = True,
    ) -> list[QueryResult]:
        """Search with several image files; the model runs once over all of them. A file
        that cannot be used gets its error in its result; the others are still searched.
        ``together``: the files are one query (photos of one product, or "things like
        these"), answered once, under the name of the first. ``group``: listings of one
        photo are one result (:meth:`search_photo`). Weights or feedback that cannot be
        used raise (AspectError, FeedbackError) before any work."""
        session = self.session()
        refinement = self.refinement(weights, feedback, session)  # once, for every file
        loaded, errors = [], {}
        for p in paths:
            try:
                data = read_image_bytes(p, self.limits.max_bytes)
                loaded.append((data, str(p), self.load_query(data, str(p))))
            except ImageError as exc:
                errors[str(p)] = exc.reason
        images = [image for _, _, image in loaded]
        # Local features on another thread while the model runs: the two overlap.
        described = self._features_pool.submit(lambda: [self.query_features(i) for i in images])
        views = [query_views(img) for img in images]
        flat = [v for vs in views for v in vs]
        embedded = iter(session.embedder.embed_images(flat) if flat else [])
        vectors = [combine(np.stack([next(embedded) for _ in vs])) for vs in views]
        photos = [
            PhotoQuery(features, self.zoom(data, source, image))
            for (data, source, image), features in zip(loaded, described.result(), strict=True)
        ]

        def answer(name: str, chosen: slice) -> QueryResult:
            vector = combine(np.stack(vectors[chosen]))
            hits = self.search_photo(vector, photos[chosen], k, filters, session, refinement, group)
            return QueryResult(name, hits)

        if together:
            failed = [f"{name}: {reason}" for name, reason in errors.items()]
            if not loaded:
                return [QueryResult(str(paths[0]), [], "; ".join(failed))]
            result = answer(loaded[0][1], slice(None))
            return [QueryResult(result.query, result.hits, "; ".join(failed) or None)]
        position = {source: i for i, (_, source, _) in enumerate(loaded)}
        return [
            QueryResult(str(p), [], errors[str(p)])
            if str(p) in errors
            else answer(str(p), slice(position[str(p)], position[str(p)] + 1))
            for p in paths
        ]

    def query_features(self, image: LoadedImage) -> LocalFeatures | None:
        """The local features of a query photo (None when local features are off)."""
        return query_features(image.pixels) if self.settings.local_features else None

    def zoom(self, data: bytes, source: str, image: LoadedImage) -> Zoom | None:
        """How to describe the photo's centre, then its corners (images/query.py:
        closer_views; ``LOOKALIKE_ZOOM_CORNERS``), at a finer resolution than the whole
        photo was: decoded again from ``data`` when asked, once for all of them. None when
        the file holds no detail the whole photo's features did not already see."""
        if not (self.settings.local_features and self.settings.zoom):
            return None
        side = max(image.width, image.height)
        whole = min(1.0, QUERY_MAX_SIDE / side)  # scale the whole photo was described at
        middle = min(1.0, QUERY_MAX_SIDE / (CENTRE * side))
        if middle < ZOOM_MIN_GAIN * whole:
            return None

        # Decoded just large enough that its centre has QUERY_MAX_SIDE px to give. The
        # closure keeps the file, not the decoded picture (the API keeps it for query_id).
        target = math.ceil(min(image.width, image.height) * middle)
        corners = self.settings.zoom_corners

        def describe() -> Iterator[LocalFeatures]:
            full = load_image(data, source, max_pixels=self.limits.max_pixels, target_size=target)
            for region in closer_views(full.pixels, corners):
                yield query_features(region)

        return describe

    def search_photo(
        self,
        vector: np.ndarray,
        photos: Sequence[PhotoQuery],
        k: int = 10,
        filters: Filters | None = None,
        session: SearchSession | None = None,
        refinement: Refinement | None = None,
        group: bool = True,
    ) -> list[SearchHit]:
        """Two-stage photo search (search/photo.py) for one or more photos whose vectors
        combine into ``vector``: exact matches verified by local features first, then
        similar products, shaped by ``refinement`` (:meth:`refinement`: aspect weights,
        the shopper's marks). ``session`` from the same :meth:`session` as the embedder
        that made the vector. ``group``: the listings of one photo (near-duplicates under
        other SKUs) are one result (search/grouping.py); byte-identical images always."""
        session = session or self.session()
        grouper = self._grouper(session)
        searcher = PhotoSearcher(
            self.store,
            session.index,
            session.local_index,
            session.version,
            session.layout,
            self.verify_params,
            self._catalog_pixels,
            # Listings of one picture share its local-feature votes, grouped or not.
            grouper.same_listing,
        )
        if group:
            hits = grouped(
                lambda n: searcher.rank(vector, photos, n, filters, refinement), k, grouper
            )
        else:
            hits = searcher.rank(vector, photos, k, filters, refinement)
        # Explained once grouped: the candidates grouping cuts need no explanation.
        hits = searcher.explained(hits)
        if not hits:
            self.check_filters(filters)
        return hits

    def refinement(
        self,
        weights: AspectWeights | None,
        feedback: Feedback | None,
        session: SearchSession | None = None,
    ) -> Refinement:
        """The aspect weights and the marked products' vectors of one query. Raises
        AspectError for weights the catalog cannot honour, FeedbackError for more than
        MAX_FEEDBACK marks or a SKU the catalog does not have."""
        session = session or self.session()
        weights = weights or AspectWeights()
        reweighed = reweighs(weights, session.layout)  # refused before any search work
        if not feedback:
            return Refinement(weights, reweighed=reweighed)
        marked = feedback.positive + feedback.negative
        if len(marked) > MAX_FEEDBACK:
            raise FeedbackError(f"at most {MAX_FEEDBACK} products may be marked, not {len(marked)}")
        products = self.store.get_many(list(marked))
        unknown = [sku for sku in marked if sku not in products]
        if unknown:
            raise FeedbackError(f"no product with SKU {', '.join(map(repr, unknown))}")
        ids = {sku: p.id for sku, p in products.items() if p.id is not None}
        vectors = self.store.vectors(list(ids.values()), session.version)

        def stack(skus: tuple[str, ...]) -> np.ndarray:
            rows = [vectors[ids[s]] for s in skus if ids.get(s) in vectors]
            return np.stack(rows) if rows else np.empty((0, 0), dtype=np.float32)

        return Refinement(
            weights,
            stack(feedback.positive),
            stack(feedback.negative),
            frozenset(ids[s] for s in feedback.negative if s in ids),
            reweighed,
        )

    def check_filters(self, filters: Filters | None) -> None:
        """Explain an empty answer: UnknownCategoryError when the filter names a category
        no product has (checked only when nothing was found, so it costs a search
        nothing)."""
        if filters is None or filters.category is None:
            return
        if not self.store.has_category(filters.category):
            known = [name for name, _ in self.store.categories()]
            raise UnknownCategoryError(filters.category, known)

    def _catalog_pixels(self, product: ProductData, size: tuple[int, int]) -> np.ndarray | None:
        """A product's image as RGB pixels of ``size`` (the appearance check of a photo
        search), or None when it cannot be read. Kept by sha256: the same products come
        back as matches (reading a dev image costs ~1 ms a check)."""
        key = (product.image_sha256, size)

        def read(_: list[PictureKey]) -> dict[PictureKey, np.ndarray]:
            pixels = self._read_pixels(product, size)
            if pixels is None:
                return {}
            pixels.flags.writeable = False
            return {key: pixels}

        return self._appearances.read_through([key], read).get(key)

    def _read_pixels(self, product: ProductData, size: tuple[int, int]) -> np.ndarray | None:
        try:
            data = read_image_bytes(Path(product.image_path), self.limits.max_bytes)
            image = load_image(
                data, product.image_path, max_pixels=self.limits.max_pixels, target_size=max(size)
            )
        except ImageError:
            return None
        pixels = image.pixels.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(pixels)

    def load_query(self, data: bytes, source: str) -> LoadedImage:
        """Decode a query image under the configured limits."""
        return load_image(
            data, source, max_pixels=self.limits.max_pixels, target_size=INPUT_SIZE * 2
        )

    def similar(
        self,
        sku: str,
        k: int = 10,
        filters: Filters | None = None,
        weights: AspectWeights | None = None,
        feedback: Feedback | None = None,
        group: bool = True,
    ) -> list[SearchHit]:
        """ "More like this": products that look like ``sku`` (itself and copies of its
        image excluded), their aspects weighed by ``weights`` and moved by ``feedback``,
        each with its aspect similarities to ``sku``; ``group``: the listings of one photo
        are one result (search/grouping.py)."""
        product = self.store.get(sku)
        if product is None or product.id is None:
            raise ProductNotFoundError(sku)
        session = self.session()
        vector = self.store.vector(product.id, session.version)
        if vector is None:
            raise ProductNotFoundError(sku)
        refinement = self.refinement(weights, feedback, session)
        query = refinement.query(vector, session.layout)
        searcher = Searcher(self.store, session.index)
        # Itself and copies of its image excluded.
        exclude_ids = frozenset({product.id}) | refinement.exclude_ids
        exclude_sha256 = frozenset({product.image_sha256})
        exhaustive = refinement.exhaustive(vector, query)

        def search(n: int) -> list[SearchHit]:
            return searcher.search(query, n, filters, exclude_ids, exclude_sha256, None, exhaustive)

        hits = grouped(search, k, self._grouper(session)) if group else search(k)
        if not hits:
            self.check_filters(filters)
        vectors = self.store.vectors([h.product.id for h in hits if h.product.id], session.version)
        return explain(hits, [vector] * len(hits), vectors, session.layout)

    def _grouper(self, session: SearchSession) -> ListingGrouper:
        """Groups the listings of one photo among results, with the pictures and verdicts
        this engine keeps (the verdicts shared with its duplicate runs)."""
        while len(self._verdicts) > DUPLICATE_VERDICTS:
            try:
                self._verdicts.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break
        return ListingGrouper(self.store, session.version, self._pictures, self._verdicts)

    # ---- duplicates --------------------------------------------------------------------

    def duplicates(self, threshold: float = DEFAULT_THRESHOLD) -> Duplicates:
        """Groups of products whose photos are the same or nearly (search/duplicates.py),
        at ``threshold`` (the cosine a pair needs to be compared). A run is kept until the
        catalog changes, and the verdict on every pair of images compared is kept longer
        (they depend on the images only), so after a deletion the next run costs little.
        Raises ValueError for a threshold out of range."""
        with self._duplicates_lock:
            with self._lock:
                index, version = self.index, self.model_config.version
            key = (self.store.generation(), version, threshold)
            if (run := self._duplicate_runs.get(key)) is not None:
                return run
            finder = DuplicateFinder(
                self.store,
                index,
                version,
                self._duplicate_picture,
                self._verdicts,
                workers=self.settings.decode_workers,
            )
            run = finder.find(threshold)
            self._duplicate_runs[key] = run
            while len(self._duplicate_runs) > DUPLICATE_RUNS:
                self._duplicate_runs.popitem(last=False)
            while len(self._verdicts) > DUPLICATE_VERDICTS:
                self._verdicts.popitem(last=False)
            return run

    def _duplicate_picture(self, product: ProductData) -> np.ndarray | None:
        """A product's photo, decoded small (a JPEG at 1/8 of its size when that is still
        twice the comparison size), or None when it cannot be read."""
        try:
            data = read_image_bytes(Path(product.image_path), self.limits.max_bytes)
            image = load_image(
                data,
                product.image_path,
                max_pixels=self.limits.max_pixels,
                target_size=2 * DUPLICATE_SIDE,
            )
        except (ImageError, OSError):  # gone, unreadable, or no image (the others go on)
            return None
        return np.asarray(image.pixels)

    # ---- maintenance -------------------------------------------------------------------

    def rebuild_index(self, kind: str | None = None) -> ProductIndex:
        """Rebuild the product index (and the local-feature index) from the database."""
        with self._lock:
            self._index = self.index_manager.rebuild(kind)
            if self.settings.local_features:
                self._local = self.local_manager.rebuild()
            return self._index

    def check_index(self) -> dict[str, Any]:
        """The product index's agreement with the database and recall, and the
        local-feature index's agreement (under ``local``)."""
        report = self.index_manager.check(self.index)
        local = self.local_index
        if local is not None:
            report["local"] = self.local_manager.check(local)
        return report

    # The catalog as the layers above (API, CLI, evaluation, training) see it: they ask
    # the engine, never its store, so the store's API can change behind this one.
    def product(self, sku: str) -> ProductData | None:
        """The product with this SKU, or None."""
        return self.store.get(sku)

    def products(self, skus: Sequence[str]) -> dict[str, ProductData]:
        """The products of these SKUs that exist, by SKU."""
        return self.store.get_many(skus)

    def all_products(self) -> list[ProductData]:
        """Every product, by id."""
        return self.store.all_products()

    def product_count(self) -> int:
        return self.store.count()

    def browse(
        self, category: str | None, title_contains: str | None, offset: int, limit: int
    ) -> tuple[list[ProductData], int]:
        """A page of products (by id) and how many match the filters."""
        return self.store.list_products(category, title_contains, offset, limit)

    def categories(self) -> list[tuple[str, int]]:
        """(category, product count) pairs."""
        return self.store.categories()

    def stored_vector(self, product_id: int, model_version: str) -> np.ndarray | None:
        """A product's stored vector for ``model_version``, if it has one."""
        return self.store.vector(product_id, model_version)

    def embedded_count(self) -> int:
        """Products embedded with the catalog's model."""
        return len(self.store.embedding_ids(self.model_config.version))

    def image_hashes(self) -> set[str]:
        """sha256 of every product's image (which stored files are still in use)."""
        return self.store.image_hashes()

    @property
    def active_model_version(self) -> str | None:
        """The model version the catalog is embedded with (None while it is empty)."""
        return self.store.active_model_version()

    def create_job(self, job_id: str, catalog_path: str) -> None:
        self.store.create_job(job_id, catalog_path)

    def update_job(self, job_id: str, **fields: Any) -> None:
        self.store.update_job(job_id, **fields)

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.store.get_job(job_id)

    def unfinished_jobs(self) -> list[dict[str, Any]]:
        return self.store.unfinished_jobs()

    def stats(self) -> dict[str, Any]:
        out = self.store.stats()
        out["database"] = _redact(self.store.url)
        out["home"] = str(self.settings.home.resolve())
        return out

    def close(self) -> None:
        self.flush_index()
        self._features_pool.shutdown(wait=False)
        self.store.close()


@lru_cache(maxsize=16)
def _config_for(version: str, model_dir: Path) -> EmbedderConfig:
    """The config behind a catalog's model version. Cached: it is asked several times per
    search, and a fine-tuned version's card (immutable once registered) is a file read."""
    try:
        config = EmbedderConfig.from_version(version, model_dir)
    except (KeyError, ValueError) as exc:
        raise ModelVersionError(
            f"the catalog was embedded with {version}, which cannot be reproduced here "
            f"({exc}); run `lookalike reembed`"
        ) from None
    if config.version != version:
        raise ModelVersionError(
            f"the catalog was embedded with {version}, which these weights cannot "
            "reproduce; run `lookalike reembed`"
        )
    return config


def _no_change(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    empty = np.empty(0, dtype=np.int64)
    return empty, np.empty((0, dim), dtype=np.float32), empty


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
