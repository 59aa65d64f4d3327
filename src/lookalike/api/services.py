"""What the API routes share: the engine, the micro-batcher, the import runner, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi import Request
from PIL import Image, ImageOps
from starlette.concurrency import run_in_threadpool

from lookalike.api.batcher import MicroBatcher
from lookalike.api.metrics import Metrics
from lookalike.api.queries import QueryCache
from lookalike.config import Settings
from lookalike.embeddings.embedder import PreparedImage
from lookalike.engine import Engine, SearchSession
from lookalike.images.loader import LoadedImage
from lookalike.images.query import combine, query_views
from lookalike.matching.features import LocalFeatures, catalog_features

THUMB_SIZE = 256
SWEEP_MIN_AGE_S = 3600.0
log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Embedded:
    """An image made ready for search or storage: its vector, the session (embedder and
    indexes of one model version) the vector belongs to, the decoded image, and its local
    features (None when they are off)."""

    vector: np.ndarray
    session: SearchSession
    image: LoadedImage
    features: LocalFeatures | None


@dataclass
class Services:
    settings: Settings
    engine: Engine
    batcher: MicroBatcher
    metrics: Metrics
    importer: object  # lookalike.api.imports.ImportRunner (kept loose to avoid a cycle)
    # The search path's CPU work (decoding, index search) runs here: a plain executor
    # hand-off costs a fraction of anyio's run_in_threadpool, which matters per search.
    cpu: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="search")
    )
    queries: QueryCache = field(default_factory=QueryCache)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the search executor, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.cpu, fn, *args)

    async def embed(
        self,
        data: bytes,
        source: str,
        adjust: Callable[[LoadedImage], LoadedImage] | None = None,
        *,
        catalog: bool = False,
    ) -> Embedded:
        """Decode ``data`` (then ``adjust`` it, e.g. crop), prepare it and extract its
        local features in one trip to a worker thread, then the batched model call.
        Local features are a query photo's, or a catalog image's with ``catalog``."""

        def prepare() -> tuple[list[PreparedImage], SearchSession, LoadedImage]:
            self.engine.refresh_if_stale(self.settings.change_check_ms / 1000)
            image = self.engine.load_query(data, source)
            if adjust is not None:
                image = adjust(image)
            # A region the user cropped is the query as it is; a whole photo also
            # contributes its centre (images/query.py). Catalog images are stored as is.
            views = [image] if catalog or adjust is not None else query_views(image)
            session = self.engine.session()
            return [session.embedder.prepare(v) for v in views], session, image

        def describe() -> LocalFeatures | None:
            if not self.settings.local_features:
                return None
            if catalog:
                return catalog_features(image.pixels)
            return self.engine.query_features(image)

        prepared, session, image = await self.run(prepare)
        # Local features on a search thread while the model embeds: the two overlap.
        features, *vectors = await asyncio.gather(
            self.run(describe), *(self.batcher.embed(p, session.embedder) for p in prepared)
        )
        return Embedded(combine(np.stack(vectors)), session, image, features)

    def store_upload(self, image: LoadedImage, data: bytes) -> Path:
        """Keep an uploaded image, named by its content hash (so never by the request)."""
        folder = self.settings.home / "images" / image.sha256[:2]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{image.sha256}.{image.format.lower()}"
        if path.exists():
            os.utime(path)  # young again: the sweep leaves it alone until its row exists
        else:
            _atomic_write(path, data)
        return path.resolve()

    def sweep_files(self, min_age_s: float = SWEEP_MIN_AGE_S) -> int:
        """Delete the uploads and thumbnails no product uses any more (deleted products,
        replaced images) and leftovers of interrupted writes. Files younger than
        ``min_age_s`` stay: an upload is stored before its product row commits.
        Returns how many files went."""
        used = self.engine.image_hashes()
        cutoff = time.time() - min_age_s
        removed = 0
        for folder in (self.settings.home / "images", self.settings.home / "thumbs"):
            for path in folder.glob("??/*"):
                sha256 = path.name.split(".")[0].split("-")[0]  # <sha>.jpg, <sha>-256.jpg
                with contextlib.suppress(FileNotFoundError):
                    if sha256 not in used and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    def thumbnail(self, source: Path, sha256: str) -> Path:
        """A cached JPEG thumbnail of a product image (made on first request)."""
        path = self.settings.home / "thumbs" / sha256[:2] / f"{sha256}-{THUMB_SIZE}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            from lookalike.images.loader import load_image

            loaded = load_image(
                source.read_bytes(),
                str(source),
                max_pixels=self.settings.max_image_pixels,
                target_size=THUMB_SIZE * 2,
            )
            thumb = ImageOps.pad(
                loaded.pixels, (THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS, color="white"
            )
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            thumb.save(tmp, "JPEG", quality=85, optimize=True)
            os.replace(tmp, path)
        return path


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def etag_for(*parts: str) -> str:
    return '"' + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32] + '"'


async def services(request: Request) -> Services:
    """FastAPI dependency: the app's services (``async`` so it needs no thread hop)."""
    svc: Services = request.app.state.services
    return svc


async def every(seconds: float, job: Callable[[], object]) -> None:
    """Run ``job`` off the event loop every ``seconds`` (until cancelled). A failing run
    is logged; the next one still comes."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(job)
        except Exception:
            log.exception("periodic job %s failed", getattr(job, "__name__", job))
