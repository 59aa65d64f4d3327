"""Decode images on worker threads while the model embeds the previous batch."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from lookalike.embeddings.embedder import Embedder, PreparedImage
from lookalike.errors import ImageError
from lookalike.images.loader import LoadedImage
from lookalike.matching.features import LocalFeatures

T = TypeVar("T")


@dataclass
class EmbedResult(Generic[T]):
    """The outcome for one input: a vector, or the error that stopped it."""

    item: T
    vector: np.ndarray | None = None
    sha256: str | None = None
    width: int = 0
    height: int = 0
    error: ImageError | None = None
    local: LocalFeatures | None = None


@dataclass
class _Prepared:
    sha256: str
    width: int
    height: int
    image: PreparedImage
    local: LocalFeatures | None


def embed_stream(
    embedder: Embedder,
    items: Iterable[T],
    load: Callable[[T], LoadedImage],
    *,
    batch_size: int = 32,
    workers: int = 0,
    local: Callable[[LoadedImage], LocalFeatures] | None = None,
) -> Iterator[EmbedResult[T]]:
    """Embed every item; ``load`` turns an item into a decoded picture (and may raise
    :class:`ImageError`, which is reported in that item's result, never raised).
    ``local``, if given, extracts local features on the same worker threads.

    Decoding runs ahead on ``workers`` threads (Pillow and OpenCV release the GIL) while
    the main thread runs the model, so the two overlap.
    """
    workers = workers or max(2, (os.cpu_count() or 2))
    max_in_flight = batch_size * 3

    def prepare(item: T) -> _Prepared:
        img = load(item)
        features = local(img) if local is not None else None
        return _Prepared(img.sha256, img.width, img.height, embedder.prepare(img), features)

    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        pending: deque[tuple[T, Future[_Prepared]]] = deque()
        source = iter(items)

        def refill() -> None:
            while len(pending) < max_in_flight:
                try:
                    nxt = next(source)
                except StopIteration:
                    return
                pending.append((nxt, pool.submit(prepare, nxt)))

        refill()
        batch: list[tuple[T, _Prepared]] = []
        while pending:
            item, future = pending.popleft()
            refill()
            try:
                batch.append((item, future.result()))
            except ImageError as exc:
                yield EmbedResult(item, error=exc)
            if len(batch) >= batch_size or (not pending and batch):
                yield from _embed_batch(embedder, batch)
                batch = []


def _embed_batch(embedder: Embedder, batch: list[tuple[T, _Prepared]]) -> Iterator[EmbedResult[T]]:
    vectors = embedder.embed_prepared([p.image for _, p in batch])
    for (item, p), vec in zip(batch, vectors, strict=True):
        yield EmbedResult(item, vec, p.sha256, p.width, p.height, local=p.local)
