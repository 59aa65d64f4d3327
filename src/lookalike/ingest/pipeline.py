"""Ingest records: skip what is unchanged, embed what is new or changed, write in batches.

Each write batch (products and their vectors) is one database transaction, so a run
killed midway leaves whole products behind, never a product without its vector; the
index is brought in line with the database on the next load.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lookalike.embeddings.embedder import Embedder
from lookalike.embeddings.pipeline import EmbedResult, embed_stream
from lookalike.errors import ImageError
from lookalike.images.loader import LoadedImage, load_image, read_image_bytes
from lookalike.images.preprocess import INPUT_SIZE
from lookalike.ingest.readers import CatalogRecord, RowError
from lookalike.matching.features import FEATURE_VERSION, LocalFeatures, catalog_features
from lookalike.store.catalog import CatalogStore, FeatureBlob, ProductData, StoredEmbedding

# (product ids, their vectors, their local features when extracted) of a committed batch
OnCommit = Callable[[np.ndarray, np.ndarray, list[LocalFeatures | None]], None]


@dataclass
class IngestSummary:
    """What an ingest run did, product by product."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[RowError] = field(default_factory=list)
    embedded: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


class RecordEmbedder(Protocol):
    """Another way to embed the records an ingest run must embed (Ray ingest:
    ``lookalike.ingest.ray_ingest``): one result per record, in any order, with the
    vector, sha256, size and local features that ``embed_stream`` gives, or the per-file
    error. The skip / commit / error logic stays in :func:`ingest_records`."""

    def __call__(
        self, records: list[CatalogRecord], embedder: Embedder, *, local_features: bool
    ) -> Iterable[EmbedResult[CatalogRecord]]: ...


def decode_record_image(data: bytes, source: str, limits: ImageLimits) -> LoadedImage:
    """A catalog image's bytes decoded as ingest embeds them (local and Ray ingest alike,
    so both give the same vectors)."""
    return load_image(data, source, max_pixels=limits.max_pixels, target_size=INPUT_SIZE * 2)


def record_features(image: LoadedImage) -> LocalFeatures:
    """The local features ingest stores for a catalog image."""
    return catalog_features(image.pixels)


def ingest_records(
    records: list[CatalogRecord],
    store: CatalogStore,
    embedder: Embedder,
    limits: ImageLimits,
    *,
    on_commit: OnCommit,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 32,
    workers: int = 0,
    write_batch: int = 256,
    local_features: bool = True,
    embed: RecordEmbedder | None = None,
    commit_guard: AbstractContextManager[Any] = nullcontext(),
    on_metadata: Callable[[np.ndarray], None] | None = None,
) -> IngestSummary:
    """Bring the store up to date with ``records``; ``on_commit(ids, vectors, features)``
    is called after each committed batch of new vectors (to update the indexes). With
    ``local_features``, each image's local features are extracted and stored with its
    vector, and products stored without them are processed again. ``embed`` replaces
    the local :func:`embed_stream` (e.g. by a Ray cluster); ``embedder`` still names the
    model version written. ``commit_guard`` is held from each batch's commit to the end
    of its ``on_commit``, and of ``on_metadata(ids)``, called after the products whose
    metadata alone changed (no new image) are committed."""
    start = time.perf_counter()
    summary = IngestSummary()
    advance = progress or (lambda n: None)
    existing = store.get_many([r.sku for r in records])
    embedded = store.embedded([r.sku for r in records], embedder.version)
    described = (
        store.local_feature_skus([r.sku for r in records], FEATURE_VERSION)
        if local_features
        else None
    )

    to_embed: list[CatalogRecord] = []
    metadata_only: list[ProductData] = []
    for record, sha in _hash_known(records, embedded, limits):
        if isinstance(sha, ImageError):
            summary.failed.append(RowError(record.source, record.sku, sha.reason))
            advance(1)
            continue
        old = existing.get(record.sku)
        stored = embedded.get(record.sku)
        if (
            sha is None
            or old is None
            or stored is None
            or stored.image_sha256 != sha
            or (described is not None and record.sku not in described)
        ):
            to_embed.append(record)
            continue
        data = _product(record, sha, old.image_width, old.image_height)
        if data.same_metadata(old):
            summary.unchanged += 1
        else:
            metadata_only.append(data)
        advance(1)
    if metadata_only:
        with commit_guard:
            ids = store.upsert([(p, None) for p in metadata_only], embedder.version)
            if on_metadata is not None:
                on_metadata(np.asarray(ids, dtype=np.int64))
        summary.updated += len(metadata_only)

    def load(record: CatalogRecord) -> LoadedImage:
        data = read_image_bytes(record.image, limits.max_bytes)
        return decode_record_image(data, str(record.image), limits)

    pending: list[tuple[ProductData, np.ndarray]] = []
    features: list[LocalFeatures | None] = []

    def flush() -> None:
        if not pending:
            return
        blobs = [feature_blob(f) for f in features]  # compressed outside the guard
        with commit_guard:  # the commit and the index update it makes, as one step
            ids = store.upsert(pending, embedder.version, blobs)
            on_commit(
                np.asarray(ids, dtype=np.int64), np.stack([v for _, v in pending]), list(features)
            )
        for data, _ in pending:
            if data.sku in existing:
                summary.updated += 1
            else:
                summary.added += 1
        pending.clear()
        features.clear()

    try:
        stream = (
            embed(to_embed, embedder, local_features=local_features)
            if embed is not None
            else embed_stream(
                embedder,
                to_embed,
                load,
                batch_size=batch_size,
                workers=workers,
                local=record_features if local_features else None,
            )
        )
        for result in stream:
            advance(1)
            if result.error is not None or result.vector is None or result.sha256 is None:
                reason = result.error.reason if result.error else "no vector"
                summary.failed.append(RowError(result.item.source, result.item.sku, reason))
                continue
            summary.embedded += 1
            pending.append(
                (_product(result.item, result.sha256, result.width, result.height), result.vector)
            )
            features.append(result.local)
            if len(pending) >= write_batch:
                flush()
    finally:
        flush()  # what was embedded before an interruption is kept
        summary.seconds = time.perf_counter() - start
    return summary


def feature_blob(features: LocalFeatures | None) -> FeatureBlob | None:
    """Local features as the store keeps them."""
    if features is None:
        return None
    return FeatureBlob(FEATURE_VERSION, len(features), features.to_bytes())


def _hash_known(
    records: list[CatalogRecord],
    embedded: dict[str, StoredEmbedding],
    limits: ImageLimits,
) -> list[tuple[CatalogRecord, str | ImageError | None]]:
    """sha256 of the image of every record whose SKU is already embedded (None for the
    others: they must be embedded anyway), read on threads."""

    def digest(record: CatalogRecord) -> str | ImageError | None:
        if record.sku not in embedded:
            return None
        try:
            return hashlib.sha256(read_image_bytes(record.image, limits.max_bytes)).hexdigest()
        except ImageError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        return list(zip(records, pool.map(digest, records), strict=True))


def _product(
    record: CatalogRecord, sha256: str, width: int | None, height: int | None
) -> ProductData:
    return ProductData(
        sku=record.sku,
        image_path=str(record.image.resolve()),
        image_sha256=sha256,
        title=record.title,
        category=record.category,
        price=record.price,
        currency=record.currency,
        url=record.url,
        image_width=width,
        image_height=height,
        attributes=dict(record.attributes),
    )
