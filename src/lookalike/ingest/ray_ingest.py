"""Embed an ingest run's images on a Ray cluster (``lookalike ingest CATALOG --ray ...``).

Only the embedding moves: :func:`lookalike.ingest.pipeline.ingest_records` still decides
what to skip, writes each batch in one transaction and updates the indexes, exactly as a
local run does. :class:`RayEmbedding` is the ``embed`` hook it calls:

- the driver (this process) reads each image's bytes and ships them in batches, so the
  workers need no access to the catalog's files; a file that cannot be read fails alone,
  here, with the local run's reason;
- each worker is one Ray actor holding one ONNX Runtime session of the catalog's model
  (the file from the model cache, or the driver's copy when its node cannot see that
  folder) and running the local ``embed_stream`` on its batch, so decoding, the model,
  the colour histogram and the local features are the same code as a local run, and so
  are the vectors;
- at most ``in_flight`` batches wait per actor (back-pressure): the driver reads ahead
  only what the cluster can take, so memory stays bounded however large the catalog.

Ray is imported here only, and this module only when ``--ray`` is given: the CLI, the
API and a local ingest never import it. Every node must run the same environment
(``pip install lookalike[ray]`` and the same Python), as Ray requires.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from lookalike.config import Settings
from lookalike.embeddings.embedder import Embedder, EmbedderConfig, OnnxEmbedder, model_file
from lookalike.embeddings.pipeline import EmbedResult, embed_stream
from lookalike.errors import ImageError, LookalikeError
from lookalike.images.loader import read_image_bytes
from lookalike.ingest.pipeline import ImageLimits, decode_record_image, record_features
from lookalike.ingest.readers import CatalogRecord
from lookalike.matching.features import LocalFeatures

# One item shipped to a worker: (position in the run, image bytes, source name).
_Item = tuple[int, bytes, str]


class RayConnectionError(LookalikeError):
    """The Ray cluster named by ``--ray`` cannot be reached."""


class RayWorkerError(LookalikeError):
    """A worker died mid-run (its node lost, killed, out of memory)."""


@dataclass
class _Outcome:
    """One item's result as it travels back from a worker (picklable: an ImageError is
    sent as its class, source and reason, since exceptions with a custom ``__init__``
    do not survive pickling)."""

    position: int
    vector: np.ndarray | None
    sha256: str | None
    width: int
    height: int
    error: tuple[type[ImageError], str, str] | None
    local: LocalFeatures | None


class EmbedWorker:
    """One Ray actor: one model session, embedding batches of image bytes with the local
    pipeline (decoding on ``decode_threads`` threads while the model runs)."""

    def __init__(
        self,
        config: EmbedderConfig,
        model_path: str | None,
        model_bytes: bytes | None,
        threads: int,
        limits: ImageLimits,
    ) -> None:
        path = Path(model_path) if model_path else Path()
        if model_bytes is not None and not (
            path.is_file() and path.stat().st_size == len(model_bytes)
        ):
            # This node cannot see the driver's model cache (another machine): run the
            # copy the driver shipped, from a file of this worker's own.
            fd, name = tempfile.mkstemp(suffix=".onnx", prefix="lookalike-")
            with os.fdopen(fd, "wb") as f:
                f.write(model_bytes)
            path = Path(name)
        self.embedder = OnnxEmbedder(config, path, threads)
        self.limits = limits
        self.threads = threads

    def info(self) -> dict[str, Any]:
        """Where this worker runs and what it imported (tests check: no torch)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "torch": "torch" in sys.modules}

    def embed(self, items: list[_Item], local_features: bool) -> list[_Outcome]:
        """Embed one batch; a bad image is reported in its outcome, never raised."""
        limits = self.limits
        results = embed_stream(
            self.embedder,
            items,
            lambda item: decode_record_image(item[1], item[2], limits),
            batch_size=max(1, len(items)),
            workers=max(2, self.threads),
            local=record_features if local_features else None,
        )
        return [_outcome(r) for r in results]


def _outcome(r: EmbedResult[_Item]) -> _Outcome:
    error = (type(r.error), r.error.source, r.error.reason) if r.error is not None else None
    return _Outcome(r.item[0], r.vector, r.sha256, r.width, r.height, error, r.local)


class RayEmbedding:
    """A connection to a Ray cluster that embeds ingest runs (the ``embed`` hook of
    ``Engine.ingest`` / ``ingest_records``). Use it as a context manager::

        with RayEmbedding("auto", settings) as ray_embed:
            engine.ingest(records, progress, embed=ray_embed)

    ``address``: ``auto`` (the cluster this machine belongs to: ``RAY_ADDRESS`` or the one
    ``ray start`` started here), ``HOST:PORT`` of a head node, or ``ray://HOST:PORT``
    (Ray Client). ``workers``: actors to start (0: one per ``cpus_per_worker`` CPUs of the
    cluster); each gets ``cpus_per_worker`` CPUs and as many ONNX Runtime threads.
    """

    def __init__(
        self,
        address: str,
        settings: Settings,
        *,
        workers: int = 0,
        cpus_per_worker: int = 1,
        batch_size: int | None = None,
        in_flight: int = 2,
    ) -> None:
        if cpus_per_worker < 1 or workers < 0 or in_flight < 1:
            raise ValueError("cpus_per_worker and in_flight must be >= 1, workers >= 0")
        self.address = address
        self.settings = settings
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.batch_size = batch_size or settings.batch_size
        self.in_flight = in_flight
        self.limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)
        self._connected = False
        # Workers live as long as the connection: a second run (or the API's next
        # import) does not pay their start again. Keyed by model and sizes.
        self._pool: tuple[tuple[EmbedderConfig, int, int], list[Any]] | None = None
        self.worker_info: list[dict[str, Any]] = []

    def __enter__(self) -> RayEmbedding:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Join the cluster; a clear :class:`RayConnectionError` naming ``--ray`` when it
        does not answer (Ray itself would retry for about a minute, then raise)."""
        import ray

        _check_reachable(self.address)
        try:
            ray.init(
                address=self.address,
                logging_level=logging.WARNING,
                log_to_driver=False,  # workers' logs stay in the cluster's log folder
                configure_logging=False,
            )
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            raise RayConnectionError(
                f"--ray {self.address}: cannot connect to the Ray cluster: {exc}"
            ) from None
        self._connected = True

    def close(self) -> None:
        """Stop this connection's workers and leave the cluster."""
        if self._connected:
            import ray

            self._stop_workers()
            ray.shutdown()
            self._connected = False

    def worker_count(self) -> int:
        """Actors a run starts: ``workers``, or one per ``cpus_per_worker`` cluster CPUs."""
        import ray

        if self.workers:
            return self.workers
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray leaves it unannotated
        cpus = int(resources.get("CPU", 0))
        return max(1, cpus // self.cpus_per_worker)

    def start_workers(self, config: EmbedderConfig) -> list[Any]:
        """The actors for ``config``'s model, started (each loads its model: about 1 s,
        3 s on 2 loaded cores) or kept from the previous run of this connection."""
        import ray

        key = (config, self.worker_count(), self.cpus_per_worker)
        if self._pool is not None and self._pool[0] == key:
            return self._pool[1]
        self._stop_workers()
        path = model_file(config, self.settings.model_dir)
        model_ref = ray.put(path.read_bytes()) if path is not None else None
        actor_class = ray.remote(EmbedWorker)
        actors: list[Any] = [
            actor_class.options(num_cpus=self.cpus_per_worker).remote(
                config, str(path) if path else None, model_ref, self.cpus_per_worker, self.limits
            )
            for _ in range(key[1])
        ]
        self._pool = (key, actors)
        self.worker_info = ray.get([a.info.remote() for a in actors])
        return actors

    def _stop_workers(self) -> None:
        if self._pool is not None:
            import ray

            for actor in self._pool[1]:
                ray.kill(actor)
            self._pool = None

    def __call__(
        self, records: list[CatalogRecord], embedder: Embedder, *, local_features: bool
    ) -> Iterator[EmbedResult[CatalogRecord]]:
        """Embed ``records`` with ``embedder``'s model on the cluster; results as batches
        finish (any order), per-file errors included."""
        if not records:
            return
        import ray

        if not self._connected:
            raise RuntimeError("RayEmbedding used outside its 'with' block")
        finished = False
        try:
            actors = self.start_workers(embedder.config)
            yield from self._run(records, actors, local_features)
            finished = True
        except ray.exceptions.RayError as exc:
            # A lost node or a killed worker: what was committed stays, and the next run
            # (idempotent) embeds only the rest.
            raise RayWorkerError(
                f"--ray {self.address}: a Ray worker failed ({type(exc).__name__}: {exc}); "
                "the products written so far are kept, run the same command again to "
                "embed the rest"
            ) from None
        finally:
            if not finished:  # interrupted: drop the batches still queued on the workers
                self._stop_workers()

    def _run(
        self, records: list[CatalogRecord], actors: list[Any], local_features: bool
    ) -> Iterator[EmbedResult[CatalogRecord]]:
        import ray

        chunks = deque(
            range(start, min(start + self.batch_size, len(records)))
            for start in range(0, len(records), self.batch_size)
        )
        unreadable: list[EmbedResult[CatalogRecord]] = []
        running: dict[Any, Any] = {}  # task -> its actor

        def submit(actor: Any) -> None:
            while chunks:
                items: list[_Item] = []
                for i in chunks.popleft():
                    record = records[i]
                    try:  # read here: workers need no access to the catalog's files
                        data = read_image_bytes(record.image, self.limits.max_bytes)
                    except ImageError as exc:
                        unreadable.append(EmbedResult(record, error=exc))
                        continue
                    items.append((i, data, str(record.image)))
                if items:
                    running[actor.embed.remote(items, local_features)] = actor
                    return

        for _ in range(self.in_flight):
            for actor in actors:
                submit(actor)
        while running or unreadable:
            yield from unreadable
            unreadable.clear()
            if not running:
                break
            (done,), _ = ray.wait(list(running), num_returns=1)
            submit(running.pop(done))  # keep the worker busy while we write
            for out in ray.get(done):
                record = records[out.position]
                if out.error is not None:
                    kind, source, reason = out.error
                    yield EmbedResult(record, error=kind(source, reason))
                else:
                    yield EmbedResult(
                        record, out.vector, out.sha256, out.width, out.height, local=out.local
                    )


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail in seconds, not after Ray's minute of retries, when ``HOST:PORT`` refuses
    connections (``auto`` and ``ray://`` addresses are left to Ray)."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RayConnectionError(f"--ray {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout_s).close()
    except OSError as exc:
        raise RayConnectionError(
            f"--ray {address}: no Ray head node answers there ({exc})"
        ) from None
